"""Build the Function App's deployment folder: `function_app.py` at the root, beside the packages.

Layout of `.build/functionapp/` (what Azure runs, and what `func start` runs locally):

    function_app.py      copy of functions/function_app.py (the worker indexes the root file)
    host.json            from functions/
    requirements.txt     from functions/ (runtime dependencies only)
    functions/           the package (imports stay `functions.<module>`, as in tests and the CLI)
    model/, lake/        the packages it imports (lake is the storage contract)

Local secrets, tests, virtualenvs and caches never enter it.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = REPO_ROOT / ".build" / "functionapp"
PACKAGES = ("functions", "model", "lake")
EXCLUDED = (
    "__pycache__",
    "*.pyc",
    "local.settings*.json",
    "cli.py",
    "__main__.py",
    "host.json",
    "requirements.txt",
    "function_app.py",
)


def build_package(dest: Path = DEFAULT_DEST, local_settings: bool = False) -> Path:
    """(Re)create `dest`; with `local_settings`, add functions/local.settings.json for `func start`."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    functions_dir = REPO_ROOT / "functions"
    shutil.copy2(functions_dir / "function_app.py", dest / "function_app.py")
    shutil.copy2(functions_dir / "host.json", dest / "host.json")
    shutil.copy2(functions_dir / "requirements.txt", dest / "requirements.txt")
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, dest / package, ignore=shutil.ignore_patterns(*EXCLUDED))
    if local_settings:
        source = functions_dir / "local.settings.json"
        if not source.exists():
            source = functions_dir / "local.settings.example.json"
        shutil.copy2(source, dest / "local.settings.json")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.package", description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    parser.add_argument(
        "--local-settings", action="store_true", help="add local.settings.json (for func start)"
    )
    args = parser.parse_args(argv)
    dest = build_package(args.dest, args.local_settings)
    print(f"deployment package: {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
