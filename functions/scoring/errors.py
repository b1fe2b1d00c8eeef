"""What can go wrong with one input besides its content, split by what the platform should do.

A file that cannot be scored raises `model.csvinput.errors.FileRejected` (permanent: the file goes
to rejected/). The errors here are about the blob and the model, not the bytes.
"""

from __future__ import annotations


class InputChanged(Exception):  # noqa: N818 - an outcome: a newer upload supersedes this one
    """The input was replaced while being read; the new version fires its own trigger."""


class ModelUnavailableError(RuntimeError):
    """No model is served at the configured stage (raise: the host retries, then poisons)."""
