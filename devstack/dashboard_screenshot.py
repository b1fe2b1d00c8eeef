"""`python -m devstack.dashboard_screenshot OUT.png`: a realistic dashboard, photographed in Chromium.

The data are the sample run of devstack/monitoring_samples.py (six weeks of daily batches on the
bank data, made by the real producers); the page is model.monitoring.dashboard's, read back
through model.monitoring.collect as the CLI and the monitor timer read it. docs/monitoring-dashboard.png
is this script's output.

Chromium is Debian's (`/usr/bin/chromium`, scripts/bootstrap.sh installs it), driven by Playwright's
Python package with `executable_path`: Playwright's own browser download is never used. The flags
keep a headless Chromium from calling home (this machine's network is closed; without them it tries
to reach Google's update and sync services), and every launch gets a fresh profile.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
GENERATED_AT = "2026-10-19T06:00:00+00:00"


@contextlib.contextmanager
def chromium(executable: Path = CHROMIUM, width: int = 1160, height: int = 900) -> Iterator[BrowserContext]:
    """A headless Chromium context with a fresh profile, closed (and the profile deleted) on exit."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            profile,
            executable_path=str(executable),
            headless=True,
            args=list(CHROMIUM_FLAGS),
            viewport={"width": width, "height": height},
        )
        try:
            yield context
        finally:
            context.close()


def render_sample(root: Path, days: int = 42) -> Path:
    """Write the sample documents under `root` and the dashboard page beside them; return the page."""
    from devstack.monitoring_samples import write_samples
    from lake.paths import DASHBOARD_FILE
    from model.monitoring.collect import collect
    from model.monitoring.dashboard import render_dashboard

    samples = write_samples(root, days=days)
    data = collect(samples.monitoring, samples.model, samples.registry)
    data = dataclasses.replace(data, source="the sample run of devstack/monitoring_samples.py")
    page = root / DASHBOARD_FILE
    page.write_text(render_dashboard(data, stack="prod", generated_at=GENERATED_AT), encoding="utf-8")
    return page


def screenshot(page: Path, out: Path, height: int | None = None) -> None:
    """Open `page` from disk and save the whole page (or its first `height` pixels) as a PNG, in 256
    colours when Pillow is there (a third of the bytes; the page has few colours anyway)."""
    with chromium() as context:
        tab = context.new_page()
        tab.goto(page.resolve().as_uri())
        width = tab.viewport_size["width"] if tab.viewport_size else 1160
        clip = None if height is None else {"x": 0, "y": 0, "width": width, "height": height}
        tab.screenshot(path=str(out), full_page=True, clip=clip)
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(out) as image:
        palette = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    palette.save(out, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.dashboard_screenshot", description=__doc__)
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--days", type=int, default=42, help="daily batches in the sample run")
    parser.add_argument("--height", type=int, help="photograph only the first HEIGHT pixels of the page")
    parser.add_argument("--html", type=Path, help="also keep the page here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dashboard-sample-") as folder:
        page = render_sample(Path(folder), args.days)
        screenshot(page, args.out, args.height)
        if args.html:
            args.html.write_bytes(page.read_bytes())
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
