"""Write the feature reference: ``python -m burstwatch.features > docs/features.md``."""

import sys

from burstwatch.features.registry import render_markdown

sys.stdout.write(render_markdown())
