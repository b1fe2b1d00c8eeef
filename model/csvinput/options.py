"""Choices of the reader that the settings catalog and the CLI share (light, for functions/settings/)."""

from __future__ import annotations

# What to do with a client_id that appears more than once among the rows that would be scored.
DUPLICATE_POLICIES = ("keep", "reject_rows", "reject_file")
DEFAULT_DUPLICATE_IDS = "keep"  # score them (as before), but count them in the manifest
MAX_RECORD_BYTES = 1024 * 1024  # a longer row is refused (record_too_long)
READ_CHUNK_BYTES = 4 * 1024 * 1024  # bytes per ranged read / file read, checked by the scanner
