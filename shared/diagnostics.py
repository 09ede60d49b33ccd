"""What the logs may say about an unexpected exception: its type and where it was raised (file,
line, function of every frame), never its message, which may quote a payload's values."""

from __future__ import annotations

import traceback
from pathlib import Path


def where(error: BaseException, limit: int = 12) -> str:
    """``Type at file.py:12 in f < file.py:40 in g``: innermost frame first."""
    frames = traceback.extract_tb(error.__traceback__)[-limit:]
    path = " < ".join(f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}" for frame in reversed(frames))
    return f"{type(error).__name__} at {path or 'an unknown place'}"
