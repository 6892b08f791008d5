"""Allow ``python -m burstwatch.synth``."""

from burstwatch.synth.cli import main

raise SystemExit(main())
