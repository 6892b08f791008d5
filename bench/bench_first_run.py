"""First run: the README's first set-up command on a fresh copy of the project, timed in two
parts: the install, and the scan after it (the issue's target: within 15 s of the install).

    python bench/bench_first_run.py [--rounds N] [--check]

The command is read from the README (the first ``sh`` block under "Set up") and split before
its last ``&&``: everything before is the install, the rest the first command. Each round
copies the project's files (``git ls-files``) into a new temporary folder and runs both parts
there with ``sh``, with empty kernel caches of its own (``BURSTWATCH_CACHE_DIR``,
``NUMBA_CACHE_DIR``) so nothing built by an earlier round or by this checkout is used; pip's
download cache is left as it is (a registry's speed is not the project's). The scan is run a
second time too (a "next run"). Reported per round: install seconds, first scan seconds,
whether it compiled, the next scan; then medians. ``--check`` exits 1 when the
median first scan takes over 15 s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 15.0


def readme_command() -> tuple[str, str]:
    """The README's first set-up command, as (install, first command)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = text[text.index("## Set up"):]
    m = re.search(r"```sh\n(.+?)\n```", setup, re.S)
    if m is None:
        raise SystemExit("bench_first_run: no sh block under '## Set up' in README.md")
    command = m.group(1).strip()
    install, _, first = command.rpartition(" && ")
    if not install:
        raise SystemExit(f"bench_first_run: cannot split the README's command: {command}")
    return install, first


def copy_project(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)


def timed(command: str, cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds and stderr of one shell command."""
    start = time.perf_counter()
    proc = subprocess.run(["sh", "-c", command], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # 1: the demo's case
        raise SystemExit(f"bench_first_run: `{command}` exited {proc.returncode}:\n{proc.stderr}")
    return seconds, proc.stderr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--check", action="store_true", help=f"exit 1 over {TARGET_S:.0f} s")
    args = ap.parse_args()
    install, first = readme_command()
    print(f"install: {install}\nfirst command: {first}")
    firsts: list[float] = []
    installs: list[float] = []
    for n in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="bw-first-run-") as tmp:
            project = Path(tmp) / "burstwatch"
            copy_project(project)
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith("BURSTWATCH_") and k not in ("NUMBA_CACHE_DIR",
                                                                    "PYTHONDONTWRITEBYTECODE")}
            env["BURSTWATCH_CACHE_DIR"] = str(Path(tmp) / "cache")
            env["NUMBA_CACHE_DIR"] = str(Path(tmp) / "numba-cache")
            t_install, _ = timed(install, project, env)
            t_first, err = timed(first, project, env)
            compiled = "compiling kernels" in err
            t_next, _ = timed(first, project, env)
            installs.append(t_install)
            firsts.append(t_first)
            load = os.getloadavg()[0]
            print(f"round {n}: install {t_install:.1f} s, first scan {t_first:.2f} s"
                  f"{' (compiled kernels)' if compiled else ''}, next scan {t_next:.2f} s, "
                  f"load {load:.1f}")
    first_median = statistics.median(firsts)
    print(f"median: install {statistics.median(installs):.1f} s, first scan {first_median:.2f} s "
          f"(target {TARGET_S:.0f} s)")
    return 1 if args.check and first_median > TARGET_S else 0


if __name__ == "__main__":
    sys.exit(main())
