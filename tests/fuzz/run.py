"""The long fuzz run: ``python -m tests.fuzz.run TARGET [--seconds N] [--engine atheris|hypothesis]``.

With atheris (coverage-guided libFuzzer; ``pip install atheris``, Linux x86-64) the target is
instrumented and mutated from its seeds and kept inputs, growing a working corpus outside the
repository (``--work``); without it, hypothesis mutates the same inputs for the time given. Any input that makes the target fail is written to
``tests/fuzz/corpus/TARGET/crash-<sha1>`` and the run stops with status 1: commit the file
with the fix, and the default suite replays it from then on (``tests/test_fuzz.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
import traceback
from pathlib import Path

# Modules with numba-compiled functions: their bytecode is compiled, so instrumenting it for
# coverage would break them; the readers' and kernels' Python around them is still covered.
COMPILED = ["burstwatch.flows.sampling", "burstwatch.flows.key", "burstwatch.flows.kernel",
            "burstwatch.decode.kernel", "burstwatch.outputs.capture", "burstwatch.cli.warmup",
            "burstwatch.ingest.pcap", "burstwatch.ingest.live", "burstwatch.ingest.pcapng",
            "burstwatch.enrich.encryption.opening", "burstwatch.enrich.encryption.batch",
            "burstwatch.score.trees", "burstwatch.score.conversation.envelope"]
TARGET_NAMES = ("capture", "config", "frames", "handshakes", "model", "rule_file", "rules")


def keep_crash(name: str, data: bytes) -> str:
    from tests.fuzz.targets import CORPUS

    folder = CORPUS / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"crash-{hashlib.sha1(data).hexdigest()}"
    path.write_bytes(data)
    return str(path)


def corpus_inputs(name: str) -> list[bytes]:
    from tests.fuzz.targets import CORPUS, seeds

    folder = CORPUS / name
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    return seeds(name) + [p.read_bytes() for p in files]


def run_atheris(name: str, seconds: float, work: Path) -> int:
    import atheris

    # Instrumented as imported: burstwatch (less its compiled modules) under the target.
    with atheris.instrument_imports(include=["burstwatch"], exclude=COMPILED):
        from tests.fuzz.targets import CORPUS, MAX_INPUT, TARGETS, seeds

        target = TARGETS[name]
        first = seeds(name)
        for data in first:
            target(data)  # imports everything the target reaches, instrumented

    def one(data: bytes) -> None:
        try:
            target(data)
        except Exception:
            print(f"crash kept at {keep_crash(name, data)}", file=sys.stderr)
            raise

    # libFuzzer grows the first corpus folder: a working one outside the repository, seeded
    # here; the kept inputs are read from the repository's folder.
    work.mkdir(parents=True, exist_ok=True)
    for data in first:
        (work / f"seed-{hashlib.sha1(data).hexdigest()}").write_bytes(data)
    kept = CORPUS / name
    longest = max([MAX_INPUT, *(len(d) for d in first)])  # a model file is larger
    atheris.Setup([sys.argv[0], f"-max_total_time={int(seconds)}", f"-max_len={longest}",
                   str(work), *([str(kept)] if kept.is_dir() else [])], one)
    atheris.Fuzz()
    return 0


def run_hypothesis(name: str, seconds: float, work: Path) -> int:
    from hypothesis import HealthCheck, given, settings

    from tests.fuzz.mutate import mutated
    from tests.fuzz.targets import TARGETS

    target = TARGETS[name]
    start = time.monotonic()
    examples = 0

    @settings(max_examples=10**9, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mutated(corpus_inputs(name)))
    def one(data: bytes) -> None:
        nonlocal examples
        examples += 1
        if time.monotonic() - start > seconds:
            raise _Done
        try:
            target(data)
        except Exception:
            print(f"crash kept at {keep_crash(name, data)}", file=sys.stderr)
            raise

    try:
        one()
    except _Done:
        pass
    except Exception:
        traceback.print_exc()
        return 1
    print(f"{name}: {examples:,} inputs in {time.monotonic() - start:.0f} s, no failure")
    return 0


class _Done(Exception):
    """The time budget is spent."""


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", choices=[*TARGET_NAMES, "all"])
    ap.add_argument("--seconds", type=float, default=600.0, help="budget per target")
    ap.add_argument("--engine", choices=["atheris", "hypothesis"], default=None,
                    help="default: atheris when it is installed")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "burstwatch-fuzz",
                    help="atheris's growing corpus, per target (default: %(default)s)")
    args = ap.parse_args(argv)
    engine = args.engine
    if engine is None:
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "hypothesis"
    names = list(TARGET_NAMES) if args.target == "all" else [args.target]
    if engine == "atheris" and len(names) > 1:
        ap.error("atheris fuzzes one target per process: name it")
    run = run_atheris if engine == "atheris" else run_hypothesis
    return max(run(name, args.seconds, args.work / name) for name in names)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
