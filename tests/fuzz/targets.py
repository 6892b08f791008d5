"""Fuzz targets: each takes arbitrary bytes and runs one input path of burstwatch on them.

A target may end in the exceptions its path promises (a ``BurstwatchError`` with one line for
files; ``ParseError`` for the handshake parsers; nothing at all for the detectors and the rule
loader, which report problems as verdicts and findings). Anything else escaping is a bug:
the harness (``tests/test_fuzz.py`` for the short run, ``tests/fuzz/run.py`` for long ones)
fails on it and keeps the input in ``tests/fuzz/corpus/<target>/``.

``seeds(name)`` builds the starting inputs of a target from the project's own generators, so
the corpus on disk holds only what fuzzing found (and a copy of the seeds it started from).
"""

from __future__ import annotations

import contextlib
import gzip
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from burstwatch.errors import BurstwatchError

CORPUS = Path(__file__).parent / "corpus"
MAX_INPUT = 1 << 16


def _file_of(data: bytes, suffix: str) -> Path:
    """The bytes as a file in a fresh temporary folder (removed by the caller's context)."""
    folder = Path(tempfile.mkdtemp(prefix="bwfuzz-"))
    path = folder / f"input{suffix}"
    path.write_bytes(data)
    return path


def _cleanup(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.parent.rmdir()


def _one_line(exc: BaseException) -> None:
    """A promised error must be one line, as the CLI prints it."""
    if "\n" in str(exc):
        raise AssertionError(f"multi-line error message: {exc!r}")


# ---- capture files: readers (pcap, pcapng, gzip) and the decoder ----
def capture(data: bytes) -> None:
    from burstwatch.decode import decode
    from burstwatch.flows import FlowTable
    from burstwatch.ingest import open_capture

    path = _file_of(data, ".pcap")
    try:
        table = FlowTable(sample_payloads=False)
        reader = open_capture(str(path))
        for records in reader.batches():
            packets = decode(records)
            assert packets.status.shape[0] == len(records)
            table.update(packets)
        table.flush()
    except BurstwatchError as exc:
        _one_line(exc)
    finally:
        _cleanup(path)


_LINKTYPES = (0, 1, 12, 14, 101, 108, 113, 228, 229, 276)


def frames(data: bytes) -> None:
    """Frames handed straight to the decoder: the first byte picks the link type, then each
    frame is a 2-byte length and its bytes (a length past the end takes what is left)."""
    from burstwatch.decode import decode
    from burstwatch.ingest.records import RecordBatch

    if not data:
        return
    linktype = _LINKTYPES[data[0] % len(_LINKTYPES)]
    offsets, lengths, pos = [], [], 1
    while pos + 2 <= len(data):
        n = min(struct.unpack_from("!H", data, pos)[0], len(data) - pos - 2)
        offsets.append(pos + 2)
        lengths.append(n)
        pos += 2 + n
    k = len(offsets)
    if not k:
        return
    batch = RecordBatch(
        data=np.frombuffer(data, np.uint8), offset=np.array(offsets, np.int64),
        caplen=np.array(lengths, np.uint32), wirelen=np.array(lengths, np.uint32),
        ts_ns=np.arange(k, dtype=np.int64), linktype=np.full(k, linktype, np.uint16),
        iface=np.zeros(k, np.uint16), file_offset=np.array(offsets, np.int64),
    )
    packets = decode(batch)
    # The payload may run past the captured bytes (a snap length), its start may not: the
    # sampler reads from there.
    ok = packets.status == 0
    assert np.all(packets.payload_off[ok] <= batch.caplen[ok])


# ---- handshake parsers and protocol detectors ----
def flow_sample(data: bytes) -> tuple[int, int, int, list[bytes], list[bytes]]:
    """(proto, client port, server port, client payloads, server payloads) from bytes: a
    header byte (bit 0: UDP) and two ports, then records of direction byte, 2-byte length and
    payload."""
    if len(data) < 5:
        return 6, 0, 0, [], []
    proto = 17 if data[0] & 1 else 6
    cport, sport = struct.unpack_from("!HH", data, 1)
    client: list[bytes] = []
    server: list[bytes] = []
    pos = 5
    while pos + 3 <= len(data):
        side = data[pos]
        n = struct.unpack_from("!H", data, pos + 1)[0]
        chunk = data[pos + 3 : pos + 3 + n]
        (server if side & 1 else client).append(chunk)
        pos += 3 + n
    return proto, cport, sport, client, server


def encode_flow(proto: int, cport: int, sport: int, client: list[bytes], server: list[bytes]) -> bytes:
    out = bytearray([1 if proto == 17 else 0]) + struct.pack("!HH", cport, sport)
    for side, payloads in ((0, client), (1, server)):
        for p in payloads:
            out += bytes([side]) + struct.pack("!H", len(p)) + p
    return bytes(out)


def handshakes(data: bytes) -> None:
    from burstwatch.enrich.encryption._bytes import ParseError
    from burstwatch.enrich.encryption.classify import classify_sample
    from burstwatch.enrich.encryption.dtls import read_datagram
    from burstwatch.enrich.encryption.hello import (
        first_handshake,
        parse_client_hello,
        parse_server_hello,
    )
    from burstwatch.enrich.encryption.quic_initial import initial_client_hello
    from burstwatch.enrich.encryption.verdict import FlowSample

    proto, cport, sport, client, server = flow_sample(data)
    classify_sample(FlowSample.of(proto, cport, sport, client, server))
    for payload in client[:2] + server[:2]:
        for parse in (parse_client_hello, parse_server_hello, first_handshake,
                      lambda b: parse_client_hello(b, dtls=True),
                      lambda b: first_handshake(b, dtls=True)):
            with contextlib.suppress(ParseError):
                parse(payload)
        with contextlib.suppress(ParseError):
            read_datagram(payload)
    initial_client_hello(client[:4])


# ---- files a user writes: rules, configuration, models ----
def rules(data: bytes) -> None:
    from burstwatch.rules import default_catalog, parse_text

    text = data.decode("utf-8", "replace")
    _, findings = parse_text(text, "fuzz.yml", default_catalog())
    for f in findings:
        if "\n" in f.message:
            raise AssertionError(f"multi-line finding: {f}")


def _through_file(suffix: str, load: Callable[[str], object]) -> Callable[[bytes], None]:
    """A target that writes the bytes to a file and hands its path to ``load``."""

    def target(data: bytes) -> None:
        path = _file_of(data, suffix)
        try:
            load(str(path))
        except BurstwatchError as exc:
            _one_line(exc)
        finally:
            _cleanup(path)

    return target


def _rule_file(path: str) -> None:
    """The whole path of a rule file, bytes included (encoding, NUL bytes, size)."""
    from burstwatch.rules import default_catalog, parse_paths

    parse_paths([path], default_catalog())


def _config(path: str) -> None:
    from burstwatch.config.settings import load_settings

    load_settings(path)


def _model(path: str) -> None:
    from burstwatch.score.conversation import ConversationModel

    ConversationModel.load(path)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "capture": capture,
    "frames": frames,
    "handshakes": handshakes,
    "rules": rules,
    "rule_file": _through_file(".yml", _rule_file),
    "config": _through_file(".yaml", _config),
    "model": _through_file(".bwm", _model),
}


