"""Every status a handler answered during this test session (every other test has run: this
one is ordered last) is documented for its operation in the OpenAPI document."""

from __future__ import annotations

import pytest

from shared.api.contract import operations
from shared.api.openapi import document


@pytest.mark.answers_audit
def test_every_status_the_handlers_answered_is_documented(answers_heard: set[tuple[str, str, int]]):
    by_handler = {(op.function, op.method): op for op in operations()}
    paths = document()["paths"]
    assert len(answers_heard) > 30  # the suite drove the handlers; an empty audit proves nothing
    undocumented = []
    for handler, method, status in sorted(answers_heard):
        operation = by_handler.get((handler, method))
        assert operation is not None, f"{handler} {method} answered but has no operation in the contract"
        if str(status) not in paths[operation.path][method]["responses"]:
            undocumented.append(f"{method.upper()} {operation.path} answered {status}")
    assert undocumented == []
