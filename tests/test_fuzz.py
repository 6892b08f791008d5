"""The fuzz harness's short run, in the default suite: every kept input (seeds and every
input that ever failed, ``tests/fuzz/corpus/``) replays clean, and a fixed, derandomised
budget of mutations per target finds nothing. The long run: ``docs/fuzzing.md``."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.mutate import mutated
from tests.fuzz.targets import CORPUS, TARGETS, seeds

# Per target, examples in the default suite: enough to walk each path's error handling on
# every run, small enough to stay seconds (the file targets write a temporary file each).
BUDGET = {"capture": 60, "frames": 150, "handshakes": 150, "rules": 60, "rule_file": 30,
          "config": 60, "model": 30}


def kept(name: str) -> list[Path]:
    folder = CORPUS / name
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_and_kept_inputs_replay_clean(name: str) -> None:
    for data in seeds(name):
        TARGETS[name](data)
    for path in kept(name):
        TARGETS[name](path.read_bytes())


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_short_fuzz_run_finds_nothing(name: str) -> None:
    target = TARGETS[name]

    @settings(max_examples=BUDGET[name], derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mutated(seeds(name)))
    def run(data: bytes) -> None:
        target(data)

    run()


def test_every_target_has_a_budget() -> None:
    assert set(BUDGET) == set(TARGETS)


def test_the_long_run_knows_every_target() -> None:
    from tests.fuzz.run import TARGET_NAMES

    assert set(TARGET_NAMES) == set(TARGETS)
