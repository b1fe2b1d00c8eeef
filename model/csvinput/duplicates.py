"""Ids seen so far, for the duplicate-id policy: 64-bit hashes of the id text, in bounded memory.

Only the rows that would be scored count: an id is a duplicate when an earlier *scored* row had
the same text (verbatim: `17` and `017` differ). Each id costs 12 bytes (hash + row number of its
first occurrence; 16 past row 2^32 - 1), kept as a few sorted runs merged as they grow, up to
MAX_RUN entries (lookups are binary searches). Hashes are pandas' SipHash-based `hash_array`
with its fixed key, so the same id hashes the same in every process, and a shard's runs can be
merged with other shards' by the assembler.

Two different ids share a hash with probability about n^2 / 2^65 (3e-6 for 10 million ids): such
a pair would be counted as a duplicate. Within one file that is the price of not keeping every id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd

HASH_ROW = np.dtype([("h", "<u8"), ("r", "<i8")])  # a shard's ids file, and every run beyond row 2^32 - 1
# In memory a run takes 12 bytes an id while its rows fit 32 bits (any file under 4 billion rows;
# SCORING_MAX_BYTES would allow more only with blank lines): 20 MB less at 5,000,000 ids.
HASH_ROW32 = np.dtype([("h", "<u8"), ("r", "<u4")])
_ROW32_END = 1 << 32
# Runs stop merging at this many entries (12 MB): a merge holds both inputs and its output, so
# merging the biggest runs too would add their size again to the peak at the end of a big file
# (+80 MB at 5,000,000 ids), while a lookup in a few more sorted runs costs little.
MAX_RUN = 1 << 20
BUCKETS = 256  # a shard's ids file is indexed by the top byte of the hash: ranged reads per bucket


def id_hashes(ids: np.ndarray) -> np.ndarray:
    """uint64 hash of each id's text."""
    if len(ids) == 0:
        return np.empty(0, dtype=np.uint64)
    return pd.util.hash_array(np.asarray(ids, dtype=object), categorize=False)


def _run_dtype(rows: np.ndarray) -> np.dtype:
    return HASH_ROW32 if len(rows) == 0 or int(rows.max()) < _ROW32_END else HASH_ROW


