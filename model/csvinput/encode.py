"""The CSV bytes batch scoring writes: predictions and rejected rows (Arrow's C++ CSV writer).

RFC 4180 with CRLF line ends, like the exports. Arrow formats a float32 probability with the
shortest text that reads back to the same float32, and writes about 7x faster than
`DataFrame.to_csv` (measured: 0.25 s vs 1.78 s for 1M rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

PREDICTION_COLUMNS = ("probability", "decision", "model_name", "model_version", "scored_at")
REJECTED_COLUMNS = ("row", "reason")
EOL = "\r\n"
_PLAIN = pa_csv.WriteOptions(include_header=False, quoting_style="none", eol=EOL)
_QUOTED = pa_csv.WriteOptions(include_header=False, quoting_style="needed", eol=EOL)


def header_line(columns: Sequence[str]) -> bytes:
    return (",".join(columns) + EOL).encode()


def prediction_header(id_column: str) -> bytes:
    return header_line((id_column, *PREDICTION_COLUMNS))


def rejected_header() -> bytes:
    return header_line(REJECTED_COLUMNS)


def _write(table: pa.Table) -> bytes:
    """Unquoted when no value needs quotes (the usual case), RFC 4180 quoting otherwise."""
    sink = pa.BufferOutputStream()
    try:
        pa_csv.write_csv(table, sink, _PLAIN)
    except pa.ArrowInvalid:  # a value holds a delimiter, quote or line break
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(table, sink, _QUOTED)
    return sink.getvalue().to_pybytes()


def _constant(value: str, rows: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int8)), pa.array([value]))


def encode_predictions(
    ids: np.ndarray,
    probabilities: np.ndarray,
    threshold: float,
    model_name: str,
    model_version: str,
    scored_at: str,
    id_column: str,
) -> bytes:
    """Rows of `id, probability, decision, model_name, model_version, scored_at` (no header)."""
    rows = len(ids)
    if rows == 0:
        return b""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    table = pa.table(
        {
            id_column: pa.array(ids, from_pandas=True),
            "probability": pa.array(probabilities),
            "decision": pa.array((probabilities >= threshold).astype(np.int8)),
            "model_name": _constant(model_name, rows),
            "model_version": _constant(model_version, rows),
            "scored_at": _constant(scored_at, rows),
        }
    )
    return _write(table)


def encode_rejected(rejected: Sequence[tuple[int, str]]) -> bytes:
    """Rows of `row, reason` (no header)."""
    if not rejected:
        return b""
    rows, reasons = zip(*rejected, strict=True)
    return _write(pa.table({"row": pa.array(rows, pa.int64()), "reason": pa.array(reasons, pa.string())}))
