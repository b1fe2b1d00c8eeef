"""Security checks in the suite: known vulnerabilities in the runtime dependencies, secrets in the
tracked tree and in the deployment package.

- pip-audit checks the installed versions of `functions/requirements.txt` and everything they
  pull in (the versions the tests ran against) with PyPI's advisory service. When the service
  cannot be reached the test is skipped with the reason; it never passes silently.
- detect-secrets scans every file of `git ls-files` and the built deployment package; known
  false positives are listed, each with its justification, in tests/secrets_allowlist.json.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import warnings
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.archive import zip_folder
from infra.package import build_package
from tests.support import REPO

ALLOWLIST = REPO / "tests" / "secrets_allowlist.json"
RUNTIME_REQUIREMENTS = REPO / "functions" / "requirements.txt"
AUDIT_TIMEOUT_S = 60
KEY_MATERIAL_SUFFIXES = (".pem", ".key", ".pfx", ".p12", ".jks", ".keystore", ".publishsettings")
KEY_MATERIAL_NAMES = ("id_rsa", "id_ecdsa", "id_ed25519", ".env", "local.settings.json", ".npmrc", ".pypirc")
KEY_MATERIAL_TEXT = (b"-----BEGIN ", b"AccountKey=", b"SharedAccessSignature=", b"?sig=", b"&sig=")


# ------------------------------------------------------------------------------------- dependencies


def runtime_pins(requirements: Path = RUNTIME_REQUIREMENTS) -> list[str]:
    """`name==version` of every installed distribution the runtime requirements need, transitively."""
    found: dict[str, tuple[str, set[str]]] = {}
    missing: list[str] = []

    def walk(requirement: Requirement) -> None:
        key = canonicalize_name(requirement.name)
        known = found.get(key)
        if known is not None and set(requirement.extras) <= known[1]:
            return
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            missing.append(str(requirement))
            return
        extras = (known[1] if known else set()) | set(requirement.extras)
        found[key] = (dist.version, extras)
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in (extras or {""})):
                walk(sub)

    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            walk(Requirement(line))
    assert not missing, f"runtime requirements not installed in this environment: {missing}"
    return [f"{name}=={version}" for name, (version, _) in sorted(found.items())]


@dataclass(frozen=True)
class AuditResult:
    vulnerable: list[str]  # "pkg==1.0: GHSA-... (CVE-...), fixed in 1.1"
    audited: list[str]
    not_audited: list[str]  # "pkg==1.0: why"


def pip_audit(pins: list[str], workdir: Path) -> AuditResult:
    """Run pip-audit on exact pins (no resolution, no pip); skip the test when it cannot answer."""
    pinned = workdir / "runtime-pinned.txt"
    pinned.write_text("\n".join(pins) + "\n")
    command = [sys.executable, "-m", "pip_audit", "-r", str(pinned), "--no-deps", "--disable-pip",
               "--format", "json", "--progress-spinner", "off", "--timeout", "15", "--vulnerability-service",
               "pypi"]  # fmt: skip
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and a fixed argument list
            command, capture_output=True, text=True, timeout=AUDIT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip-audit: PyPI's advisory service did not answer within {AUDIT_TIMEOUT_S} s")
    try:
        report = json.loads(done.stdout)
    except ValueError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(
            f"pip-audit could not reach PyPI's advisory service (exit {done.returncode}): {last[:300]}"
        )
    return read_audit(report, pins)


def read_audit(report: dict, pins: list[str]) -> AuditResult:
    """pip-audit's JSON report: what is vulnerable (package, version, advisory ids), what was not audited."""
    versions = dict(pin.split("==", 1) for pin in pins)
    vulnerable, audited, not_audited = [], [], []
    for dependency in report["dependencies"]:
        pin = f"{dependency['name']}=={dependency.get('version') or versions.get(dependency['name'], '?')}"
        if "skip_reason" in dependency:
            not_audited.append(f"{pin}: {dependency['skip_reason']}")
            continue
        audited.append(pin)
        for vuln in dependency.get("vulns", []):
            aliases = f" ({', '.join(vuln['aliases'])})" if vuln.get("aliases") else ""
            fixed = f", fixed in {', '.join(vuln['fix_versions'])}" if vuln.get("fix_versions") else ""
            vulnerable.append(f"{pin}: {vuln['id']}{aliases}{fixed}")
    return AuditResult(vulnerable, audited, not_audited)


