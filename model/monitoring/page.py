"""The HTML shell of the monitoring pages: one self-contained document, escaped cells, status badges.

The pages are written to blob storage and opened from there or from a disk, by people who may be
offline or behind a proxy, so nothing may be fetched: the style is inline, the charts are inline
SVG (model.monitoring.svg), there is no script, and the Content-Security-Policy forbids any request
(the icon is an empty data: URL, so the browser does not ask for /favicon.ico). Text from the data
is escaped in `table` unless the caller wraps ready HTML in `Markup`.
"""

from __future__ import annotations

from collections.abc import Sequence

from model.monitoring.text import esc

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1a202c;background:#f7fafc}
header{background:#1a365d;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;font-size:13px;color:#cbd5e0}main{padding:8px 24px 32px;max-width:1060px}
section{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:12px 16px;margin:14px 0}
h2{font-size:16px;margin:4px 0 8px}h3{font-size:14px;margin:6px 0}p,li{font-size:13px;line-height:1.45}
table{border-collapse:collapse;font-size:12px;margin:6px 0}th,td{border-bottom:1px solid #e2e8f0;
padding:3px 8px;text-align:left;vertical-align:top}th{background:#edf2f7}td{white-space:nowrap}
td.wrap{white-space:normal}td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;font-weight:600;color:#fff;
background:#718096}.ok{background:#2f855a}.warn{background:#b7791f}.alert,.one_class,.outside{background:#c53030}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #e2e8f0;border-radius:6px;
padding:8px 12px;min-width:150px}.card>b{display:block;font-size:18px}.card>span{font-size:12px;color:#4a5568}
.note{color:#4a5568;font-size:12px}.legend{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));
gap:0 24px}dl{display:grid;grid-template-columns:max-content 1fr;gap:5px 10px;font-size:13px;margin:4px 0}
dd{margin:0}svg.chart{display:block;margin:6px 0}nav a{margin-right:10px;font-size:12px}
.panels{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:8px 16px}
.panel h3{margin:8px 0 0}
"""


BADGES = {"ok", "warn", "alert", "one_class", "outside"}  # the coloured ones; any other status is grey


class Markup(str):
    """HTML that is already escaped (a badge, a chart): `table` passes it through as is."""


def cell(value: object) -> str:
    return value if isinstance(value, Markup) else esc("" if value is None else value)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    numeric: Sequence[int] = (),
    wrap: Sequence[int] = (),
) -> Markup:
    """A table; every cell is escaped unless it is Markup; `numeric` columns are right-aligned, `wrap`
    columns may wrap (the others keep a figure and its interval on one line)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    classes = {i: ' class="n"' for i in numeric} | {i: ' class="wrap"' for i in wrap}
    body = "".join(
        "<tr>" + "".join(f"<td{classes.get(i, '')}>{cell(v)}</td>" for i, v in enumerate(row)) + "</tr>"
        for row in rows
    )
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def badge(status: object) -> Markup:
    """A coloured status word; the class is chosen from a fixed list, never from the data."""
    text = "" if status is None else str(status)
    return Markup(f'<span class="badge {text if text in BADGES else ""}">{esc(text or "none")}</span>')


def document(title: str, header: str, body: str, subtitle: str = "") -> str:
    """The whole page: strict CSP, inline style, no script."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer"><link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{esc(header)}</h1><p>{esc(subtitle)}</p></header><main>{body}</main></body></html>\n"
    )


# What the statuses of the monitoring documents mean (docs/monitoring.md has the full rules).
STATUS_MEANINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "Drift of a batch": (
        ("ok", "no feature and not the scores drifted"),
        ("warn", "some feature drifted, fewer than half (by importance when known)"),
        ("alert", "half the features or more drifted (the dataset), or the scores did"),
        ("empty", "no row was scored: nothing to compare"),
    ),
    "Label-free estimate": (
        ("ok", "expected figure with its interval, if the probabilities are calibrated"),
        ("insufficient", "too many simulated label sets had one class only: no AUC"),
        ("undefined", "nothing to estimate (no rows, or nobody called)"),
    ),
    "Realised quality of a period": (
        ("ok", "enough outcomes: figures with bootstrap intervals"),
        ("insufficient", "fewer than 200 outcomes, 20 positives or 20 negatives"),
        ("one_class", "every outcome is the same class: no ROC AUC exists"),
        ("outside", "the realised figure fell outside the estimate's interval (concept drift?)"),
    ),
}


def status_legend() -> Markup:
    parts = []
    for group, entries in STATUS_MEANINGS.items():
        items = "".join(f"<dt>{badge(status)}</dt><dd>{esc(text)}</dd>" for status, text in entries)
        parts.append(f"<div><h3>{esc(group)}</h3><dl>{items}</dl></div>")
    return Markup(f'<div class="legend">{"".join(parts)}</div>')
