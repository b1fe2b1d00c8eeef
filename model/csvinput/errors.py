"""The verdict on a whole file, and every code it can carry (docs/scoring.md lists the same codes)."""

from __future__ import annotations

import datetime as dt
from typing import Any

ERROR_FORMAT = 1  # error.json's format_version

# Every file-level rejection code, in the order of docs/scoring.md's table (a test keeps them equal).
CODES = (
    "empty_file",
    "too_large",
    "binary",
    "not_utf8",
    "cr_line_endings",
    "record_too_long",
    "unterminated_quote",
    "empty_header",
    "wrong_delimiter",
    "duplicate_columns",
    "missing_columns",
    "header_only",
    "no_valid_rows",
    "duplicate_ids",
    "malformed_csv",
)


class FileRejected(Exception):  # noqa: N818 - a verdict, not a crash: the file goes to rejected/
    """The whole file cannot be scored (permanent): it is copied to rejected/ with error.json.

    `code` is stable and machine-readable (see docs/scoring.md); `message` says exactly what is
    wrong and where; `details` holds the facts behind it (row, byte offset, columns).
    """

    def __init__(self, code: str, message: str, **details: Any) -> None:
        if code not in CODES:
            raise ValueError(f"undocumented rejection code {code!r} (add it to CODES and docs/scoring.md)")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


def error_document(
    rejection: FileRejected, source: dict[str, Any], model: dict[str, Any] | None, copy: str | None
) -> dict[str, Any]:
    """error.json: the verdict on one input, the same keys for a blob (trigger) and a local file (CLI)."""
    return {
        "format_version": ERROR_FORMAT,
        "input": source,
        **rejection.to_dict(),
        "model": model,
        "copy": copy,
        "rejected_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