@pytest.mark.timeout(AUDIT_TIMEOUT_S + 30)
def test_runtime_dependencies_have_no_known_vulnerability(tmp_path: Path) -> None:
    pins = runtime_pins()
    assert any(p.startswith("azure-functions==") for p in pins) and any(p.startswith("numpy==") for p in pins)
    result = pip_audit(pins, tmp_path)
    assert not result.vulnerable, "known vulnerabilities in the runtime dependencies:\n" + "\n".join(
        result.vulnerable
    )
    if not result.audited:
        pytest.skip(
            f"pip-audit reached PyPI but could audit none of the {len(pins)} runtime packages: "
            + "; ".join(result.not_audited[:5])
        )
    if result.not_audited:
        warnings.warn(
            f"pip-audit: {len(result.not_audited)} of {len(pins)} runtime packages not audited: "
            + "; ".join(result.not_audited),
            stacklevel=1,
        )


def test_a_vulnerable_pin_fails_with_package_and_advisory() -> None:
    """The reading of pip-audit's report, on the shape pip-audit 2.x writes (no network needed)."""
    report = {
        "dependencies": [
            {"name": "requests", "version": "2.19.0", "vulns": [
                {"id": "PYSEC-2018-28", "fix_versions": ["2.20.0"], "aliases": ["CVE-2018-18074"],
                 "description": "..."}]},
            {"name": "numpy", "version": "2.4.6", "vulns": []},
            {"name": "private-pkg", "skip_reason": "Dependency not found on PyPI and could not be audited"},
        ],
        "fixes": [],
    }  # fmt: skip
    result = read_audit(report, ["requests==2.19.0", "numpy==2.4.6", "private-pkg==1.0"])
    assert result.vulnerable == ["requests==2.19.0: PYSEC-2018-28 (CVE-2018-18074), fixed in 2.20.0"]
    assert result.audited == ["requests==2.19.0", "numpy==2.4.6"]
    assert result.not_audited == ["private-pkg==1.0: Dependency not found on PyPI and could not be audited"]


# ------------------------------------------------------------------------------------- secrets


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    type: str
    hashed_secret: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.type} (hashed_secret {self.hashed_secret})"


