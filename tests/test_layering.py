"""Where the package's boundaries are: release-time builders (``burstwatch.builders``) are never
imported at run time, and the capture generator (``burstwatch.synth``) only by what
generates captures (the `generate` command, live's warm-up and the ``-j`` workers' fork
server's, rule test cases)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "burstwatch"
MAY_IMPORT_SYNTH = {"burstwatch/cli/generate.py", "burstwatch/cli/warmup.py",
                    "burstwatch/parallel/preload.py", "burstwatch/rules/caserun.py"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def modules() -> list[tuple[str, set[str]]]:
    return [(p.relative_to(REPO).as_posix(), imports(p)) for p in sorted(PACKAGE.rglob("*.py"))]


def test_runtime_code_never_imports_the_release_builders() -> None:
    offenders = [name for name, found in modules() if not name.startswith("burstwatch/builders/")
                 and any(m == "burstwatch.builders" or m.startswith("burstwatch.builders.") for m in found)]
    assert offenders == []


def test_only_capture_generating_code_imports_the_generator() -> None:
    offenders = [
        name for name, found in modules()
        if not name.startswith(("burstwatch/synth/", "burstwatch/builders/"))
        and name not in MAY_IMPORT_SYNTH
        and any(m == "burstwatch.synth" or m.startswith("burstwatch.synth.") for m in found)
    ]
    assert offenders == []


def test_the_scorer_loads_without_the_generator() -> None:
    code = ("import sys, burstwatch.score.conversation, burstwatch.score; "
            "print(sorted(m for m in sys.modules if m.startswith(('burstwatch.synth', 'burstwatch.builders'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO)
    assert out.stdout.strip() == "[]"
