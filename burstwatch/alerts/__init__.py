"""Alerts: rule hits and anomaly scores on flow-windows, as ECS records that say why."""
