"""Bounded waits with progress: what `pulumi up` does while Azure catches up with itself.

Role assignments can take up to 10 minutes to take effect ("Troubleshoot Azure RBAC: role
assignment changes are not being detected", learn.microsoft.com/azure/role-based-access-control/
troubleshooting), so every wait on a new grant lasts at least that long, says what it waits for at
each try, and ends with an error that names the next step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
ROLE_PROPAGATION_SECONDS = 660.0  # documented "up to 10 minutes", plus a minute of margin


class WaitTimeoutError(RuntimeError):
    """Azure did not get there within the documented time; the message says what to do next."""


class NotYetError(Exception):
    """Raised by a probe that should be tried again (the reason is shown as progress)."""


def _pulumi_log(message: str) -> None:
    import pulumi

    pulumi.log.info(message)


@dataclass
class Waiter:
    """Tries `probe` until it returns, or raises WaitTimeoutError after `seconds`.

    `clock` and `sleep` are injectable so tests run a 10-minute propagation in no time.
    """

    seconds: float = ROLE_PROPAGATION_SECONDS
    interval: float = 15.0
    progress: Callable[[str], None] = _pulumi_log
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    attempts: list[str] = field(default_factory=list)

    def until(self, what: str, probe: Callable[[], T], next_step: str) -> T:
        start = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                result = probe()
            except NotYetError as reason:
                elapsed = self.clock() - start
                self.attempts.append(str(reason))
                if elapsed + self.interval > self.seconds:
                    raise WaitTimeoutError(
                        f"{what}: still not there after {elapsed:.0f} s ({reason}). {next_step}"
                    ) from None
                self.progress(
                    f"{what}: not yet ({reason}); try {attempt}, {elapsed:.0f} s of {self.seconds:.0f} s, "
                    f"next in {self.interval:.0f} s"
                )
                self.sleep(self.interval)
                continue
            if attempt > 1:
                self.progress(f"{what}: done after {self.clock() - start:.0f} s")
            return result
