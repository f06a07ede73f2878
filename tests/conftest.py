"""Shared test setup: Keras 2 selected before anything imports TensorFlow; paths to the shared data."""

from __future__ import annotations

import os
import pathlib

import pytest

import recsys.compat  # noqa: F401  (must run before any test module imports tensorflow)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# The licensed datasets live beside the checkout and are never copied into the repo.
SHARED_DATA = pathlib.Path(os.environ.get("RECSYS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """../shared/data, or skip the test when it is absent (e.g. outside this workplace)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return REPO_ROOT
