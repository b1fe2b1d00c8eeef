"""Every way scoring an input can fail is classified: a FileRejected with a documented code (the
file goes to rejected/, no retry), an outcome (superseded, ignored), or an error raised so the
host retries it. No other exception may come out of the reader.

- The codes in docs/scoring.md's table are exactly the codes the code raises (both directions).
- Each code is produced by a real input.
- Hundreds of hostile inputs through the real reader raise nothing but FileRejected.
- The parser's and header check's own exceptions are converted to their codes.
- score_input turns each permanent error into its outcome and lets each transient one raise.
"""

from __future__ import annotations

import csv
import random
import re

import pandas as pd
import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError

import functions.scoring.single as single
from functions.retry import TransientError
from functions.scoring.context import ScoringContext
from functions.scoring.errors import InputChanged, ModelUnavailableError
from functions.scoring.job import score_input
from lake.contract import PREDICTIONS_CONTAINER, REJECTED_CONTAINER
from model.csvinput import records
from model.csvinput.errors import CODES, FileRejected
from model.csvinput.header import parse_header
from model.csvinput.run import ReadOptions, score_bytes
from model.csvinput.scorer import check_size
from model.schema import SchemaError
from model.serving import LoadedModel, load_folder
from tests.scoring_support import bank_csv, bank_frame, context, names_under, to_csv, unique, upload
from tests.support import REPO

SOURCES = [*(REPO / "model" / "csvinput").glob("*.py"), *(REPO / "functions" / "scoring").glob("*.py")]


@pytest.fixture(scope="module")
def model(models) -> LoadedModel:
    return load_folder(models.good)


def documented_codes() -> list[str]:
    """The `code` column of the table under "File-level problems" in docs/scoring.md."""
    text = (REPO / "docs" / "scoring.md").read_text()
    section = text.split("## File-level problems", 1)[1].split("\n## ", 1)[0]
    return [c for c in re.findall(r"^\| `([a-z0-9_]+)` \|", section, flags=re.MULTILINE) if c != "code"]


def test_the_documented_codes_are_the_codes_the_code_raises() -> None:
    raised = {
        code for path in SOURCES for code in re.findall(r'FileRejected\(\s*"([a-z0-9_]+)"', path.read_text())
    }
    assert documented_codes() == list(CODES)  # same codes, same order
    assert raised == set(CODES)  # every code is raised somewhere, and nothing else is
    with pytest.raises(ValueError, match="undocumented rejection code"):
        FileRejected("something_new", "a code nobody documented")


def _nul_header() -> bytes:
    return b"client_id,a\x00ge\r\n1,2\r\n"


REACH = {
    "empty_file": (b"", {}),
    "binary": (_nul_header(), {}),
    "not_utf8": (bank_csv(5).replace(b"\r\n2,", b"\r\n2,\xe9", 1), {}),
    "cr_line_endings": (to_csv(bank_frame(5), eol="\r"), {}),
    "record_too_long": (bank_csv(5) + b"9," + b"x" * 3000 + b"\r\n", {}),
    "unterminated_quote": (bank_csv(5) + b'6,"open\r\n', {}),
    "empty_header": (b"\r\n" + bank_csv(5), {}),
    "wrong_delimiter": (to_csv(bank_frame(5), sep=";"), {}),
    "duplicate_columns": (bank_csv(5).replace(b",poutcome", b",age", 1), {}),
    "missing_columns": (to_csv(bank_frame(5).drop(columns=["job"])), {}),
    "header_only": (bank_csv(5).split(b"\r\n")[0] + b"\r\n\r\n", {}),
    "no_valid_rows": (to_csv(bank_frame(5).assign(age="old")), {}),
    "duplicate_ids": (to_csv(bank_frame(5).assign(client_id="7")), {"duplicate_ids": "reject_file"}),
    "malformed_csv": (b'"' + b"n" * 140_000 + b'",age\r\n1,2\r\n', {}),  # a name over csv's field limit
}


@pytest.mark.parametrize("code", list(CODES))
def test_every_code_is_produced_by_a_real_input(model: LoadedModel, code: str) -> None:
    if code == "too_large":  # a size check before any byte is read
        with pytest.raises(FileRejected, match="over the limit of 10") as caught:
            check_size(11, max_bytes=10)
        assert caught.value.code == code
        return
    data, options = REACH[code]
    limit = 1 << 20 if code == "malformed_csv" else 2048
    with pytest.raises(FileRejected) as caught:
        score_bytes(data, model, ReadOptions(chunk_rows=3, **options), max_record_bytes=limit)
    assert caught.value.code == code, caught.value.message


def _hostile(rng: random.Random) -> bytes:
    """A bank file mangled at random: bytes inserted, removed, repeated, re-encoded, truncated."""
    data = bytearray(to_csv(bank_frame(rng.randint(0, 30)), eol=rng.choice(["\r\n", "\n"])))
    dangerous = [
        b"\x00",
        b"\r",
        b"\n",
        b'"',
        b",",
        b";",
        b"\t",
        b"\xff",
        b"\xc3",
        b"\xef\xbb\xbf",
        b'""',
        b"\r\n",
    ]
    for _ in range(rng.randint(0, 8)):
        at = rng.randint(0, len(data))
        action = rng.random()
        if action < 0.5:
            data[at:at] = rng.choice(dangerous) * rng.randint(1, 3)
        elif action < 0.65:
            del data[at : at + rng.randint(1, 40)]
        elif action < 0.75:
            data[at:at] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 30)))
        elif action < 0.85:
            data[at:at] = b"x" * rng.choice([100, 3000])  # a long field (over the 2,048-byte limit)
        else:
            line = bytes(data).split(b"\n")[rng.randint(0, max(0, bytes(data).count(b"\n") - 1))]
            data[at:at] = line + b"\n"  # a repeated line: repeated ids, a second header
    result = bytes(data)
    if rng.random() < 0.1:
        result = result.decode("utf-8", "replace").encode(
            rng.choice(["utf-16", "latin-1", "utf-8-sig"]), "replace"
        )
    if rng.random() < 0.1:
        result = result[: rng.randint(0, len(result))]
    return result