# ---- seeds ----
def _scenario_flows() -> list[bytes]:
    """The first payloads of each flow of a few generated scenarios (TLS, QUIC, WireGuard,
    DTLS-like calls, SSH, DNS, unknown UDP), encoded for ``handshakes``."""
    import dpkt

    from burstwatch.synth.scenarios import run_scenario

    out = []
    for name in ("exfil_tls", "exfil_quic", "exfil_wireguard", "exfil_udp_unknown",
                 "encrypted_call", "ssh_interactive_abroad", "dns_lookups"):
        flows: dict[tuple, tuple[tuple, list[bytes], list[bytes]]] = {}
        for pkt in run_scenario(name, 1).packets():
            raw = bytes(pkt.data)
            ip = dpkt.ip.IP(raw) if raw[0] >> 4 == 4 else dpkt.ip6.IP6(raw)
            l4 = ip.data
            if not isinstance(l4, (dpkt.tcp.TCP, dpkt.udp.UDP)) or not bytes(l4.data):
                continue
            a, b = (ip.src, l4.sport), (ip.dst, l4.dport)
            key = tuple(sorted((a, b)))
            if key not in flows:
                flows[key] = (a, [], [])
            first, client, server = flows[key]
            (client if a == first else server).append(bytes(l4.data)[:1500])
        for (_, port), client, server in list(flows.values())[:3]:
            proto = 17 if name not in ("exfil_tls", "ssh_interactive_abroad") else 6
            out.append(encode_flow(proto, port, 443, client[:4], server[:4]))
    return out


def seeds(name: str) -> list[bytes]:
    """Starting inputs of target ``name``, made by the project's own generators."""
    repo = Path(__file__).resolve().parents[2]
    if name == "capture":
        from tests.craft import pcap_bytes, pcapng_bytes
        from tests.flowcraft import SYN, frame

        packets = [(k * 1_000_000, frame("10.0.0.1", "203.0.113.5", 40000 + k, 443, flags=SYN,
                                         payload=k * 7)) for k in range(6)]
        pcap = pcap_bytes(packets, nanosecond=True).data
        ng = pcapng_bytes(packets)
        return [pcap, ng, gzip.compress(pcap, mtime=0), gzip.compress(ng, mtime=0),
                (repo / "pcaps" / "demo.pcap").read_bytes()[:8192]]
    if name == "frames":
        from tests.flowcraft import ACK, frame

        f = frame("10.0.0.1", "203.0.113.5", 40000, 443, flags=ACK, payload=20)
        v6 = frame("fd00::1", "2001:db8::5", 40000, 53, proto=17, payload=12)
        return [bytes([1]) + struct.pack("!H", len(f)) + f + struct.pack("!H", len(v6)) + v6,
                bytes([4]) + struct.pack("!H", len(f) - 14) + f[14:]]
    if name == "handshakes":
        return _scenario_flows()
    if name in ("rules", "rule_file"):
        return [p.read_bytes() for p in sorted((repo / "rules").glob("*.yml"))[:4]]
    if name == "config":
        return [(repo / "burstwatch" / "config" / "default.yaml").read_bytes(),
                b"home_countries: [DE, AT]\ninternal_nets: [198.51.100.0/24]\n"
                b"allow: {asns: [AS15169], sni: ['*.example.com']}\nlimits: {flow_memory_mb: 64}\n"]
    if name == "model":
        return [(repo / "burstwatch" / "score" / "data" / "conversation-model.bwm").read_bytes()]
    raise KeyError(name)
