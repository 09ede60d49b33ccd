"""Unit tests need nothing but Python: no local stack, no Node. Each test starts from settings
read afresh, so that one test's environment is never another's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.composition import reset_context


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    reset_context()
    yield
    reset_context()
