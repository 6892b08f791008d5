"""Outputs: flow, burst and alert records as JSON lines, CSV, Parquet and tables."""
