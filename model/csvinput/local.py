"""Score a local CSV file exactly as the blob trigger scores a blob, with files for outputs.

<output>                predictions (the trigger's predictions.csv format), written as
                        <output>.partial and renamed when complete
<output>.rejected.csv   `row,reason` of every rejected row (only if a row was rejected)
<output>.error.json     a file-level rejection, in the shape of the trigger's error.json

Same scanner, header checks, parser, validation, duplicate-id policy and rejection codes as the
trigger; the only difference is the delimiter: a local file may be `;`-separated (the bank file).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from model.csvinput.encode import rejected_header
from model.csvinput.errors import FileRejected, error_document
from model.csvinput.header import sniff_delimiter
from model.csvinput.options import MAX_RECORD_BYTES
from model.csvinput.run import ReadOptions, ScoredInput, score_checked
from model.csvinput.scan import RecordScanner
from model.csvinput.scorer import LazySink, check_size
from model.csvinput.stream import CheckedStream, file_chunks
from model.drift import DriftCounts
from model.serving import LoadedModel


@dataclass(frozen=True)
class LocalOutputs:
    predictions: Path
    rejected_rows: Path
    error: Path
    partial: Path

    @classmethod
    def beside(cls, output: Path) -> LocalOutputs:
        return cls(
            output,
            output.with_name(output.stem + ".rejected.csv"),
            output.with_name(output.name + ".error.json"),
            output.with_name(output.name + ".partial"),
        )


class _File:
    """A sink onto an open binary file."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle

    def write(self, data: bytes) -> None:
        self.handle.write(data)


def model_description(model: LoadedModel) -> dict[str, Any]:
    return {"name": model.name, "version": model.version, "stage": None, "threshold": model.threshold}


def resolve_delimiter(path: Path, delimiter: str) -> str:
    """`auto`: `;` or `,` from the first line (as the offline scorer always did); otherwise as given."""
    if delimiter != "auto":
        return delimiter
    with path.open("rb") as handle:
        return sniff_delimiter(handle.read(MAX_RECORD_BYTES))


def score_file(
    path: Path,
    model: LoadedModel,
    output: Path,
    options: ReadOptions,
    max_record_bytes: int = MAX_RECORD_BYTES,
    scored_at: str | None = None,
) -> ScoredInput:
    """Score `path` into the files beside `output`; raise FileRejected (after writing error.json)."""
    outputs = LocalOutputs.beside(output)
    size = path.stat().st_size
    scored_at = scored_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    rejected_partial = outputs.rejected_rows.with_name(outputs.rejected_rows.name + ".partial")
    handles: list[BinaryIO] = []

    def open_rejected() -> _File:
        handles.append(rejected_partial.open("wb"))
        return _File(handles[-1])

    stream = None
    try:
        check_size(size, max_bytes=1 << 62)
        scanner = RecordScanner(max_record_bytes, delimiter=options.delimiter.encode())
        stream = CheckedStream(file_chunks(path), scanner)
        with outputs.partial.open("wb") as handle:
            rejected = LazySink(open_rejected, rejected_header())
            scored = score_checked(stream, model, scored_at, _File(handle), rejected, _NoDrift(), options)
    except FileRejected as rejection:
        _remove(*handles, outputs.partial, rejected_partial)
        local_error = error_document(
            rejection, {"file": str(path), "bytes": size}, model_description(model), None
        )
        outputs.error.write_text(json.dumps(local_error, indent=2, default=str) + "\n")
        raise
    except BaseException:
        _remove(*handles, outputs.partial, rejected_partial)
        raise
    finally:
        if stream is not None:
            stream.close()
    for handle in handles:
        handle.close()
    if handles:
        rejected_partial.replace(outputs.rejected_rows)
    else:
        outputs.rejected_rows.unlink(missing_ok=True)  # a previous run's, for another version of the input
    outputs.partial.replace(outputs.predictions)
    outputs.error.unlink(missing_ok=True)
    return scored


def _remove(*items: Any) -> None:
    for item in items:
        if isinstance(item, Path):
            item.unlink(missing_ok=True)
        else:
            with contextlib.suppress(OSError):
                item.close()


class _NoDrift(DriftCounts):
    """The offline scorer writes no drift report."""

    def __init__(self) -> None:
        super().__init__({})

    def add(self, features: Any, scores: Any) -> None:
        return None
