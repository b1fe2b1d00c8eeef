"""The coded rejections of the real-time endpoint: one HTTP status and one stable code per cause.

Clients branch on `code`, people read `message`; `problems` lists row-level findings as
(row, column, reason) with the reasons batch scoring writes for the same values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# code -> HTTP status (the vocabulary of docs/realtime.md; tests check every one is reachable)
NOT_JSON = "not_json"
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
BODY_TOO_LARGE = "body_too_large"
TOO_MANY_ROWS = "too_many_rows"
BAD_PAYLOAD = "bad_payload"
MISSING_COLUMNS = "missing_columns"
INVALID_ROWS = "invalid_rows"
BAD_DEPLOYMENT = "bad_deployment"
NO_MODEL = "no_model"
INTERNAL = "internal_error"
STATUS = {
    NOT_JSON: 415,
    UNSUPPORTED_MEDIA_TYPE: 415,
    BODY_TOO_LARGE: 413,
    TOO_MANY_ROWS: 413,
    BAD_PAYLOAD: 400,
    MISSING_COLUMNS: 400,
    INVALID_ROWS: 400,
    BAD_DEPLOYMENT: 400,
    NO_MODEL: 503,
    INTERNAL: 500,
}
MAX_PROBLEMS_LISTED = 100  # a 1,000-row request with every row bad answers with the first 100


@dataclass(frozen=True)
class Problem:
    row: int | None  # 1-based row of the request; None for the request as a whole
    column: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "reason": self.reason}


@dataclass
class RequestRejected(Exception):  # noqa: N818 - an answer (a coded 4xx/5xx), not a crash
    """A request the endpoint answers with an error status instead of predictions."""

    code: str
    message: str
    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def to_dict(self) -> dict[str, Any]:
        listed = [p.to_dict() for p in self.problems[:MAX_PROBLEMS_LISTED]]
        body: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if self.problems:
            body |= {"problems": listed, "problems_total": len(self.problems)}
        return body
