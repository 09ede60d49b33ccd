"""The composition root as the adapters reach it: lazily. Importing a blueprint (which every
cold start of every function does) imports no SDK; the first call of ``get_context()`` builds
the clients and services (``shared.composition``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.composition import AppContext


def get_context() -> AppContext:
    from shared.composition import get_context as build

    return build()


def reset_context() -> None:
    from shared.composition import reset_context as reset

    reset()
