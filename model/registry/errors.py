"""What can go wrong in the registry: every error says what to do about it."""

from __future__ import annotations

from typing import Any

from model.artifacts import IntegrityError


class RegistryError(RuntimeError):
    """Base of every registry error; the message says what to do about it."""


class AlreadyExistsError(RegistryError):
    """A create-only write hit an existing file: versions are immutable."""


class ConcurrentUpdateError(RegistryError):
    """A stage pointer changed between reading it and writing it (someone else promoted meanwhile)."""


class NotFoundError(RegistryError, LookupError):
    """Unknown model, version, stage or artifact; the message lists what exists."""


class MissingArtifactError(NotFoundError, IntegrityError):
    """metadata.json records a sha256 for a file the store does not hold: the version is damaged."""


class PromotionRefused(RegistryError):  # noqa: N818 - the name the callers and docs use
    """The stage order or the gate refused a promotion; the message says how to override."""

    def __init__(self, message: str, gate: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.gate = gate
