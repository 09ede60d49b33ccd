"""local/stack.py's own bookkeeping (the services themselves are exercised by every
integration test)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from local import stack


def test_a_service_an_earlier_version_started_is_stopped_and_forgotten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(stack, "DATA", tmp_path)
    # As the single Azurite process for Blob, Queue and Table was started: in a session of its own.
    earlier = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    try:
        (tmp_path / "pids").mkdir()
        (tmp_path / "pids" / "azurite.pid").write_text(str(earlier.pid))
        reaper = threading.Thread(target=earlier.wait)  # as init would reap it: no zombie left
        reaper.start()
        stack.stop_retired()
        reaper.join(timeout=30)
        assert earlier.returncode == -signal.SIGTERM
        assert not (tmp_path / "pids" / "azurite.pid").exists()
    finally:
        earlier.kill()
