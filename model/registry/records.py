"""What a stage file holds: the version a stage serves, who moved it there, when and why, and the
records it replaced (the last HISTORY_LIMIT of them, oldest first)."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

HISTORY_LIMIT = 50


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def actor_of(actor: str | None) -> str:
    """The person recorded as moving a stage: the one given, else the login name."""
    return actor or os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"


def promotion_record(
    stage: str,
    version: str,
    *,
    actor: str | None,
    gate: dict[str, Any] | None,
    override_reason: str | None,
    previous: str | None,
) -> dict[str, Any]:
    """The record of a promotion; `gate` is the passed gate's result, None if none was needed."""
    return {
        "stage": stage,
        "version": version,
        "kind": "promote",
        "promoted_at": now(),
        "actor": actor_of(actor),
        "gate": gate,
        "override": None if override_reason is None else {"reason": override_reason.strip()},
        "previous": previous,
    }


def rollback_record(
    stage: str, version: str, *, actor: str | None, reason: str, previous: str
) -> dict[str, Any]:
    """The record of a rollback to `version`; `previous` is the version rolled back from."""
    return {
        "stage": stage,
        "version": version,
        "kind": "rollback",
        "promoted_at": now(),
        "actor": actor_of(actor),
        "reason": reason.strip(),
        "gate": None,
        "override": None,
        "previous": previous,
    }


def with_history(record: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """`record` with the history of `current` (the record it replaces) and `current` itself appended."""
    history: list[dict[str, Any]] = []
    if current is not None:
        history = [*current.get("history", []), {k: v for k, v in current.items() if k != "history"}]
    return {**record, "history": history[-HISTORY_LIMIT:]}


def refusal_record(
    stage: str,
    version: str,
    actor: str | None,
    reason: str,
    gate: dict[str, Any] | None,
    champion: str | None,
) -> dict[str, Any]:
    """The promotion log's record of a refused promotion: why, and the gate's figures if it ran."""
    return {
        "stage": stage,
        "version": version,
        "kind": "refused",
        "promoted_at": None,
        "decided_at": now(),
        "actor": actor_of(actor),
        "reason": reason,
        "gate": gate,
        "override": None,
        "previous": champion,
    }
