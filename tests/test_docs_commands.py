"""Every command the README and the runbook tell someone to type exists in this repository.

The shell blocks (```bash) of README.md, docs/runbook.md, docs/realtime.md and docs/delivery.md are
read command by command (tests/command_support.py): `make X` must be a target, `python -m ...` a
module or a subcommand of our CLIs, `scripts/...` a file. `NAME="..."` assignments of a block are
expanded where `$NAME` is used later in it (the runbook's `$M deployments show`), and
`python -m devstack exec -- CMD` is checked as CMD too. A command that is only an example of
another tool (`az`, `pulumi`, `curl`, `git`) is out of scope: those tools check themselves.
"""

from __future__ import annotations

import re
import shlex

import pytest

from tests.command_support import REPO, command_problems, simple_commands

DOCS = ("README.md", "docs/runbook.md", "docs/realtime.md", "docs/delivery.md")
_BLOCK = re.compile(r"```(?:bash|sh|shell)\n(.*?)```", re.DOTALL)
_ASSIGN = re.compile(r'^([A-Z][A-Z0-9_]*)="([^"]*)"\s*(?:#.*)?$')


def shell_blocks(text: str) -> list[str]:
    return _BLOCK.findall(text)


def expanded_lines(block: str) -> list[str]:
    """The block's lines with `$NAME` replaced by the value an earlier `NAME="..."` line gave."""
    values: dict[str, str] = {}
    lines = []
    for line in _joined(block.replace("\\\n", " ").splitlines()):
        if match := _ASSIGN.match(line.strip()):
            values[match.group(1)] = match.group(2)
            continue
        for name, value in values.items():
            line = re.sub(rf"\${name}\b", value, line)
        lines.append(line)
    return lines


def _joined(lines: list[str]) -> list[str]:
    """Lines, with a quoted argument that spans lines (a JSON body) joined into one command."""
    joined, pending = [], ""
    for line in lines:
        pending = f"{pending}\n{line}" if pending else line
        try:
            shlex.split(pending, comments=True)
        except ValueError:
            continue  # an open quote: the command goes on on the next line
        joined.append(pending.replace("\n", " "))
        pending = ""
    return [*joined, *([pending] if pending else [])]


def _inner(words: list[str]) -> list[list[str]]:
    """`... -m devstack exec -- CMD`: CMD is a command of its own to check."""
    if "exec" in words and "--" in words and "devstack" in words:
        return [words[words.index("--") + 1 :]]
    return []


def doc_problems(doc: str) -> list[str]:
    problems = []
    for block in shell_blocks((REPO / doc).read_text()):
        for line in expanded_lines(block):
            if not line.strip() or line.lstrip().startswith("#") or "<" in line:
                continue  # a comment, or a template with <placeholders> for the reader to fill
            try:
                commands = list(simple_commands(line.split(" #", 1)[0]))
            except ValueError as error:
                problems.append(f"{doc}: `{line.strip()}`: unparsable ({error})")
                continue
            for words in commands:
                for each in [words, *_inner(words)]:
                    problems += [f"{doc}: `{shlex.join(each)}`: {p}" for p in command_problems(each)]
    return problems


@pytest.mark.parametrize("doc", DOCS)
def test_every_command_in_the_doc_exists(doc: str) -> None:
    assert (REPO / doc).exists(), doc
    problems = doc_problems(doc)
    assert not problems, "commands the docs name that this repository lacks:\n" + "\n".join(problems)


def test_the_check_reads_the_runbooks_commands_and_catches_a_missing_one(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    runbook = (REPO / "docs/runbook.md").read_text()
    seen = [line for block in shell_blocks(runbook) for line in expanded_lines(block)]
    assert any("-m model --registry blob promote 7 preprod" in line for line in seen)  # $M was expanded
    assert any("-m functions poison redrive" in line for line in seen)
    fake = tmp_path / "doc.md"
    fake.write_text(
        '```bash\nF=".venv/bin/python -m functions"\n$F unknown-command\nmake no-such-target\n```\n'
    )
    monkeypatch.setattr("tests.test_docs_commands.REPO", tmp_path)
    found = doc_problems("doc.md")
    assert any("no subcommand 'unknown-command'" in p for p in found), found
    assert any("no target 'no-such-target'" in p for p in found), found
