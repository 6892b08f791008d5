"""Allow ``python -m burstwatch``."""

from burstwatch.cli.main import main

raise SystemExit(main())
