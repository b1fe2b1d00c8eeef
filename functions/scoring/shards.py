"""The pieces of a fan-out that are not its control flow: the queue message, work-file names, and
the ids files through which shards find the ids that repeat across them.

Each shard writes the first occurrence of every id it scored (16 bytes each: hash, row; sorted,
with the start of each of 256 hash buckets in its result), so the assembler can merge all shards
a group of buckets at a time in bounded memory (`model.csvinput.duplicates.cross_duplicates`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from azure.storage.blob import ContainerClient

from functions.scoring.context import ScoringContext
from functions.scoring.source import InputBlob
from lake.paths import OutputPaths, input_name
from model.csvinput.duplicates import HASH_ROW, Reader, bucket_starts, cross_duplicates
from model.csvinput.options import DEFAULT_DUPLICATE_IDS

TASK_FORMAT = 1
MARKER = "fanout.json"
RESCORE = "rescore.json"  # written when shards must be scored again without cross-shard duplicates
MAX_CROSS_DUPLICATES = 4_000_000  # reject_rows re-scores at most this many repeated rows (64 MB of seeds)


class ShardStatus(StrEnum):
    """`status` of a shard's result file: what the assembler finds for each shard."""

    OK = "ok"  # scored: its blocks are staged, its tally and drift counts are in the result
    REJECTED = "rejected"  # the shard's bytes make the whole file rejected (code, message, details)
    SUPERSEDED = "superseded"  # the input was replaced while the shard read it


class BadMessageError(ValueError):
    """A queue message that is not a shard task (permanent: logged and dropped)."""


@dataclass(frozen=True)
class ShardTask:
    """One queue message: everything a worker needs to score its shard, and to assemble if last."""

    input: str  # blob name in scoring-input
    etag: str
    size: int
    version: str
    stage: str | None
    run: str
    shard: int
    shards: int
    start: int
    end: int
    first_row: int
    header_end: int
    scored_at: str
    input_sha256: str
    input_rows: int
    last_modified: str
    started: float
    format: int = TASK_FORMAT
    rescore: bool = False  # the second pass of reject_rows: ids repeated from earlier shards are rejected
    duplicate_ids: str = (
        DEFAULT_DUPLICATE_IDS  # SCORING_DUPLICATE_IDS when the file was planned: every shard the same
    )

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, body: str | bytes) -> ShardTask:
        try:
            data = json.loads(body)
            task = cls(**data)
        except (ValueError, TypeError) as error:
            raise BadMessageError(f"not a shard task: {error}: {str(body)[:200]!r}") from None
        if task.format != TASK_FORMAT or not 0 <= task.shard < task.shards or not task.start < task.end:
            raise BadMessageError(f"inconsistent shard task: {str(body)[:200]!r}")
        input_name(task.input)  # the same name rules as the trigger
        return task

    @property
    def name(self) -> str:
        return input_name(self.input)

    @property
    def paths(self) -> OutputPaths:
        return OutputPaths(self.name, self.version)

    def source(self, ctx: ScoringContext) -> InputBlob:
        return InputBlob(ctx.input_client(self.input), self.etag, self.size, self.last_modified)

    @property
    def part(self) -> int:
        """Block-id part of this shard's blocks: 1..shards, the re-scored pass after them."""
        return 1 + self.shard + (self.shards if self.rescore else 0)

    def result_path(self) -> str:
        suffix = ".rescored.json" if self.rescore else ".json"
        return self.paths.shard_file(self.run, self.shard, suffix)

    def work_file(self, shard: int, kind: str) -> str:
        return self.paths.shard_file(self.run, shard, f".{kind}")


def run_key(etag: str, version: str) -> str:
    """12 hex characters naming one fan-out (input version x model version): block ids and work folder."""
    return hashlib.sha256(f"{etag}|{version}".encode()).hexdigest()[:12]


def block_prefix(run: str, part: int) -> str:
    """Block ids of one blob must all have the same length: run + 5-digit part (0 = header)."""
    return f"{run}{part:05d}"


# ------------------------------------------------------------------------------------ ids files


def write_ids(container: ContainerClient, path: str, array: np.ndarray) -> dict[str, Any]:
    """A shard's sorted first occurrences (hash, row); what its result says about them."""
    container.upload_blob(path, array.tobytes(), overwrite=True)  # the same bytes on every retry
    return {"path": path, "starts": bucket_starts(array)}


def read_ids(container: ContainerClient, path: str, first: int = 0, end: int | None = None) -> np.ndarray:
    blob = container.get_blob_client(path)
    size = HASH_ROW.itemsize
    if end is not None and end <= first:
        return np.empty(0, dtype=HASH_ROW)
    length = None if end is None else (end - first) * size
    data = blob.download_blob(offset=first * size, length=length).readall()
    return np.frombuffer(data, dtype=HASH_ROW)


def _reader(container: ContainerClient, path: str) -> Reader:
    return lambda first, end: read_ids(container, path, first, end)


@dataclass
class CrossShard:
    """Ids repeated across shards: how many rows, the first few (row, first row), seeds per shard."""

    count: int = 0
    examples: list[tuple[int, int]] = field(default_factory=list)
    seeds: dict[int, np.ndarray] = field(default_factory=dict)  # shard -> (hash, first row) to reject
    first_of: dict[int, int] = field(default_factory=dict)  # a shard's first occurrence -> the file's

    def resolve(self, examples: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Examples found inside a shard name the shard's first occurrence: name the file's instead."""
        return sorted((row, self.first_of.get(first, first)) for row, first in examples)


def cross_shard(
    container: ContainerClient, results: list[dict[str, Any]], sample: int, wanted: set[int]
) -> CrossShard:
    """Merge the shards' ids files (bounded memory); keep what reject_rows needs to re-score.

    `wanted`: first rows of examples found inside shards, to resolve to the file's first rows.
    """
    parts = [(r["ids"]["starts"], _reader(container, r["ids"]["path"])) for r in results if r.get("ids")]
    first_rows = np.array([r["first_row"] for r in results], dtype=np.int64)
    wanted_rows = np.fromiter(wanted, dtype=np.int64, count=len(wanted))
    found = CrossShard()
    seeds: dict[int, list[np.ndarray]] = {}
    for hashes, rows, firsts in cross_duplicates(parts):
        found.count += len(rows)
        hit = np.isin(rows, wanted_rows)
        found.first_of.update(zip(rows[hit].tolist(), firsts[hit].tolist(), strict=True))
        order = np.argsort(rows, kind="stable")[:sample]
        found.examples = sorted(found.examples + list(zip(rows[order].tolist(), firsts[order].tolist(),
                                                          strict=True)))[:sample]  # fmt: skip
        if found.count > MAX_CROSS_DUPLICATES:
            continue  # counted, but too many to re-score row by row (the caller refuses the file)
        shard_of = np.searchsorted(first_rows, rows, side="right") - 1
        for shard in np.unique(shard_of).tolist():
            mine = shard_of == shard
            seed = np.empty(int(mine.sum()), dtype=HASH_ROW)
            seed["h"], seed["r"] = hashes[mine], firsts[mine]
            seeds.setdefault(shard, []).append(seed)
    found.seeds = {shard: np.unique(np.concatenate(parts_)) for shard, parts_ in seeds.items()}
    return found


def write_seed(container: ContainerClient, path: str, seed: np.ndarray) -> None:
    container.upload_blob(path, seed.tobytes(), overwrite=True)


def read_seed(container: ContainerClient, path: str) -> np.ndarray:
    data = container.get_blob_client(path).download_blob().readall()
    return np.frombuffer(data, dtype=HASH_ROW).copy()
