"""Allow ``python -m burstwatch``."""

from burstwatch.cli.main import run

run()