def _new_run(hashes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A run of hashes already sorted, with their rows: 12 bytes an entry when the rows allow."""
    run = np.empty(len(hashes), dtype=_run_dtype(rows))
    run["h"], run["r"] = hashes, rows
    return run


def _sorted_run(hashes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    order = np.argsort(hashes, kind="stable")
    return _new_run(hashes[order], rows[order])


def _merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two runs sorted by hash as one, `a`'s entry first among equal hashes.

    A merge by position, not a sort of both: the old way (concatenate, argsort, gather) held
    three copies and an index at the last merge, about 280 MB of a 5,000,000-row file's peak.
    """
    narrow = a.dtype == HASH_ROW32 and b.dtype == HASH_ROW32
    merged = np.empty(len(a) + len(b), dtype=HASH_ROW32 if narrow else HASH_ROW)
    at = np.searchsorted(a["h"], b["h"], side="right") + np.arange(len(b))  # where b's entries go
    taken = np.zeros(len(merged), dtype=bool)
    taken[at] = True
    merged[at] = b
    merged[~taken] = a
    return merged


def _first_of_ties(hashes: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An order by hash with the earliest row first among equal hashes, and the hashes in it.

    numpy's default sort is about 4x faster than its stable sort on random 64-bit keys (0.03 s
    against 0.13 s per million ids); ties (an id repeated within one call) are rare, and only
    then is the order taken by (hash, row).
    """
    order = np.argsort(hashes)
    ordered = hashes[order]
    if (ordered[1:] == ordered[:-1]).any():
        order = np.lexsort((rows, hashes))
        ordered = hashes[order]
    return order, ordered


class IdIndex:
    """First occurrences of the ids seen so far: hash -> row."""

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def record(self, ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """For rows in file order: the row of an earlier occurrence of each id, or -1 (then recorded).

        Earlier means a row recorded before this call, or an earlier row of this call.
        """
        hashes = id_hashes(ids)
        rows = np.asarray(rows, dtype=np.int64)
        order, ordered = _first_of_ties(hashes, rows)
        ordered_rows = rows[order]
        first = np.full(len(hashes), -1, dtype=np.int64)  # in hash order until the end
        for run in self._runs:  # sorted queries: binary searches that walk the run forwards
            at = np.minimum(np.searchsorted(run["h"], ordered), len(run) - 1)
            hit = run["h"][at] == ordered
            first[hit] = run["r"][at[hit]]
        repeat = np.zeros(len(ordered), dtype=bool)
        repeat[1:] = ordered[1:] == ordered[:-1]
        if repeat.any():
            group_start = np.maximum.accumulate(np.where(repeat, 0, np.arange(len(ordered))))
            first = np.where((first < 0) & repeat, ordered_rows[group_start], first)
        new = first < 0
        if new.any():
            self._add_run(_new_run(ordered[new], ordered_rows[new]))
        in_file_order = np.empty_like(first)
        in_file_order[order] = first
        return in_file_order

    def add(self, hashes: np.ndarray, rows: np.ndarray) -> None:
        """Record first occurrences (hashes not seen before, each once): a shard's seeds."""
        if len(hashes) == 0:
            return
        self._add_run(_sorted_run(hashes, np.asarray(rows, dtype=np.int64)))

    def _add_run(self, run: np.ndarray) -> None:
        self._runs.append(run)
        while (
            len(self._runs) > 1
            and len(self._runs[-2]) <= 2 * len(self._runs[-1])
            and len(self._runs[-2]) + len(self._runs[-1]) <= MAX_RUN
        ):
            last = self._runs.pop()
            self._runs[-1] = _merge(self._runs[-1], last)

    def to_array(self) -> np.ndarray:
        """All first occurrences, sorted by hash, as a shard's ids file holds them (HASH_ROW)."""
        merged = np.empty(0, dtype=HASH_ROW)
        for run in self._runs:
            merged = _merge(merged, run)
        return merged


def bucket_starts(array: np.ndarray) -> list[int]:
    """Index of the first entry of each bucket (top byte of the hash), plus the length: 257 numbers."""
    bounds = np.array([b << 56 for b in range(BUCKETS)], dtype=np.uint64)
    return [*np.searchsorted(array["h"], bounds).tolist(), len(array)]


Reader = Callable[[int, int], np.ndarray]  # (first entry, end entry) -> that slice of a shard's array


def cross_duplicates(
    parts: Sequence[tuple[list[int], Reader]], budget: int = 4_000_000
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Ids that repeat across parts (each part's ids unique): (hashes, later rows, first-occurrence rows).

    Every part is a sorted HASH_ROW array given by its bucket starts and a reader of entry ranges.
    Buckets are taken a group at a time, at most about `budget` entries of all parts together, so
    memory stays bounded whatever the size of the file.
    """
    counts = np.sum([np.diff(starts) for starts, _ in parts], axis=0) if parts else np.zeros(BUCKETS)
    low = 0
    while low < BUCKETS:
        high, total = low, 0
        while high < BUCKETS and (high == low or total + counts[high] <= budget):
            total += int(counts[high])
            high += 1
        slices = [read(starts[low], starts[high]) for starts, read in parts if starts[high] > starts[low]]
        low = high
        if len(slices) < 2:
            continue
        both = np.concatenate(slices)
        both = both[np.lexsort((both["r"], both["h"]))]
        repeat = np.zeros(len(both), dtype=bool)
        repeat[1:] = both["h"][1:] == both["h"][:-1]
        if repeat.any():
            group_start = np.maximum.accumulate(np.where(repeat, 0, np.arange(len(both))))
            yield both["h"][repeat], both["r"][repeat], both["r"][group_start[repeat]]
