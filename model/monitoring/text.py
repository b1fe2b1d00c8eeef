"""Text on the monitoring pages: escaping (the data are user-controlled) and figures for people.

Feature names, category values, blob names and reasons in the documents come from whoever wrote
the scored file or the registry record, so every one of them is escaped before it reaches a page
(`esc`); figures are printed with a few significant digits, since a drift value of 0.0123456789
says no more than 0.0123 and a p-value of 1.9e-44 must stay readable.
"""

from __future__ import annotations

import html
import math


def esc(text: object) -> str:
    """Text safe inside an element or a quoted attribute."""
    return html.escape(str(text), quote=True)


def number(value: float | None, digits: int = 3) -> str:
    """`digits` significant digits, thousands separated, tiny values in e-notation; an en dash for none."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if value != 0 and abs(value) >= 10**digits:
        return f"{value:,.0f}"
    if value != 0 and abs(value) < 10 ** -(digits + 1):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def short(text: str, limit: int = 16) -> str:
    """At most `limit` characters (an ellipsis ends a cut); the full text goes in a tooltip."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
