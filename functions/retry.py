"""Retry with exponential backoff for transient failures; permanent ones fail on the first try.

What counts as transient is decided in one place (`is_transient`) for both sides of the
pipeline: ODBC errors by SQLSTATE class, Azure SDK errors by HTTP status.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pyodbc
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# SQLSTATE prefixes that mean "try again": connection exceptions (08), timeouts (HYT00/HYT01),
# serialization failures and deadlocks (40001, 40P01), server shutting down (57P01-57P03).
_TRANSIENT_SQLSTATES = ("08", "HYT", "40001", "40P01", "57P0")
# Messages drivers use for a lost connection while reporting a generic SQLSTATE (HY000).
_LOST_CONNECTION_HINTS = (
    "server closed the connection",
    "connection",
    "could not send",
    "terminating connection",
)


# 4xx verdicts by their type, whether or not a status code came with them
_TYPED_CLIENT_ERRORS = (
    ClientAuthenticationError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)


class PermanentError(Exception):
    """A failure that retrying cannot fix (bad configuration, missing table, bad SQL)."""


class TransientError(Exception):
    """A failure worth retrying that did not come from a driver or the SDK (e.g. injected in tests)."""


def is_transient(error: BaseException) -> bool:
    if isinstance(error, PermanentError):
        return False
    if isinstance(
        error, TransientError | ServiceRequestError | ServiceResponseError | TimeoutError | ConnectionError
    ):
        return True
    if isinstance(error, HttpResponseError):
        if error.status_code is None:  # no status: the body was cut mid-transfer (IncompleteRead)
            return not isinstance(error, _TYPED_CLIENT_ERRORS)
        return error.status_code >= 500 or error.status_code in (408, 429)
    if isinstance(error, pyodbc.Error):
        sqlstate = str(error.args[0]) if error.args else ""
        if sqlstate.startswith(_TRANSIENT_SQLSTATES):
            return True
        message = str(error.args[1] if len(error.args) > 1 else "").lower()
        return sqlstate in ("HY000", "01000") and any(hint in message for hint in _LOST_CONNECTION_HINTS)
    return False


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff, so parallel workers do not retry in lockstep."""
        return random.uniform(0, min(self.max_delay_s, self.first_delay_s * 2 ** (attempt - 1)))  # noqa: S311


def call_with_retry(
    action: Callable[[int], T],
    policy: RetryPolicy,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `action(attempt)`; on a transient error wait and try again, up to `policy.attempts`."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return action(attempt)
        except Exception as error:
            if attempt == policy.attempts or not is_transient(error):
                raise
            pause = policy.delay(attempt)
            log.warning(
                "%s: transient error on attempt %d/%d, retrying in %.1fs: %s",
                what,
                attempt,
                policy.attempts,
                pause,
                error,
            )
            sleep(pause)
    raise AssertionError("unreachable")
