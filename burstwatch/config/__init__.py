"""Run configuration: the shipped defaults, a user's YAML file, then command-line flags."""

from burstwatch.config.settings import Settings, load_settings

__all__ = ["Settings", "load_settings"]
