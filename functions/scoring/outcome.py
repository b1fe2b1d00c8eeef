"""What one scoring invocation did: the outcome vocabulary, and which outcomes count as success.

The statuses are a StrEnum: they compare equal to, print as, and serialize as their plain values,
so log lines and JSON read the same words they always did.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """One invocation's outcome for one input (or one shard of it)."""

    SCORED = "scored"  # this invocation published the output
    RECOVERED = "recovered"  # the output was committed by a crashed run: its manifest was written
    DUPLICATE = "duplicate"  # already done (or planned) by another delivery: nothing written
    FANNED_OUT = "fanned_out"  # a big input was planned into shards, sent to the shard queue
    SHARD_SCORED = "shard_scored"  # one shard scored; others (or a second pass) still to come
    REJECTED = "rejected"  # the file cannot be scored: it went to rejected/ with error.json
    SUPERSEDED = "superseded"  # a newer version replaced the input: its own trigger scores it
    IGNORED = "ignored"  # a file name or queue message that names no input: logged, left alone

    @property
    def ok(self) -> bool:
        """Whether the input is scored, or on its way to be: nothing for an operator to do."""
        return self in OK

    @classmethod
    def published(cls, committed: bool) -> Status:
        """After the exactly-once publish: this call committed the output, or another one had."""
        return cls.SCORED if committed else cls.DUPLICATE


OK = frozenset({Status.SCORED, Status.RECOVERED, Status.DUPLICATE, Status.FANNED_OUT, Status.SHARD_SCORED})


@dataclass(frozen=True)
class Outcome:
    """What one invocation did with one input (or one shard of it)."""

    status: Status
    input: str
    detail: str
    manifest: dict[str, Any] | None = None
    monitoring: dict[str, Any] | None = None  # the drift verdict and estimate (scoring.context.batch_summary)

    @property
    def ok(self) -> bool:
        return self.status.ok
