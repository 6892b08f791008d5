"""Settings shared by scan, flows, lookup and live, from YAML (safely loaded) and flags."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from burstwatch.config.countries import is_country
from burstwatch.errors import BurstwatchError


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
class Settings:
    home_countries: tuple[str, ...] = ("US",)
    internal_nets: tuple[str, ...] = ()
    allow: AllowList = field(default_factory=AllowList)
    source: str = "built-in defaults"


_KEYS = {"home_countries", "internal_nets", "allow"}
_ALLOW_KEYS = {"cidrs", "asns", "countries", "sni"}


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
    )


def load_settings(
    path: str | None = None,
    home: str | None = None,
    internal_nets: list[str] | None = None,
) -> Settings:
    """The shipped defaults, or ``path``, with command-line overrides applied."""
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read configuration ({exc.strerror})") from None
        source = path
    else:
        text = resources.files("burstwatch.config").joinpath("default.yaml").read_text("utf-8")
        source = "default configuration"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ConfigError(f"{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    settings = _parse(data, source)
    if home:
        settings = Settings(_countries(home, "--home"), settings.internal_nets, settings.allow, settings.source)
    if internal_nets:
        extra = _cidrs(list(internal_nets), "--internal-nets")
        settings = Settings(settings.home_countries, settings.internal_nets + extra, settings.allow, settings.source)
    return settings
