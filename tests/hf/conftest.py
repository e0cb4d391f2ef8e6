"""Shared fixtures for the HF interop tests: transformers quiet, a tiny config, a saved tiny checkpoint."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")  # optional dependency: pip install 'stellarbyte[hf]'

from stellarbyte.hf.parity import quiet_transformers  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _quiet_transformers() -> None:
    quiet_transformers()
