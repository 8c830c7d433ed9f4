"""Fixtures for the emulator's own tests: a fresh in-process emulator per test (ASGI, no sockets)."""
from __future__ import annotations

import pytest

from emukit import Emu


@pytest.fixture
def emu():
    e = Emu()
    yield e
    e.close()
