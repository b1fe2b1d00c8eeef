"""Shared by the benchmark scripts: machine facts for the report, argument types, output."""

from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
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


QUIET_LOGGERS = ("azure", "mlflow", "alembic", "matplotlib", "urllib3", "git")


def run_logged(work: Callable[[], int], log: logging.Logger, tag: str = "") -> int:
    """Run a benchmark's entry point with INFO logs on stderr (chatty libraries quieted); a crash
    is logged with its traceback and becomes exit code 1. `tag` marks a child process's lines."""
    prefix = f"[{tag}] " if tag else ""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s {prefix}%(levelname)s %(name)s: %(message)s",
    )
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return work()
    except Exception:
        log.exception("benchmark failed")
        return 1


def emit(text: str, markdown: str | None, log: logging.Logger) -> None:
    """Print the report, and write it to `markdown` when asked."""
    print(text)
    if markdown:
        Path(markdown).write_text(text)
        log.info("wrote %s", markdown)


def package_version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def machine_facts(packages: Sequence[str] = (), *extra: tuple[str, str]) -> list[tuple[str, str]]:
    """The facts every report starts with: cores, CPU, memory, OS, Python, then package versions."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        ("CPUs (nproc)", str(cpus)),
        ("CPU model", cpu_model()),
        ("memory", mem_total_gb()),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        *((package, package_version(package)) for package in packages),
        *extra,
    ]


def command_line(module: str) -> str:
    """How this run was started, with the interpreter shown relative to the working folder."""
    python = Path(sys.executable)
    shown = str(python.relative_to(Path.cwd())) if python.is_relative_to(Path.cwd()) else str(python)
    return shlex.join([shown, "-m", module, *sys.argv[1:]])


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a live process has used so far (/proc/PID/stat), or None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14, 15


def run_child(command: Sequence[str], cwd: Path, env: dict[str, str], what: str) -> resource.struct_rusage:
    """Run a method's child process to the end; its resource usage (ru_maxrss is only an upper bound)."""
    process = subprocess.Popen(command, cwd=cwd, env=env)  # noqa: S603 - the benchmark's own child command, no shell; stderr inherited: the child's log lines
    try:
        _, status, usage = os.wait4(process.pid, 0)
    except BaseException:
        process.kill()
        process.wait()
        raise
    returncode = os.waitstatus_to_exitcode(status)
    if returncode != 0:
        raise RuntimeError(f"{what} failed with exit status {returncode}; see the log above")
    return usage
