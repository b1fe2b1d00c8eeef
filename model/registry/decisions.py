"""The promotion log: every decision about a stage, promoted or refused, one JSON line each, append-only.

Stage files keep the last HISTORY_LIMIT changes of one stage; this log keeps every decision of
every stage of a model, refusals included, with the evidence it was taken on (the gate's figures,
the override's reason, who acted), for whoever asks later why a version serves or does not.

Append-only on either store: each append reads the log with its token, writes the old bytes plus
one line conditionally on that token, and retries from a fresh read when another writer got in
first. A line once written is never rewritten: every later content starts with every earlier one
(tests/test_registry_decisions.py, concurrent writers on a folder and on Azurite).
"""

from __future__ import annotations

import json
from typing import Any

from model.registry.errors import ConcurrentUpdateError, PromotionRefused, RegistryError
from model.registry.layout import decisions_file
from model.registry.records import now
from model.registry.stores import Store

MAX_APPEND_ATTEMPTS = 50  # optimistic retries under contention; each costs one read and one write


class DecisionLog:
    """`{model}/promotions.jsonl` in a registry store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def append(self, name: str, decision: dict[str, Any]) -> dict[str, Any]:
        """Append one decision (stamped with `logged_at`); return it as written."""
        entry = {"logged_at": now(), **decision}
        line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode()
        if b"\n" in line[:-1]:
            raise RegistryError("a decision must serialise to one line")  # json.dumps escapes newlines
        path = decisions_file(name)
        for _attempt in range(MAX_APPEND_ATTEMPTS):
            current, token = self.store.read_with_token(path)
            body = current or b""
            if body and not body.endswith(b"\n"):
                raise RegistryError(f"{path} does not end with a complete line: refusing to append")
            try:
                self.store.replace(path, body + line, token)
                return entry
            except ConcurrentUpdateError:
                continue  # another decision was appended meanwhile: read again, keep both
        raise ConcurrentUpdateError(f"could not append to {path} after {MAX_APPEND_ATTEMPTS} attempts: retry")

    def read(self, name: str) -> list[dict[str, Any]]:
        """Every decision, oldest first; [] before the first one."""
        raw = self.store.read(decisions_file(name))
        if not raw:
            return []
        return [json.loads(line) for line in raw.decode().splitlines() if line.strip()]


def approval_of(decisions: list[dict[str, Any]], version: str, stage: str) -> dict[str, Any] | None:
    """The latest approval of `version` for `stage` in the log, or None."""
    found = [
        d
        for d in decisions
        if d.get("kind") == "approval" and str(d.get("version")) == version and d.get("stage") == stage
    ]
    return found[-1] if found else None


def approval_record(stage: str, version: str, by: str, note: str | None) -> dict[str, Any]:
    """The log's record of a person approving `version` for `stage` (checked when it is promoted)."""
    return {
        "stage": stage,
        "version": version,
        "kind": "approval",
        "approved_at": now(),
        "actor": by,
        "reason": None if note is None else note.strip() or None,
        "gate": None,
        "override": None,
        "previous": None,
    }


def required_approval(log: DecisionLog, name: str, version: str, stage: str) -> dict[str, Any]:
    """The approval a promotion of `version` to `stage` needs; PromotionRefused when there is none."""
    approval = approval_of(log.read(name), version, stage)
    if approval is None:
        raise PromotionRefused(
            f"version {version} of {name!r} cannot go to {stage} without an approval: "
            f"`python -m model approve {version} {stage} --by NAME` records one"
        )
    return approval
