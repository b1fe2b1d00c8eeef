"""The Function App's code as one reproducible zip, named by its content.

Same sources, same bytes: entries are sorted and carry a fixed timestamp and mode, so the
sha256 (and with it the blob name the program uploads) changes exactly when the code does.
A new name is what makes Azure pick up new code (pulumi-azure-native issue 3483).
"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from infra.package import REPO_ROOT, build_package

FIXED_TIME = (2020, 1, 1, 0, 0, 0)
ARCHIVE_DIR = REPO_ROOT / ".build"


@dataclass(frozen=True)
class CodeArchive:
    path: Path
    sha256: str

    @property
    def blob_name(self) -> str:
        return archive_name(self.sha256)


def archive_name(sha256: str) -> str:
    return f"functionapp-{sha256[:16]}.zip"


def zip_folder(source: Path, destination: Path) -> str:
    """Write `source`'s files into `destination` deterministically; return the zip's sha256."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in source.rglob("*") if p.is_file())
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for file in files:
            info = zipfile.ZipInfo(file.relative_to(source).as_posix(), date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, file.read_bytes())
    return hashlib.sha256(destination.read_bytes()).hexdigest()


def build_archive(out_dir: Path = ARCHIVE_DIR) -> CodeArchive:
    """Stage the deployment folder (infra.package) and zip it as `functionapp-<sha16>.zip`."""
    with tempfile.TemporaryDirectory(prefix="functionapp-") as staging:
        folder = build_package(Path(staging) / "functionapp")
        draft = out_dir / "functionapp.zip.partial"
        digest = zip_folder(folder, draft)
    final = out_dir / archive_name(digest)
    draft.replace(final)
    return CodeArchive(final, digest)


# The retrain job's code asset: what `python -m model retrain` imports, uploaded as a folder.
CODE_PACKAGES = ("model", "lake")
_SKIPPED_DIRS = {"__pycache__", "tests", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class CodeBundle:
    """The files of the code asset (posix paths relative to `root`) and their content hash."""

    root: Path
    files: tuple[str, ...]
    sha256: str

    @property
    def digest(self) -> str:
        """The first 16 hex digits: the blob prefix and the code asset's version."""
        return self.sha256[:16]


def code_files(root: Path = REPO_ROOT, packages: tuple[str, ...] = CODE_PACKAGES) -> tuple[str, ...]:
    """Every file of `packages` under `root`, sorted, without caches, compiled files or tests."""
    found = []
    for package in packages:
        for path in (root / package).rglob("*"):
            relative = path.relative_to(root)
            if not path.is_file() or _SKIPPED_DIRS & set(relative.parts[:-1]):
                continue
            if path.name.endswith(_SKIPPED_SUFFIXES) or path.name.startswith("test_"):
                continue
            found.append(relative.as_posix())
    return tuple(sorted(found))


def code_digest(root: Path, files: tuple[str, ...]) -> str:
    """sha256 over each sorted path and its bytes (length-prefixed, so no two trees collide by
    moving bytes between a name and a body)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        data = (root / name).read_bytes()
        digest.update(f"{len(name)}:{name}:{len(data)}:".encode())
        digest.update(data)
    return digest.hexdigest()


def code_bundle(root: Path = REPO_ROOT, packages: tuple[str, ...] = CODE_PACKAGES) -> CodeBundle:
    files = code_files(root, packages)
    return CodeBundle(root, files, code_digest(root, files))