def scan(root: Path, paths: list[str]) -> list[Finding]:
    """detect-secrets with its default plugins and filters over `paths` (relative to `root`)."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    with default_settings():
        secrets = SecretsCollection(root=str(root))
        secrets.scan_files(*paths, num_processors=2)
    return sorted(
        Finding(filename, secret.line_number, secret.type, secret.secret_hash) for filename, secret in secrets
    )


def allowlist() -> dict:
    return json.loads(ALLOWLIST.read_text())


def _tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"],  # noqa: S607 - git from PATH, as every developer runs it
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [p for p in listed.split("\0") if p and (REPO / p).is_file()]


def test_allowlist_entries_are_justified() -> None:
    entries = allowlist()
    for entry in entries["findings"]:
        assert set(entry) == {"path", "type", "hashed_secret", "justification"}, entry
        assert len(entry["justification"].split()) >= 6, f"justify {entry['path']} {entry['type']} properly"
    for entry in entries["unscanned"]:
        assert set(entry) == {"path", "sha256", "justification"}, entry
        assert len(entry["justification"].split()) >= 6, f"justify not scanning {entry['path']}"


def test_the_scanner_finds_a_planted_secret(tmp_path: Path) -> None:
    """The scan is not vacuous: a key-looking value in a new file is reported, with its line."""
    leaked = "AKIA" + "ZK3QW7XPLR4HJ2NV"  # AWS access key id shape, split so this file is clean
    (tmp_path / "settings.py").write_text(f'REGION = "westeurope"\nAWS_KEY = "{leaked}"\n')
    account_key = hashlib.sha512(b"not a real key").digest().hex()[:86] + "=="
    (tmp_path / "app.cfg").write_text(f"DataLake=AccountName=x;AccountKey={account_key}\n")
    found = scan(tmp_path, ["settings.py", "app.cfg"])
    assert ("settings.py", 2) in {(f.path, f.line) for f in found}
    assert "app.cfg" in {f.path for f in found}


def test_tracked_tree_holds_no_secret_beyond_the_allowlist() -> None:
    entries = allowlist()
    skipped = set()
    for entry in entries["unscanned"]:
        path = REPO / entry["path"]
        if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]:
            skipped.add(entry["path"])
    files = [p for p in _tracked_files() if p not in skipped]
    assert len(files) > 100
    findings = scan(REPO, files)
    allowed = {(e["path"], e["type"], e["hashed_secret"]) for e in entries["findings"]}
    # The allow-list itself holds hex digests (its hashed_secret and sha256 fields): exactly those
    # values are not findings; anything else in it is.
    digests = [e["hashed_secret"] for e in entries["findings"]] + [e["sha256"] for e in entries["unscanned"]]
    own = {hashlib.sha1(d.encode()).hexdigest() for d in digests}  # noqa: S324 - detect-secrets' hashing
    listed = str(ALLOWLIST.relative_to(REPO))
    findings = [f for f in findings if not (f.path == listed and f.hashed_secret in own)]
    new = [f for f in findings if (f.path, f.type, f.hashed_secret) not in allowed]
    assert not new, (
        "possible secrets in tracked files (remove them, or add a justified entry to "
        "tests/secrets_allowlist.json if it is a false positive):\n" + "\n".join(map(str, new))
    )
    stale = allowed - {(f.path, f.type, f.hashed_secret) for f in findings}
    assert not stale, f"allow-list entries that match nothing any more (remove them): {sorted(stale)}"


def test_the_allowlisted_azurite_key_is_the_published_emulator_key() -> None:
    """The one high-entropy value allowed in the tree is Azurite's documented development key."""
    from devstack.azurite import DEV_ACCOUNT, DEV_KEY

    readme = REPO / "node_modules" / "azurite" / "README.md"
    if not readme.exists():
        pytest.skip("Azurite is not installed (npm ci), so its README cannot be compared")
    assert DEV_ACCOUNT == "devstoreaccount1"
    assert f"Account key: `{DEV_KEY}`" in readme.read_text()


def test_deployment_package_holds_no_secret(tmp_path: Path) -> None:
    """What `python -m infra.package` builds (and infra/archive.py zips) has no secret in it."""
    folder = build_package(tmp_path / "functionapp")
    archive = tmp_path / "functionapp.zip"
    zip_folder(folder, archive)
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        contents = {name: zipped.read(name) for name in names}
    on_disk = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert sorted(names) == on_disk and "function_app.py" in names

    leaf = {name: name.rsplit("/", 1)[-1].lower() for name in names}
    assert not [n for n, base in leaf.items() if base in KEY_MATERIAL_NAMES or base.startswith(".env")]
    assert not [n for n, base in leaf.items() if base.endswith(KEY_MATERIAL_SUFFIXES)]
    assert not [n for n, data in contents.items() if any(text in data for text in KEY_MATERIAL_TEXT)]

    extracted = tmp_path / "extracted"
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(extracted)
    findings = scan(extracted, names)
    assert not findings, "possible secrets in the deployment package:\n" + "\n".join(map(str, findings))
