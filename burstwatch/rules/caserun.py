"""Running a rule's test case (``rules/tests/NAME.tests.yml``, read by ``casefile``): its
captures, given or generated from scenarios, through the pipeline, and what the rule flagged
compared with what the case expects. Kept out of ``burstwatch.rules``'s own imports: it
needs the whole pipeline and the capture generator, which matching rules does not.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

from burstwatch.alerts.detect import Detector
from burstwatch.config import Settings
from burstwatch.conversations.judge import Judge, judge_ledger
from burstwatch.enrich.annotate import FlowAnnotator
from burstwatch.enrich.geo import GeoDatabase
from burstwatch.flows.roles import local_nets
from burstwatch.ledger import DAY_NS, Ledger
from burstwatch.pipeline import run_flows
from burstwatch.rules.casefile import PARTY, RuleCase
from burstwatch.rules.findings import Finding, RuleError
from burstwatch.rules.model import Location, Rule


class GeneratedCaptures:
    """Captures generated from scenarios, each once per run of the cases: the same scenario,
    seed and parameters give the same bytes, and several cases (of several rules) often ask
    for the same one (``exfil_tls`` with seed 1, six times in the shipped cases), while
    generating one is most of what running a case costs. Files live in a temporary folder
    removed at ``close``."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="burstwatch-cases-")
        self._made: dict[str, Path] = {}
        self._count = 0

    def __enter__(self) -> GeneratedCaptures:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._folder.cleanup()

    def capture(self, case: RuleCase, gen: dict[str, Any]) -> Path:
        """The capture of one ``generate`` entry of ``case``, made unless made already; an
        entry that cannot be made is the case file's error."""
        from burstwatch.synth.scenarios import DEFAULT_START, write_scenario

        try:
            params = dict(gen.get("params") or {})
            if "day" in gen:
                params["start_ts"] = DEFAULT_START + float(gen["day"]) * 86_400
            scenario, seed = str(gen["scenario"]), int(gen.get("seed", 0))
            link, nanosecond = gen.get("link", "ethernet"), bool(gen.get("nanosecond"))
            key = _spec_key(scenario, seed, link, nanosecond, params)
            if key in self._made:
                return self._made[key]
            self._count += 1
            path = Path(self._folder.name) / f"capture-{self._count}.pcap"
            write_scenario(str(path), scenario, seed, link=link, nanosecond=nanosecond, **params)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise RuleError([Finding(Location(str(case.file)), "error", "bad-test-case",
                                     f"{case.name}: cannot generate the capture ({exc})")]) from None
        if key:
            self._made[key] = path
        return path


def _spec_key(scenario: str, seed: int, link: Any, nanosecond: bool,
              params: dict[str, Any]) -> str:
    """What makes a generated capture what it is, as text ("" where a parameter is not
    plain data: then it is made again each time)."""
    try:
        return json.dumps([scenario, seed, link, nanosecond, params], sort_keys=True)
    except (TypeError, ValueError):
        return ""


def case_captures(case: RuleCase, generated: GeneratedCaptures) -> list[Path]:
    """The case's capture files, generated first (or taken from ``generated``) when the case
    names scenarios."""
    if case.capture is not None:
        return [case.capture]
    return [generated.capture(case, gen) for gen in case.generate or ()]


def run_case(rule: Rule, case: RuleCase, geo: GeoDatabase,
             generated: GeneratedCaptures | None = None) -> tuple[bool, str]:
    """Run ``rule`` over the case's captures; compare what it flagged with the expectation:
    flows for a flow rule, conversations (host and party) for a conversation rule. Captures
    generated from scenarios are shared through ``generated`` (one run's, else the case's own)."""
    settings = Settings(home_countries=case.home)
    got: list[dict[str, str]] = []
    with contextlib.ExitStack() as stack:
        if generated is None:
            generated = stack.enter_context(GeneratedCaptures())
        ledger = stack.enter_context(Ledger.open(None))
        captures = [str(p) for p in case_captures(case, generated)]
        batches = list(run_flows(captures, None, None, lambda: FlowAnnotator(geo, settings),
                                 local=local_nets(settings.internal_nets), ledger=ledger))
        if rule.applies_to == "conversation":
            judgement = judge_ledger(Judge([rule], settings), ledger, [], DAY_NS)
            got = [{"source.ip": c.local_ip, PARTY: c.party,
                    "destination.ip": c.remote_ip, "destination.port": str(c.remote_port)}
                   for c in judgement.cases]
    if rule.applies_to == "flow":
        detector = Detector([rule])
        for batch in batches:
            for alert in detector(batch):
                r = alert.to_record()
                got.append({
                    "source.ip": r["source"]["ip"], "destination.ip": r["destination"]["ip"],
                    "source.port": str(r["source"]["port"]),
                    "destination.port": str(r["destination"]["port"]),
                })
    missing = [e for e in case.expect if not any(all(g.get(k) == v for k, v in e.items()) for g in got)]
    extra = [g for g in got if not any(all(g.get(k) == v for k, v in e.items()) for e in case.expect)]
    what = "alert(s)" if rule.applies_to == "flow" else "conversation(s)"
    if not missing and not extra:
        return True, f"{len(got)} {what} as expected"
    parts = []
    if missing:
        parts.append("missing: " + "; ".join(f"{e}" for e in missing))
    if extra:
        parts.append("unexpected: " + "; ".join(
            f"{g['source.ip']} -> {g.get(PARTY) or g['destination.ip']}:{g['destination.port']}"
            for g in extra))
    return False, ", ".join(parts)
