"""Checkov, an independent rule set, over each stack's ARM rendering: every failed check is fixed or
waived with its reason in infra/checkov_waivers.py, and no waiver outlives its finding.

Checkov lives in its own virtualenv, `.venv-checkov` (scripts/bootstrap.sh; requirements-checkov.txt
says why). One Checkov process scans the three stacks twice: as rendered (the findings) and with
the waivers written in as Checkov's suppressions (what `python -m infra.plan STACK --arm` gives).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from infra import arm, checkov_waivers
from infra.package import REPO_ROOT
from tests.infra_support import STACKS, stack

CHECKOV = Path(os.environ.get("CHECKOV", REPO_ROOT / ".venv-checkov" / "bin" / "checkov"))
Finding = tuple[str, str]  # (Pulumi logical name, check id)


def _logical_names(template: dict[str, Any]) -> dict[str, str]:
    """Checkov's resource key (`type.name`) -> Pulumi logical name."""
    return {f"{r['type']}.{r['name']}": r["metadata"]["pulumi"]["name"] for r in template["resources"]}


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, set[Finding] | int]]:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run scripts/bootstrap.sh (it creates .venv-checkov)")
    folder = tmp_path_factory.mktemp("arm")
    names: dict[str, dict[str, str]] = {}
    for name in STACKS:
        for variant, waivers in (("", False), (".waived", True)):
            template = arm.template(stack(name), waivers=waivers)
            (folder / f"{name}{variant}.json").write_text(json.dumps(template, indent=1))
            names[f"/{name}{variant}.json"] = _logical_names(template)
    files = [arg for path in sorted(names) for arg in ("-f", path.lstrip("/"))]
    run = subprocess.run(  # noqa: S603 - the project's own Checkov on files this test wrote
        [str(CHECKOV), *files, "--framework", "arm", "-o", "json", "--skip-download", "--soft-fail"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["check_type"] == "arm" and report["summary"]["parsing_errors"] == 0
    found: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"passed": set(), "failed": set(), "skipped": set()}
    )
    for outcome in ("passed", "failed", "skipped"):
        for check in report["results"][f"{outcome}_checks"]:
            file = check["file_path"]
            found[file][outcome].add(
                (names[file].get(check["resource"], check["resource"]), check["check_id"])
            )
    return dict(found)


@pytest.mark.parametrize("name", STACKS)
def test_every_failed_check_is_fixed_or_waived_and_no_waiver_is_stale(name: str, scan: dict) -> None:
    result = scan[f"/{name}.json"]
    assert len(result["passed"]) >= 30, "Checkov evaluated almost nothing: is the rendering ARM?"
    waived = checkov_waivers.expected(name)
    unwaived = sorted(result["failed"] - waived)
    stale = sorted(waived - result["failed"])
    assert not unwaived, f"{name}: failed, neither fixed nor waived in infra/checkov_waivers.py: {unwaived}"
    assert not stale, f"{name}: waivers that match no failure any more (fixed: delete them): {stale}"


@pytest.mark.parametrize("name", STACKS)
def test_checkov_reports_the_written_waivers_as_skipped(name: str, scan: dict) -> None:
    """Graph checks (CKV2_*) ignore a resource's suppressions in ARM; the test above waives them."""
    result = scan[f"/{name}.waived.json"]
    waived = checkov_waivers.expected(name)
    graph = {finding for finding in waived if finding[1].startswith("CKV2_")}
    assert result["skipped"] == waived - graph
    assert result["failed"] == graph
    assert result["passed"] == scan[f"/{name}.json"]["passed"]


def test_each_waiver_says_why() -> None:
    for waiver in checkov_waivers.WAIVERS:
        assert waiver.check.startswith(("CKV_AZURE_", "CKV2_AZURE_")) and len(waiver.reason) > 40
        assert waiver.stacks and set(waiver.stacks) <= set(STACKS) and waiver.resources
    keys = [(w.check, r, s) for w in checkov_waivers.WAIVERS for r in w.resources for s in w.stacks]
    assert len(keys) == len(set(keys)), "a check is waived twice for one resource and stack"
