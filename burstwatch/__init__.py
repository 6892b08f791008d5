"""burstwatch: find burst transmissions (quiet, then short high-bandwidth encrypted bursts abroad)."""

__version__ = "0.1.0"
