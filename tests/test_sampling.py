"""The sample policy: what the flow table keeps of each payload sample, and that cutting the
rest changes no verdict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from burstwatch.config import load_settings
from burstwatch.decode import Decoder
from burstwatch.enrich.annotate import FlowAnnotator
from burstwatch.enrich.encryption.opening import HEAD_BYTES, SAMPLE_POLICY, opens_protocol
from burstwatch.enrich.geo import GeoDatabase
from burstwatch.flows import FlowConfig, FlowTable
from burstwatch.flows import table as table_module
from burstwatch.flows.key import group_packets
from burstwatch.flows.sampling import keep_lengths
from burstwatch.ingest.bytesource import StreamSource
from burstwatch.ingest.pcap import read_pcap
from burstwatch.pipeline import run_flows
from burstwatch.synth.payloads import tls_client_hello, wg_initiation
from burstwatch.synth.scenarios import SCENARIOS, write_scenario

TCP, UDP, ESP, ICMP = 6, 17, 50, 1


def _keep(lengths: list[int], opens: list[bool], first: list[bool], prefix: int = 10,
          head: int = 4, slot: list[int] | None = None) -> tuple[list[int], list[bool]]:
    n = len(lengths)
    state = np.zeros((4, 2), np.int64)
    out_len = np.zeros(n, np.int64)
    out_whole = np.zeros(n, np.bool_)
    keep_lengths(np.array(slot or [0] * n, np.int64), np.zeros(n, np.int8), np.array(first),
                 np.array(opens), np.array(lengths, np.int64), state, prefix, head, out_len, out_whole)
    return out_len.tolist(), out_whole.tolist()


def test_prefix_then_heads_when_nothing_opens() -> None:
    # budget 10: 6 bytes whole, then 4 of 6 (the budget left), then heads of 4
    assert _keep([6, 6, 6, 2], [False] * 4, [True, False, False, False]) == (
        [6, 4, 4, 2], [True, False, False, True])
    # a payload shorter than the head is never cut
    assert _keep([3, 20], [False, False], [True, False], prefix=2) == ([3, 4], [True, False])


def test_whole_from_the_first_payload_that_opens_a_protocol() -> None:
    assert _keep([20, 20, 20], [False, True, False], [True, False, False]) == (
        [10, 20, 20], [False, True, True])


def test_a_direction_first_sample_resets_the_slot() -> None:
    # slot 0 opened for one flow; the next flow in the same slot starts from the prefix again
    assert _keep([20, 20, 20], [True, False, False], [True, True, False]) == (
        [20, 10, 4], [True, False, False])


def _opens(payloads: list[bytes], proto: int, ports: tuple[int, int] = (40000, 443)) -> list[bool]:
    data = np.frombuffer(b"".join(payloads) or b"\0", np.uint8)
    lens = np.array([len(p) for p in payloads], np.int64)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    n = len(payloads)
    return opens_protocol(data, offs, lens, np.full(n, proto, np.uint8),
                          np.full(n, ports[0], np.uint16), np.full(n, ports[1], np.uint16)).tolist()


def test_what_opens_a_protocol() -> None:
    rng = np.random.default_rng(3)
    random_payload = bytes([0xF1]) + rng.bytes(1399)  # 0xF1: no TLS/text/SSH/OpenVPN start
    hello = tls_client_hello(rng, "example.com")
    assert _opens([hello, b"SSH-2.0-OpenSSH_9.6\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n",
                   random_payload], TCP) == [True, True, True, False]
    assert _opens([wg_initiation(rng, 7), random_payload], UDP, (51820, 51820)) == [True, False]
    assert _opens([random_payload], UDP, (500, 500)) == [True]  # IKE's ports: whole
    assert _opens([random_payload], ESP) == [True]
    assert _opens([random_payload], ICMP) == [False]
    assert HEAD_BYTES >= 8  # a format signature (up to 8 bytes, or "ftyp" at 4) stays readable


def _columns(path: Path, whole: bool) -> list[tuple[object, ...]]:
    names = ["burstwatch.encryption.verdict", "burstwatch.encryption.version",
             "burstwatch.encryption.detail", "tls.client.server_name", "burstwatch.tls.client.alpn_offered",
             "burstwatch.tls.client.ja4", "burstwatch.encryption.entropy"]
    geo, settings = GeoDatabase.bundled(), load_settings()
    out = []
    for batch in run_flows([str(path)], enricher_factory=lambda: FlowAnnotator(geo, settings),
                           whole_samples=whole):
        for i in range(len(batch)):
            out.append((int(batch.rows.flow_id[i]), int(batch.rows.kind[i]),
                        *(str(batch.extra[n][i]) for n in names)))
    return out


def _same_verdicts(path: Path) -> int:
    """Rows compared (zero for a capture nothing of which decodes yet)."""
    cut, whole = _columns(path, False), _columns(path, True)
    assert len(cut) == len(whole)
    for a, b in zip(cut, whole, strict=True):
        assert a == b, (path.name, a, b)
    return len(cut)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_cut_samples_give_the_verdicts_of_whole_ones(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.pcap"
    write_scenario(str(path), name, seed=5)
    assert _same_verdicts(path) > 0


def test_cut_samples_on_the_demo_capture() -> None:
    assert _same_verdicts(Path("pcaps/demo.pcap")) > 0


def test_cut_samples_on_real_captures(shared_pcaps: Path) -> None:
    paths = sorted(p for p in shared_pcaps.glob("**/*") if p.suffix in (".pcap", ".pcapng"))
    rows = {path: _same_verdicts(path) for path in paths}
    # every top-level capture has flows; of encap/ the VPN ones at least (the rest need decap)
    assert all(n > 0 for path, n in rows.items() if path.parent == shared_pcaps)
    encap = shared_pcaps / "encap"
    assert rows[encap / "ndpi-anyconnect-vpn.pcap"] > 0 and rows[encap / "ndpi-cloudflare-warp.pcap"] > 0


# ---- samples copied in the decoding thread (FlowTable.prepare) -------------------------------

def _samples(path: Path, *, copies: bool, told: str = "truth", poison: bool = False) -> list[tuple]:
    """Every payload sample the flow table takes from ``path`` read in 64 KiB steps, as the
    pipeline runs it (``copies``: each step's grouping and payload copies made by ``prepare``
    first) or without copies. ``told``: what ``prepare`` is told of the flows that took all
    their samples: the ``truth``, ``all`` flows of the step (no copy at all) or a random
    ``half`` of the open ones (wrong both ways). ``poison``: the step's capture bytes are zeroed after
    ``prepare``, so a sample read from the capture instead of the copy is noticed."""
    table = FlowTable(sample_policy=SAMPLE_POLICY)
    decoder = Decoder()
    rng = np.random.default_rng(3)
    out: list[tuple] = []
    with open(path, "rb") as f:
        for records in read_pcap(StreamSource(f, chunk=1 << 16), path.name, [],
                                 window_bytes=1 << 16):
            packets = decoder(records)
            if told == "all":  # the open flows and those the step opens
                step = group_packets(packets, np.flatnonzero(packets.status == 0)).uniq
                everything = np.unique(np.concatenate([table._index_hash, step]))
                table.sampled_out = (everything, everything)
            elif told == "half":
                some = np.unique(rng.choice(table._index_hash, table._index_hash.shape[0] // 2))
                table.sampled_out = (some, np.unique(rng.choice(table._index_hash, some.shape[0])))
            grouped = table.prepare(packets) if copies else None
            if poison:  # the records' bytes only: the reader keeps what follows for the next
                records.data[: int(records.offset[-1] + records.caplen[-1])] = 0
            s = table.update(packets, grouped=grouped).samples
            out += [(int(s.flow_id[k]), int(s.direction[k]), bool(s.whole[k]),
                     bytes(s.data[s.offset[k]:s.offset[k] + s.length[k]]))
                    for k in range(len(s.flow_id))]
    return out


@pytest.mark.parametrize("name", ["browsing", "exfil_tls", "exfil_quic", "dns_lookups"])
def test_samples_from_copies_are_the_capture_s(name: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / f"{name}.pcap"
    write_scenario(str(path), name, seed=7)
    monkeypatch.setattr(table_module, "COPY_SHARE", 1)  # copy however much may be sampled
    read = _samples(path, copies=False)
    assert len(read) >= 4 and any(len(b) > 30 for *_, b in read)
    # the table reads the copies: the capture zeroed after prepare changes nothing ...
    assert _samples(path, copies=True, poison=True) == read
    # ... and without a copy (told every flow is done) it reads the capture
    assert _samples(path, copies=True, told="all") == read
    assert _samples(path, copies=True, told="all", poison=True) != read
    # told wrong both ways, samples are still the capture's
    assert _samples(path, copies=True, told="half") == read


def test_prepare_copies_only_what_may_be_sampled(tmp_path: Path) -> None:
    """A long upload: once its sides have taken their samples, steps copy none of its
    payloads, and no step copies more than the first samples of each key and side."""
    path = tmp_path / "backup_upload.pcap"
    write_scenario(str(path), "backup_upload", seed=7)
    table = FlowTable(sample_policy=SAMPLE_POLICY)
    decoder = Decoder()
    copied, steps = [], 0
    with open(path, "rb") as f:
        for records in read_pcap(StreamSource(f, chunk=1 << 16), path.name, [],
                                 window_bytes=1 << 16):
            packets = decoder(records)
            grouped = table.prepare(packets)
            assert grouped is not None and grouped.payloads is not None
            copies = int((grouped.payloads.start >= 0).sum())
            groups = int(grouped.uniq.shape[0])
            assert copies <= 2 * FlowConfig().payload_samples * groups
            copied.append(copies)
            table.update(packets, grouped=grouped)
            steps += 1
    assert steps > 20 and sum(c == 0 for c in copied) > steps // 2, copied
