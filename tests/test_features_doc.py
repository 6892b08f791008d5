"""docs/features.md is generated from the registry; this fails when it is stale."""

from __future__ import annotations

from burstwatch.features.registry import FEATURE_NAMES, FEATURES, render_markdown
from tests.conftest import REPO


def test_features_doc_is_current() -> None:
    on_disk = (REPO / "docs" / "features.md").read_text()
    assert on_disk == render_markdown(), (
        "docs/features.md is stale: run `python -m burstwatch.features > docs/features.md`"
    )


def test_registry_names_are_unique_and_documented() -> None:
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    for f in FEATURES:
        assert f.name.isidentifier() and f.unit and len(f.description) > 10


def test_rules_doc_is_current() -> None:
    from burstwatch.alerts.reference import render

    on_disk = (REPO / "docs" / "rules.md").read_text()
    assert on_disk == render(REPO / "rules"), (
        "docs/rules.md is stale: run `python -m burstwatch.alerts.reference > docs/rules.md`"
    )
