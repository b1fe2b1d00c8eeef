"""Shared by the benchmark scripts: machine facts for the report, argument types, output."""

from __future__ import annotations

import argparse
import logging
import os
import platform
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_gb() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GB"
    except OSError:
        pass
    return "unknown"


def load_average() -> str:
    """Other work on the machine skews timings on 2 cores; the report records how busy it was."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def positive_int(raw: str) -> int:
    """argparse type: a whole number >= 1 (underscores allowed, as in 1_000_000)."""
    value = int(raw.replace("_", ""))
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def emit(text: str, markdown: str | None, log: logging.Logger) -> None:
    """Print the report, and write it to `markdown` when asked."""
    print(text)
    if markdown:
        Path(markdown).write_text(text)
        log.info("wrote %s", markdown)
