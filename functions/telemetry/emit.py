"""Log one structured telemetry event: the record's attributes are the event's dimensions.

Why a function rather than `log.info(..., extra={...})` at each call site:
- one normalisation of values (`dimension_text`), so a query reads every event the same way
  (`todouble()`, `toint()`, `== "true"`), whatever Python type the caller had at hand
  (numpy scalars from a scoring batch, floats, lists of feature names);
- the dimensions are checked against the contract (`functions.telemetry.events`): a misspelt
  keyword raises in the tests instead of becoming a customDimension no query or alert reads;
- the logger is checked too: only the app's own loggers (`functions.*`) carry the OpenTelemetry
  handler (`functions.telemetry.setup`), so an event logged elsewhere would never reach
  Application Insights with its dimensions.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Mapping

from functions.telemetry.events import EVENT_KEY, Event

# The app's root logger: every module logs under it (`logging.getLogger(__name__)`), and it is
# the one logger the Azure Monitor handler is attached to.
APP_LOGGER = __name__.partition(".")[0]

# Record attributes that `logging` sets itself or refuses in `extra` (makeRecord raises KeyError
# on `message` and `asctime`): a dimension may not be called any of these.
RESERVED_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


def dimension_text(value: object) -> str | None:
    """The one text form of a dimension value, or None when it is to be left out.

    bool -> "true"/"false"; integers -> decimal digits; other real numbers -> at most six
    significant digits (`.6g`), NaN and infinities left out (no query can compare them);
    str unchanged; list/tuple -> the texts of its items joined by commas (items that would be
    left out are skipped, so `[]` is "": "none", unlike a dimension that is absent). numpy
    scalars are read through `.item()` so the app need not convert what pandas hands it.
    Anything else raises TypeError: a dict or an object has no agreed text form.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        return format(number, ".6g") if math.isfinite(number) else None
    if isinstance(value, list | tuple):
        texts = (_item_text(item) for item in value)
        return ",".join(text for text in texts if text is not None)
    item = getattr(value, "item", None)  # numpy scalars (np.bool_ is not a bool, np.int64 not an int)
    if callable(item) and not isinstance(value, Mapping):
        return dimension_text(item())
    raise TypeError(f"{type(value).__name__} is not a dimension value (bool, number, str or a list of them)")


def _item_text(item: object) -> str | None:
    if isinstance(item, list | tuple):
        raise TypeError("a list dimension holds bools, numbers or strings, not lists")
    return dimension_text(item)


def emit(
    logger: logging.Logger,
    event: Event,
    message: str,
    *args: object,
    level: int = logging.INFO,
    **dimensions: object,
) -> None:
    """Log `message % args` once, as `event`, with its dimensions as normalised record attributes.

    Raises ValueError naming an unknown dimension or a logger outside the app's tree, and
    TypeError naming a dimension whose value has no text form, before anything is logged: the
    checks run even when the level is disabled, so the tests see every mistake.
    A dimension whose value is None (or NaN) is left out of the record.
    """
    unknown = sorted(set(dimensions) - set(event.dimensions))
    if unknown:
        raise ValueError(
            f"event {event.name!r} has no dimension {', '.join(map(repr, unknown))} "
            f"(its dimensions: {', '.join(event.dimensions)}; functions/telemetry/events.py)"
        )
    if logger.name != APP_LOGGER and not logger.name.startswith(APP_LOGGER + "."):
        raise ValueError(
            f"event {event.name!r} logged on {logger.name!r}: only loggers under {APP_LOGGER!r} "
            "reach Application Insights with their dimensions (use logging.getLogger(__name__))"
        )
    extra: dict[str, str] = {EVENT_KEY: event.name}
    for name, value in dimensions.items():
        try:
            text = dimension_text(value)
        except TypeError as exc:
            raise TypeError(f"event {event.name!r}, dimension {name!r}: {exc}") from None
        if text is not None:
            extra[name] = text
    if logger.isEnabledFor(level):
        # stacklevel=2: the record names the caller (code.function.name), not this function
        logger.log(level, message, *args, extra=extra, stacklevel=2)
