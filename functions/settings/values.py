"""Reading one setting's text as its kind says (functions/settings/catalog.py), with errors that name it."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from typing import Any

from functions.settings.catalog import AUTO, Kind, Setting
from lake.connection import ConnectionSettingError, storage_connection

MIB = 1024 * 1024
_SIZE = re.compile(r"^(\d+)\s*(|k|kb|kib|m|mb|mib|g|gb|gib)$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": MIB, "g": 1024 * MIB}
_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


def default_workers() -> int:
    """`auto` workers: one per core, at most 4 (the database and the storage account have limits too)."""
    return max(1, min(os.cpu_count() or 1, 4))


def text(env: Mapping[str, str], setting: Setting) -> str | None:
    """The setting's text from `env` (blank counts as unset), else its default (None when required)."""
    value = env.get(setting.name)
    if value is not None and value.strip():
        return value.strip()
    return setting.default


def value(env: Mapping[str, str], setting: Setting) -> Any:
    """The setting parsed to its kind's type; SettingsError names the setting and what it expects."""
    if setting.kind is Kind.CONNECTION:
        try:
            return storage_connection(env, setting.name)
        except ConnectionSettingError as error:
            raise SettingsError(str(error)) from None
    raw = text(env, setting)
    if raw is None:
        raise SettingsError(f"setting {setting.name} is missing: {setting.meaning}")
    return parse(setting, raw)


def parse(setting: Setting, raw: str) -> Any:
    """`raw` (already stripped) as the setting's kind."""
    name = setting.name
    match setting.kind:
        case Kind.TEXT:
            return raw
        case Kind.LIST:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        case Kind.JSON:
            if not raw:
                return None
            try:
                return json.loads(raw)
            except json.JSONDecodeError as error:
                raise SettingsError(f"setting {name} is not valid JSON: {error}") from None
        case Kind.INT | Kind.WORKERS:
            if setting.kind is Kind.WORKERS and raw.lower() == AUTO:
                return default_workers()
            return _whole_number(setting, raw)
        case Kind.NUMBER:
            return _decimal(setting, raw)
        case Kind.SIZE:
            found = _SIZE.fullmatch(raw)
            if found is None or int(found.group(1)) < 1:
                raise SettingsError(
                    f"setting {name}={raw!r} is not a size such as 1048576, 512KiB, 64MB or 10GiB"
                )
            return int(found.group(1)) * _UNITS[found.group(2)[:1].lower()]
        case Kind.BOOL:
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise SettingsError(f"setting {name}={raw!r} is not a boolean (use true or false)")
        case Kind.CHOICE:
            if raw not in setting.choices:
                hint = f" ({setting.hint})" if setting.hint else ""
                raise SettingsError(
                    f"setting {name}={raw!r} is not one of {', '.join(setting.choices)}{hint}"
                )
            return raw
        case Kind.NCRONTAB:
            if len(raw.split()) != 6 and raw.count(":") != 2:
                raise SettingsError(
                    f"setting {name}={raw!r} is not an NCRONTAB expression with 6 fields "
                    "(second minute hour day month day-of-week), e.g. '0 0 2 * * *'"
                )
            return raw
        case Kind.QUEUE:
            if not _QUEUE_NAME.fullmatch(raw):
                raise SettingsError(
                    f"setting {name}={raw!r} is not a storage queue name "
                    "(3-63 lowercase letters, digits and single hyphens)"
                )
            return raw
    raise SettingsError(f"setting {name}: kind {setting.kind} cannot be parsed from text")


def _whole_number(setting: Setting, raw: str) -> int:
    try:
        number = int(raw)
    except ValueError:
        raise SettingsError(f"setting {setting.name}={raw!r} is not a whole number") from None
    low = setting.minimum if setting.minimum is not None else -(2**63)
    high = setting.maximum if setting.maximum is not None else 2**63
    if not low <= number <= high:
        raise SettingsError(f"setting {setting.name}={number} is outside {low}..{high}")
    return number


def _decimal(setting: Setting, raw: str) -> float:
    try:
        number = float(raw)
    except ValueError:
        raise SettingsError(f"setting {setting.name}={raw!r} is not a number such as 0.1") from None
    low = setting.minimum if setting.minimum is not None else -math.inf
    high = setting.maximum if setting.maximum is not None else math.inf
    if not low <= number <= high:  # also refuses nan
        raise SettingsError(f"setting {setting.name}={number} is outside {low:g}..{high:g}")
    return number