def test_hostile_inputs_raise_nothing_but_file_rejected(model: LoadedModel) -> None:
    rng = random.Random(20261122)
    raised: dict[str, int] = {}
    codes: set[str] = set()
    for case in range(200):
        data = _hostile(rng)
        options = ReadOptions(
            chunk_rows=rng.choice([1, 4, 50]),
            duplicate_ids=rng.choice(["keep", "reject_rows", "reject_file"]),
        )
        try:
            _, _, result = score_bytes(
                data, model, options, max_record_bytes=2048, chunk_bytes=rng.choice([3, 64, 4096])
            )
        except FileRejected as rejection:
            codes.add(rejection.code)
            raised["FileRejected"] = raised.get("FileRejected", 0) + 1
        except Exception as error:  # noqa: BLE001 - collected: the assertion below names it
            raised[f"{type(error).__module__}.{type(error).__name__} (case {case}): {error}"] = 1
        else:
            tally = result.tally
            assert tally.rows_in == tally.rows_scored + tally.rows_rejected + tally.blank_lines
    assert set(raised) == {"FileRejected"}, [k for k in raised if k != "FileRejected"]
    assert codes <= set(CODES)
    assert len(codes) >= 8  # the mangling reaches many checks, not one


class _Raising:
    """A stand-in for pandas' reader whose next chunk raises `error`."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __enter__(self) -> _Raising:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __next__(self) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (pd.errors.ParserError("Error tokenizing data. C error: Buffer overflow caught"), "malformed_csv"),
        (pd.errors.EmptyDataError("No columns to parse from file"), "malformed_csv"),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "not_utf8"),
    ],
)
def test_the_parsers_own_errors_become_their_codes(
    model: LoadedModel, monkeypatch: pytest.MonkeyPatch, error: BaseException, code: str
) -> None:
    monkeypatch.setattr(records.pd, "read_csv", lambda *args, **kwargs: _Raising(error))
    with pytest.raises(FileRejected) as caught:
        score_bytes(bank_csv(3), model, ReadOptions(chunk_rows=3))
    assert caught.value.code == code


def test_the_header_checks_own_errors_become_their_codes(model: LoadedModel) -> None:
    assert csv.field_size_limit() < 140_000
    for raw, code in [
        (b'"' + b"n" * 140_000 + b'"\r\n', "malformed_csv"),
        (b"client_id,\xff\r\n", "not_utf8"),
    ]:
        with pytest.raises(FileRejected) as caught:
            parse_header(raw, model.schema)
        assert caught.value.code == code


# ------------------------------------------------------------------------ what the invocation does

PERMANENT = [
    (FileRejected("malformed_csv", "injected"), "rejected"),
    (InputChanged("a newer version replaced it (injected)"), "superseded"),
]
TRANSIENT = [
    ServiceRequestError("connection refused (injected)"),
    HttpResponseError("server busy (injected)"),
    ConnectionResetError("reset by peer (injected)"),
    TransientError("changed while being published (injected)"),
    ModelUnavailableError("no model at the stage (injected)"),
    MemoryError("out of memory (injected)"),
    SchemaError("a validation bug (injected)"),
]


@pytest.fixture(scope="module")
def ctx(azurite, served) -> ScoringContext:
    return context(azurite.connection_string)


def _inject(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(single, "score_checked", fail)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("error", "status"), PERMANENT, ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v
)
def test_permanent_errors_end_the_invocation_with_their_outcome(
    ctx: ScoringContext, monkeypatch: pytest.MonkeyPatch, error: BaseException, status: str
) -> None:
    name = unique("classified")
    client = upload(ctx, name, bank_csv(5))
    _inject(monkeypatch, error)
    assert score_input(ctx, client).status == status  # returned: the host does not retry
    assert bool(names_under(ctx, REJECTED_CONTAINER, f"{name}/")) == (status == "rejected")


@pytest.mark.integration
@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_transient_errors_raise_so_the_host_retries(
    ctx: ScoringContext, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    name = unique("classified")
    client = upload(ctx, name, bank_csv(5))
    _inject(monkeypatch, error)
    with pytest.raises(type(error)):
        score_input(ctx, client)
    assert names_under(ctx, REJECTED_CONTAINER, f"{name}/") == []  # never a silent rejection
    assert names_under(ctx, PREDICTIONS_CONTAINER, f"{name}/") == []
    monkeypatch.undo()
    assert score_input(ctx, client).status == "scored"  # the retry


def test_no_exception_class_is_both_permanent_and_transient() -> None:
    permanent = {type(e) for e, _ in PERMANENT}
    assert not permanent & {type(e) for e in TRANSIENT}
