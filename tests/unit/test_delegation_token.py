"""When a Kerberos session switches to a delegation token, and what it does with a NameNode's answers."""

from __future__ import annotations

import json

import pytest

from mdl.storage.http import HttpError
from mdl.storage.webhdfs.tokens import SPNEGO_BEFORE_TOKEN, DelegationToken

GOOD = "HAAEaGRmcwRoZGZzAIoBkx1aLnGKAZNBZrJxAQIUtGZl7TWhoqKhf8OrqD6ZxxP3yn4SV0VCSERGUyBkZWxlZ2F0aW9u"


class Answer:
    """What the session's HTTP layer returns (status, body), as much of it as the token code reads."""

    def __init__(self, status: int, body: bytes | str) -> None:
        self.status, self.data = status, body.encode() if isinstance(body, str) else body
        self.released = False

    def release_conn(self) -> None:
        self.released = True


def tokens_answering(*answers: Answer | Exception) -> tuple[DelegationToken, list[str]]:
    queue, cancelled = list(answers), []

    def fetch() -> Answer:
        a = queue.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    return DelegationToken(fetch, cancelled.append), cancelled


def warm(t: DelegationToken, n: int = SPNEGO_BEFORE_TOKEN) -> None:
    for _ in range(n):
        assert t.current() is None
        t.spnego_used()


def test_a_token_only_after_enough_spnego_requests_and_cancelled_on_close():
    t, cancelled = tokens_answering(Answer(200, json.dumps({"Token": {"urlString": GOOD}})))
    warm(t, SPNEGO_BEFORE_TOKEN - 1)
    assert t.current() is None
    t.spnego_used()
    assert t.current() == GOOD and t.current() == GOOD  # fetched once
    t.close()
    assert cancelled == [GOOD] and t.current() is None


@pytest.mark.parametrize(
    "answer",
    [
        Answer(401, "no"),
        Answer(200, "not json"),
        Answer(200, "null"),
        Answer(200, json.dumps({"Token": "x"})),
        Answer(200, json.dumps({"Token": {"urlString": 42}})),
        Answer(200, json.dumps({"Token": {"urlString": "../../etc/passwd&op=DELETE"}})),
        Answer(200, json.dumps({"Token": {"urlString": "A" * 100_000}})),
        Answer(200, "[" * 100_000),
        HttpError("connection refused"),
    ],
    ids=["401", "not-json", "null", "not-an-object", "not-a-string", "not-url-safe", "huge", "deep", "unreachable"],
)
def test_a_bad_answer_means_spnego_goes_on(answer):
    t, _ = tokens_answering(answer, Answer(200, json.dumps({"Token": {"urlString": GOOD}})))
    warm(t)
    assert t.current() is None  # never a crash, never a token that is not one


def test_a_refused_token_is_dropped_but_a_permission_error_is_not_a_refusal():
    t, _ = tokens_answering(*[Answer(200, json.dumps({"Token": {"urlString": GOOD}}))] * 2)
    warm(t)
    assert t.current() == GOOD
    assert not t.rejected(GOOD, Answer(200, "{}"))
    assert not t.rejected(GOOD, Answer(403, '{"RemoteException": {"exception": "AccessControlException"}}'))
    assert t.current() == GOOD
    assert t.rejected(GOOD, Answer(403, '{"RemoteException": {"message": "token (HDFS_DELEGATION_TOKEN) expired"}}'))
    assert t.current() is None  # back to SPNEGO until enough requests again
    warm(t)
    assert t.current() == GOOD
    assert t.rejected(GOOD, Answer(401, ""))
