"""Every input file is refused with one line and exit 2 when hostile: aliases (billion
laughs), over-deep nesting, non-UTF-8, NUL and control bytes, unbounded devices."""

from __future__ import annotations

from pathlib import Path

import pytest

from burstwatch.cli.main import main
from burstwatch.inputfiles import InputFileError, read_text
from burstwatch.rules.casefile import load_cases
from burstwatch.rules.findings import RuleError
from tests.conftest import REPO

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)
HOSTILE_YAML = {
    "laughs.yaml": LAUGHS.encode(),
    "deep.yaml": b"home_countries: " + b"[" * 20_000 + b"]" * 20_000 + b"\n",
    "deep64.yaml": b"home_countries: " + b"[" * 70 + b"]" * 70 + b"\n",
    "latin1.yaml": b"home_countries: [US]  # caf\xe9\n",
    "nul.yaml": b"home_countries: [US]\x00\n",
    "control.yaml": b"home_countries: [US\x01]\n",
    "tag.yaml": b"home_countries: !!python/object/apply:os.system [id]\n",
    "two.yaml": b"home_countries: [US]\n---\nhome_countries: [CA]\n",
}


def one_line_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("burstwatch: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("name", sorted(HOSTILE_YAML))
def test_hostile_configuration_files(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(HOSTILE_YAML[name])
    line = one_line_exit_2(capsys, ["lookup", "8.8.8.8", "--config", str(path)])
    assert str(path) in line


def test_configuration_from_a_device_is_read_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_exit_2(capsys, ["lookup", "8.8.8.8", "--config", "/dev/zero"])
    assert "too large" in line


def test_the_alias_is_named_where_it_is(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("countries: &c [US]\nhome_countries: *c\n")
    line = one_line_exit_2(capsys, ["lookup", "8.8.8.8", "--config", str(path)])
    assert f"{path}:2:17: YAML alias '*c' is not supported" in line


@pytest.mark.parametrize(("payload", "where"), [
    (b"id: bw-x\ntitle: a\x00b\n", ":2:9: error: a NUL byte"),
    (b"id: bw-x\ntitle: a\x01b\n", ":2:9: error: character U+0001 is not allowed"),
    (b"id: bw-x\ntitle: caf\xe9\n", ": error: not UTF-8 text (byte 19)"),
])
def test_hostile_rule_files_are_findings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, payload: bytes, where: str
) -> None:
    rule = tmp_path / "bad.yml"
    rule.write_bytes(payload)
    assert main(["rules", "lint", str(rule)]) == 2
    out = capsys.readouterr()
    assert f"{rule}{where}" in out.out + out.err
    assert "Traceback" not in out.out + out.err


@pytest.mark.parametrize("name", ["laughs.yaml", "latin1.yaml", "nul.yaml", "deep.yaml"])
def test_hostile_rule_test_files(tmp_path: Path, name: str) -> None:
    path = tmp_path / "r.tests.yml"
    path.write_bytes(HOSTILE_YAML[name])
    with pytest.raises(RuleError) as info:
        load_cases(path)
    (finding,) = info.value.findings
    assert finding.loc.file == str(path) and "\n" not in finding.message


def test_shipped_rule_tests_still_load() -> None:
    for path in sorted((REPO / "rules" / "tests").glob("*.tests.yml")):
        assert load_cases(path)


def test_read_text_caps_size(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * 2_000)
    with pytest.raises(InputFileError, match="larger than 1,000 bytes"):
        read_text(path, "a test file", limit=1_000)
