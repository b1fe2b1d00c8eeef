"""Whether a shell command names something this repository has: for the workflows' `run:` scripts
(tests/test_workflows.py) and the commands the docs tell people to type (tests/test_docs_commands.py).

`make X` must be a Makefile target, `python -m pkg.mod` a module (ours, or one installed in the
virtualenv), `python -m model SUB` / `python -m functions SUB` a subcommand of that CLI (`SUB --help`
exits 0), `scripts/...` a file.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# CLIs whose first positional argument is a subcommand, and their options that take a value before it
SUBCOMMAND_CLIS = {"model": {"--registry"}, "functions": set(), "devstack": set()}
SHELL_WORDS = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "case", "esac"}
SHELL_WORDS |= {"in", "{", "}", "!", "time", "sudo", "env", "exec"}
SEPARATORS = {";", ";;", "&", "&&", "|", "||", "(", ")", "\n"}


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


@functools.cache
def make_targets() -> frozenset[str]:
    text = (REPO / "Makefile").read_text()
    return frozenset(re.findall(r"^([A-Za-z0-9_-][A-Za-z0-9_.-]*)\s*:(?!=)", text, re.MULTILINE))


def simple_commands(script: str) -> Iterator[list[str]]:
    """The simple commands of a shell script: words between operators, leading assignments dropped."""
    script = script.replace("\\\n", " ")
    for line in script.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token in SEPARATORS:
                if words:
                    yield words
                words = []
            elif words or not (token in SHELL_WORDS or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", token)):
                words.append(token)


def _is_python(word: str) -> bool:
    return re.fullmatch(r"python(3(\.\d+)?)?", Path(word).name) is not None


def _repo_module(module: str) -> Path | None:
    """The file a repository module runs as (`a/b.py` or `a/b/__main__.py`), if `module` is ours."""
    top = module.split(".")[0]
    if not ((REPO / top).is_dir() or (REPO / f"{top}.py").is_file()):
        return None
    base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__main__.py"):
        if candidate.is_file():
            return candidate
    return base / "__main__.py"  # ours, but missing


@functools.cache
def subcommand_problem(module: str, leading: tuple[str, ...], sub: str) -> str | None:
    result = subprocess.run(  # noqa: S603 - this interpreter, the repository's own CLI
        [sys.executable, "-m", module, *leading, sub, "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode == 0:
        return None
    last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
    return f"`python -m {module}` has no subcommand {sub!r} ({last})"


def _module_problems(module: str, args: list[str]) -> list[str]:
    own = _repo_module(module)
    if own is None:
        if importlib.util.find_spec(module) is None:
            return [f"module {module} is neither in the repository nor installed in the virtualenv"]
        return []
    if not own.is_file():
        return [f"module {module}: no {rel(own)} (a module file, or a package with __main__.py)"]
    if module not in SUBCOMMAND_CLIS:
        return []
    takes_value = SUBCOMMAND_CLIS[module]
    leading: list[str] = []
    words = iter(args)
    for word in words:
        if word.startswith("-"):
            leading.append(word)
            if word in takes_value:
                leading.append(next(words, ""))
            continue
        if "$" in word:
            return [f"subcommand {word!r} of `python -m {module}` is not literal: it cannot be checked"]
        problem = subcommand_problem(module, tuple(leading), word)
        return [problem] if problem else []
    return [f"`python -m {module}` without a subcommand"]


def command_problems(words: list[str]) -> list[str]:
    """Why `words` (one simple command) would not run from this repository; empty if it would."""
    program, args = words[0], words[1:]
    if program == "make":
        targets = [a for a in args if not a.startswith("-") and "=" not in a]
        return [f"the Makefile has no target {t!r}" for t in targets if t not in make_targets()]
    if program.startswith(("scripts/", "./scripts/", ".ci/", "./.ci/")):
        return [] if (REPO / program).is_file() else [f"no file {program}"]
    if _is_python(program):
        for index, arg in enumerate(args):
            if arg == "-m":
                module = args[index + 1] if index + 1 < len(args) else ""
                return _module_problems(module, args[index + 2 :])
            if arg == "-c":
                return []
            if not arg.startswith("-"):
                return [] if (REPO / arg).is_file() else [f"no file {arg}"]
    return []
