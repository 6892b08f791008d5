"""burstwatch's build backend: setuptools', asking for what compiling the kernels into a
wheel needs.

A wheel (what ``pip install .`` builds) carries burstwatch's kernels compiled for this
machine (``setup.py``): building one needs numba and numpy, as ``pyproject.toml`` requires
them (the kernels' modules are imported alone, ``burstwatch.aot.import_alone``, so nothing
else). An editable install (the tests) compiles nothing at install and needs only setuptools.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (every other hook is setuptools' own)
from setuptools.config.pyprojecttoml import read_configuration

KERNEL_COMPILER = re.compile(r"(numba|numpy)\b")


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    with warnings.catch_warnings():  # "[tool.setuptools] ... is still beta"
        warnings.simplefilter("ignore")
        dependencies = read_configuration("pyproject.toml")["project"]["dependencies"]
    return (list(_setuptools.get_requires_for_build_wheel(config_settings))
            + [d for d in dependencies if KERNEL_COMPILER.match(d)])
