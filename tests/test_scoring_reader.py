"""The scoring reader (model/csvinput) in memory: where problems are reported, and errors that must
keep what they are through pandas (a rejection stays a rejection, a storage error stays a retry).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from model.csvinput.encode import rejected_header
from model.csvinput.errors import FileRejected
from model.csvinput.run import ReadOptions, score_bytes, score_checked
from model.csvinput.scan import RecordScanner
from model.csvinput.scorer import LazySink
from model.csvinput.stream import CheckedStream
from model.drift import DriftCounts
from model.serving import LoadedModel, load_folder
from tests.scoring_support import bank_csv, bank_frame, to_csv


@pytest.fixture(scope="module")
def model(models) -> LoadedModel:
    return load_folder(models.good)


def _scan(data: bytes, chunk: int) -> RecordScanner:
    scanner = RecordScanner(1 << 20)
    for start in range(0, len(data), chunk):
        scanner.feed(data[start : start + chunk])
    scanner.finish()
    return scanner


@pytest.mark.parametrize(
    ("data", "chunk", "says", "offset", "row"),
    [
        (b"id,a\r\n1,2\r\r\n", 1, "row 1 has a carriage return (CR) at byte 9", 9, 1),
        (b"id,a\r\n1,2\r", 3, "row 1 has a carriage return (CR) at byte 9", 9, 1),  # at the very end
        (b"id\ra\n1\n", 2, "the header has a carriage return (CR) at byte 2", 2, 0),
        (b'id,a\n1,"x\ry"\n2,b\rc\n', 4, "row 2 has a carriage return", 16, 2),  # quoted CR is fine
    ],
)
def test_a_bare_cr_is_refused_naming_its_row_and_byte(
    data: bytes, chunk: int, says: str, offset: int, row: int
) -> None:
    with pytest.raises(FileRejected) as caught:
        _scan(data, chunk)
    assert caught.value.code == "cr_line_endings" and says in caught.value.message
    assert caught.value.details == {"byte_offset": offset, "row": row}


@pytest.mark.parametrize("chunk", [1, 4, 1000])
def test_crlf_split_between_chunks_is_one_line_end(chunk: int) -> None:
    assert _scan(b"id,a\r\n1,2\r\n3,4\r\n", chunk).records == 3


@pytest.mark.parametrize("chunk", [1, 9, 1000])
def test_a_character_cut_by_a_bad_byte_is_reported_where_it_starts(chunk: int) -> None:
    # 0xc3 opens a two-byte character; "A" cannot continue it. The bad sequence starts at byte 13,
    # in row 2, whichever chunk the two bytes arrive in.
    with pytest.raises(FileRejected) as caught:
        _scan(b"id,a\r\n1,2\r\n3,\xc3A\r\n", chunk)
    assert caught.value.details == {"byte_offset": 13, "row": 2}
    assert "invalid byte 0xc3 at byte 13 (in row 2)" in caught.value.message


def test_a_rejection_while_pandas_handles_a_bad_line_keeps_its_code(model: LoadedModel) -> None:
    # pandas' C parser, told by the stream that a NUL byte was found while it was dealing with a
    # row of too many fields, reported "C error: Calling read(nbytes) on source failed" (read as
    # malformed_csv) or failed later with a SystemError (a crash): the verdict is `binary`.
    lines = bank_csv(20).split(b"\r\n")
    lines[1] += b",surplus,surplus"
    data = b"\r\n".join(lines)
    for at in (211, 237, 289):
        mutated = data[:at] + b"\x00" + data[at:]
        with pytest.raises(FileRejected) as caught:
            score_bytes(mutated, model, ReadOptions(chunk_rows=5), chunk_bytes=1)
        assert caught.value.code == "binary" and caught.value.details["byte_offset"] == at


def test_a_storage_error_while_pandas_handles_a_bad_line_stays_a_storage_error(model: LoadedModel) -> None:
    lines = bank_csv(20).split(b"\r\n")
    lines[1] += b",surplus,surplus"
    data = b"\r\n".join(lines)

    def flaky() -> Iterator[bytes]:
        for start in range(0, 250):
            yield data[start : start + 1]
        raise ConnectionResetError("connection reset by peer (injected)")

    stream = CheckedStream(flaky(), RecordScanner(1 << 20))
    try:
        with pytest.raises(ConnectionResetError):  # raised as itself: the host retries
            score_checked(stream, model, "t", _Null(), LazySink(_Null, rejected_header()), DriftCounts({}),
                          ReadOptions(chunk_rows=5))  # fmt: skip
    finally:
        stream.close()


class _Null:
    def write(self, data: bytes) -> None:
        pass


def test_numbers_beyond_float32_are_rejected_not_scored_as_infinity(model: LoadedModel) -> None:
    frame = bank_frame(4).astype(object)
    frame.loc[0, "balance"] = "1e39"
    frame.loc[1, "balance"] = "-3.5e38"
    frame.loc[2, "pdays"] = "1e300"
    _, rejected, result = score_bytes(to_csv(frame), model, ReadOptions(chunk_rows=5))
    assert rejected.decode().splitlines()[1:] == [
        "1,balance: 1e+39 is outside the float32 range",
        "2,balance: -3.5e+38 is outside the float32 range",
        "3,pdays: 1e+300 is outside the float32 range",
    ]
    assert result.tally.rows_scored == 1


def test_an_error_of_the_stream_sticks_so_a_reader_that_swallows_it_meets_it_again() -> None:
    # A reader that catches an exception of read() and carries on (pandas' C parser turns some
    # into ParserError or SystemError) must not be able to lose it: every later read, and
    # drain(), raise it again. Defensive: no input is known to lose it today.
    def chunks() -> Iterator[bytes]:
        yield b"id,a\n1,2\n"
        raise FileRejected("cr_line_endings", "injected")

    stream = CheckedStream(chunks(), None)
    try:
        assert stream.read() == b"id,a\n1,2\n"
        for read in (stream.read, stream.read, stream.drain):
            with pytest.raises(FileRejected, match="injected"):
                read()
    finally:
        stream.close()


@pytest.mark.parametrize("tail", [b"\r", b"\xc3", b'"'])
@pytest.mark.parametrize("chunk", [1, 9, 4096])
def test_a_problem_in_the_last_byte_is_not_lost(model: LoadedModel, tail: bytes, chunk: int) -> None:
    # pandas may swallow the stream's error when it comes with the very end of the input; the
    # error sticks to the stream, so the verdict still stands (it was lost as no_valid_rows).
    header = ",".join(["client_id", *model.schema.raw_columns]).encode()
    data = header + b"\n,18,0,1,1,-1,0,admin.,divorced,primary,no,no,no,cellular,apr,failure\n" + tail
    code = {b"\r": "cr_line_endings", b"\xc3": "not_utf8", b'"': "unterminated_quote"}[tail]
    with pytest.raises(FileRejected) as caught:
        score_bytes(data, model, ReadOptions(chunk_rows=5), chunk_bytes=chunk)
    assert caught.value.code == code, caught.value.message
