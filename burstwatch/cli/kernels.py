"""``burstwatch warmup``: build the kernels ahead of time now, in the foreground.

Without it the first run that needs kernels runs them with numba's JIT and starts the build
in the background as it exits (``burstwatch/aot.py``). A container image, an install script
or a benchmark wants the build done before the first real run: this command does it, with
the same notice a first run shows, and says where the build is kept.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("warmup", help="compile the kernels ahead of time now (the first run "
                                      "otherwise starts that in the background)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from burstwatch import aot
    from burstwatch.cli.compiling import CompileNotice
    from burstwatch.cli.exit_codes import ExitCode
    from burstwatch.errors import BurstwatchError

    if not aot.wanted():
        raise BurstwatchError(f"kernels are not built ahead of time here "
                              f"({aot.AHEAD_VARIABLE}=0 or BURSTWATCH_KERNELS=jit)")
    notice = CompileNotice(sys.stderr, spin=sys.stderr.isatty())
    try:
        target = aot.build_now(notice.on_build)
    except aot.BuildFailed as exc:
        raise BurstwatchError(f"kernels not built: {exc}") from None
    finally:
        notice.close()
    print(f"kernels: {target}")
    return ExitCode.OK
