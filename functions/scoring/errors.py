"""What can go wrong with one input, split by what the platform should do about it."""

from __future__ import annotations

from typing import Any


class FileRejected(Exception):  # noqa: N818 - a verdict, not a crash: the file goes to rejected/
    """The whole file cannot be scored (permanent): it is copied to rejected/ with error.json.

    `code` is stable and machine-readable (see docs/scoring.md); `message` says exactly what is
    wrong and where; `details` holds the facts behind it (row, byte offset, columns).
    """

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class InputChanged(Exception):  # noqa: N818 - an outcome: a newer upload supersedes this one
    """The input was replaced while being read; the new version fires its own trigger."""


class ModelUnavailableError(RuntimeError):
    """No model is served at the configured stage (raise: the host retries, then poisons)."""
