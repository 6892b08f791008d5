"""setuptools' build, with burstwatch's kernels compiled into the wheel.

``pip install .`` builds a wheel here. After copying the package, its ``build_py`` step
compiles the kernels with numba's ahead-of-time compiler into ``burstwatch/_ahead``
(``burstwatch/aot.py``: ``build_installed``), so the first run after the install loads them
instead of compiling them first. Where that cannot be done (no C compiler or Python's
headers, numba missing from the build environment, ``BURSTWATCH_AHEAD=0``) the wheel is
made without them and says why; its first run then compiles, as an editable install's does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent


class BuildWithKernels(build_py):
    """Copy the package, then compile its kernels into the copy (not for editable installs:
    their sources change under them)."""

    def run(self) -> None:
        super().run()
        if self.editable_mode or os.environ.get("BURSTWATCH_AHEAD", "1") == "0":
            return
        sys.path.insert(0, str(HERE))
        try:
            from burstwatch import aot
        except ImportError as exc:
            print(f"burstwatch: kernels not compiled into the wheel ({exc}); the first run "
                  "compiles them", file=sys.stderr)
            return
        print("burstwatch: compiling the kernels for this machine (about half a minute)",
              file=sys.stderr)
        try:
            aot.build_installed(Path(self.build_lib) / "burstwatch",
                                processes=2 if (os.cpu_count() or 1) > 1 else 1)
        except aot.BuildFailed as exc:
            print(f"burstwatch: kernels not compiled into the wheel ({exc}); the first run "
                  "compiles them", file=sys.stderr)


class CompiledDistribution(Distribution):
    """The wheel holds machine code: tag it for this Python and platform, not as pure."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildWithKernels}, distclass=CompiledDistribution)
