"""A small local host for the function app: drives the real function objects of `function_app.py`.

Azure Functions Core Tools cannot be installed everywhere (it downloads a binary), so this runner
takes the app's own registrations (`app.get_functions()`), reads their binding metadata
(schedule, paths, connection names), resolves `%SETTING%` placeholders the way the host does, and
invokes the user functions with the same binding objects the Python worker would pass.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
from azure.functions.timer import TimerRequest

from devstack import ncrontab

log = logging.getLogger(__name__)
_PLACEHOLDER = re.compile(r"%([^%]+)%")


class HostError(RuntimeError):
    """The app cannot be hosted as configured (e.g. a %SETTING% that is not set)."""


def resolve_placeholders(value: str, env: Mapping[str, str]) -> str:
    """Replace `%NAME%` with the app setting NAME, as the Functions host does for binding values."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise HostError(f"binding expression %{name}% refers to app setting {name}, which is not set")
        return env[name]

    return _PLACEHOLDER.sub(lookup, value)


@dataclass
class HostedFunction:
    """One function of the app with its trigger binding resolved against the settings."""

    name: str
    trigger_type: str
    binding: dict[str, Any]
    user_function: Callable[..., Any]
    schedule: ncrontab.Schedule | None = None
    last_fired: dt.datetime | None = field(default=None, repr=False)

    def describe(self) -> str:
        details = {k: v for k, v in self.binding.items() if k not in {"direction", "type", "name"}}
        return f"{self.name}: {self.trigger_type} {details}"


def index(app: func.FunctionApp) -> list[func.Function]:
    """The app's functions, as the worker indexes them at start.

    `get_functions()` remembers the names it has seen and refuses to index the same app twice;
    the worker does it once per process, a local host may do it more often (tests, reloads).
    """
    app.functions_bindings = {}
    logging.disable(logging.WARNING)  # indexing warns that auth levels apply to HTTP functions only
    try:
        return app.get_functions()
    finally:
        logging.disable(logging.NOTSET)


def discover(app: func.FunctionApp, env: Mapping[str, str] | None = None) -> list[HostedFunction]:
    env = os.environ if env is None else env
    hosted = []
    for function in index(app):
        trigger = function.get_trigger()
        binding = {
            key: resolve_placeholders(value, env) if isinstance(value, str) else value
            for key, value in trigger.get_dict_repr().items()
        }
        trigger_type = str(binding.get("type"))
        schedule = ncrontab.parse(binding["schedule"]) if trigger_type == "timerTrigger" else None
        hosted.append(
            HostedFunction(
                function.get_function_name(), trigger_type, binding, function.get_user_function(), schedule
            )
        )
    return hosted


def fire_timer(function: HostedFunction, now: dt.datetime, past_due: bool = False) -> None:
    """Invoke a timer function once with a TimerRequest like the worker builds from the host's JSON."""
    status = {"Last": function.last_fired.isoformat() if function.last_fired else None, "Next": None}
    if function.schedule is not None:
        status["Next"] = function.schedule.next_after(now).isoformat()
    request = TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": False})
    log.info("firing %s", function.name)
    started = time.perf_counter()
    try:
        function.user_function(request)
        log.info("%s succeeded in %.1fs", function.name, time.perf_counter() - started)
    finally:
        function.last_fired = now


def run_on_schedule(
    functions: list[HostedFunction],
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    sleep: Callable[[float], None] = time.sleep,
    max_runs: int | None = None,
    poll: Callable[[], None] | None = None,
    poll_every_s: float = 5.0,
) -> int:
    """Fire timer functions when their schedule says so; returns how many timer invocations ran.

    `poll` (delivering new blobs and queue messages) runs at least every `poll_every_s` between
    timers. An invocation that raises is logged and the loop goes on, as the host does.
    """
    timers = [f for f in functions if f.schedule is not None]
    if not timers and poll is None:
        raise HostError("the app has no timer functions")
    runs = 0
    start = now()
    due = {f.name: f.schedule.next_after(start) for f in timers if f.schedule}
    for f in timers:
        log.info("%s next run at %s", f.name, due[f.name].isoformat())
    longest_sleep = 60.0 if poll is None else poll_every_s
    while max_runs is None or runs < max_runs:
        if poll is not None:
            poll()
        if not timers:
            sleep(longest_sleep)
            continue
        function = min(timers, key=lambda f: due[f.name])
        wait = (due[function.name] - now()).total_seconds()
        if wait > 0:
            sleep(min(wait, longest_sleep))
            continue
        late = -wait > 60
        try:
            fire_timer(function, now(), past_due=late)
        except Exception:
            log.exception("%s failed", function.name)
        runs += 1
        assert function.schedule is not None
        due[function.name] = function.schedule.next_after(now())
        log.info("%s next run at %s", function.name, due[function.name].isoformat())
    return runs
