"""Settings shared by scan, flows, lookup and live, from YAML (safely loaded) and flags."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

from burstwatch.config.countries import is_country
from burstwatch.decode.config import DecodeConfig
from burstwatch.errors import BurstwatchError
from burstwatch.inputfiles import read_text
from burstwatch.rules.yamlnodes import plain_data


class ConfigError(BurstwatchError):
    """A configuration file or option is invalid."""


@dataclass(frozen=True)
class AllowList:
    cidrs: tuple[str, ...] = ()
    asns: tuple[int, ...] = ()
    countries: tuple[str, ...] = ()
    sni: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.cidrs or self.asns or self.countries or self.sni)


@dataclass(frozen=True)
class Limits:
    """Memory ceilings in MiB, so that traffic (a flood of unique 5-tuples, payloads that open
    a protocol and never finish) cannot take the machine's memory; what they turn away is
    counted. ``None``: the component's own default."""

    flow_memory_mb: float | None = None  # the flow table (flows.config.FlowConfig)
    sample_memory_mb: float | None = None  # payload samples awaiting classification
    ledger_memory_mb: float | None = None  # DuckDB's memory_limit for the burst ledger


@dataclass(frozen=True)
class Settings:
    home_countries: tuple[str, ...] = ("US",)
    internal_nets: tuple[str, ...] = ()
    allow: AllowList = field(default_factory=AllowList)
    source: str = "built-in defaults"
    limits: Limits = field(default_factory=Limits)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


_KEYS = {"home_countries", "internal_nets", "allow", "limits", "decode"}
_DECODE_PORTS = ("vxlan_ports", "geneve_ports", "gtp_ports", "teredo_ports", "mpls_udp_ports")
_DECODE_KEYS = {"decap", "reassemble", "max_depth", "frag_timeout", *_DECODE_PORTS}
_ALLOW_KEYS = {"cidrs", "asns", "countries", "sni"}
_LIMIT_KEYS = {"flow_memory_mb", "sample_memory_mb", "ledger_memory_mb"}


def memory_mb(value: Any, where: str) -> float:
    """A memory ceiling in MiB: a finite number above zero."""
    try:
        mb = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number of MiB, not {value!r}") from None
    if not (0 < mb < 2**40):
        raise ConfigError(f"{where}: expected a number of MiB above 0, not {value!r}")
    return mb


def _limits(value: Any, where: str) -> Limits:
    if value is None:
        return Limits()
    if not isinstance(value, dict) or set(value) - _LIMIT_KEYS:
        raise ConfigError(f"{where}: expected keys among {', '.join(sorted(_LIMIT_KEYS))}")
    return Limits(**{k: memory_mb(v, f"{where}.{k}") for k, v in value.items() if v is not None})


def _countries(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list of two-letter country codes")
    out = []
    for v in value:
        code = str(v).strip().upper()
        if not is_country(code):
            raise ConfigError(f"{where}: {v!r} is not an ISO 3166-1 alpha-2 country code")
        out.append(code)
    return tuple(out)


def _cidrs(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list of CIDRs")
    for v in value:
        try:
            ipaddress.ip_network(str(v), strict=False)
        except ValueError:
            raise ConfigError(f"{where}: {v!r} is not an IP network (CIDR)") from None
    return tuple(str(v) for v in value)


def _decode(value: Any, where: str) -> DecodeConfig:
    """The ``decode`` section: tunnel ports, nesting depth, reassembly."""
    if not isinstance(value, dict) or set(value) - _DECODE_KEYS:
        raise ConfigError(f"{where}: expected keys among {', '.join(sorted(_DECODE_KEYS))}")
    out: dict[str, Any] = {}
    for key in _DECODE_PORTS:
        if key in value:
            ports = value[key] or []
            if not isinstance(ports, list) or not all(
                isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports
            ):
                raise ConfigError(f"{where}.{key}: expected a list of UDP ports (1-65535)")
            out[key] = tuple(ports)
    for key in ("decap", "reassemble"):
        if key in value:
            if not isinstance(value[key], bool):
                raise ConfigError(f"{where}.{key}: expected true or false")
            out[key] = value[key]
    if "max_depth" in value:
        if not isinstance(value["max_depth"], int) or not 1 <= value["max_depth"] <= 16:
            raise ConfigError(f"{where}.max_depth: expected a number of IP layers, 1 to 16")
        out["max_depth"] = value["max_depth"]
    if "frag_timeout" in value:
        if not isinstance(value["frag_timeout"], (int, float)) or value["frag_timeout"] <= 0:
            raise ConfigError(f"{where}.frag_timeout: expected seconds (> 0)")
        out["frag_timeout"] = float(value["frag_timeout"])
    return DecodeConfig(**out)


def _parse(data: Any, source: str) -> Settings:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the configuration must be a mapping of keys to values")
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                          f"known keys: {', '.join(sorted(_KEYS))}")
    allow_raw = data.get("allow") or {}
    if not isinstance(allow_raw, dict) or set(allow_raw) - _ALLOW_KEYS:
        raise ConfigError(f"{source}: allow: expected keys among {', '.join(sorted(_ALLOW_KEYS))}")
    try:
        asns = tuple(int(str(a).upper().removeprefix("AS")) for a in allow_raw.get("asns") or [])
    except ValueError:
        raise ConfigError(f"{source}: allow.asns: expected AS numbers") from None
    allow = AllowList(
        cidrs=_cidrs(allow_raw.get("cidrs") or [], f"{source}: allow.cidrs"),
        asns=asns,
        countries=_countries(allow_raw.get("countries") or [], f"{source}: allow.countries"),
        sni=tuple(str(s).lower() for s in allow_raw.get("sni") or []),
    )
    return Settings(
        home_countries=_countries(data.get("home_countries", ["US"]), f"{source}: home_countries"),
        internal_nets=_cidrs(data.get("internal_nets") or [], f"{source}: internal_nets"),
        allow=allow,
        source=source,
        limits=_limits(data.get("limits"), f"{source}: limits"),
        decode=_decode(data.get("decode") or {}, f"{source}: decode"),
    )


def load_settings(
    path: str | None = None,
    home: str | None = None,
    internal_nets: list[str] | None = None,
) -> Settings:
    """The shipped defaults, or ``path``, with command-line overrides applied."""
    if path:
        source = path
        data = plain_data(read_text(path, "a configuration file"), source)
    else:
        text = resources.files("burstwatch.config").joinpath("default.yaml").read_text("utf-8")
        source = "default configuration"
        data = plain_data(text, source)
    settings = _parse(data, source)
    if home:
        settings = replace(settings, home_countries=_countries(home, "--home"))
    if internal_nets:
        extra = _cidrs(list(internal_nets), "--internal-nets")
        settings = replace(settings, internal_nets=settings.internal_nets + extra)
    return settings
