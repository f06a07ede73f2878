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


# Tests that start processes or train real jobs, by node-id prefix, besides those marked in their
# own files: `make test-fast` (-m "not slow") leaves them out; `make test` runs them first.
SLOW = (
    "tests/study/test_study.py",
    "tests/study/test_topology.py::test_one_vs_two_workers_differ_and_two_vs_two_are_bit_identical",
    "tests/study/test_validation.py::test_the_train_stream_never_reads_the_validation_records",
    "tests/planning/test_plan_memory.py",
    "tests/models/test_determinism.py",
    "tests/serving/test_promote.py::test_cli_against_recsys_serve_with_a_stream_to_stable",
    "tests/pipelines/test_cli.py::test_cli_error_budget_message",
    "tests/pipelines/test_cli.py::test_cli_synthetic_run_prints_summary_and_passes_beam_options",
    "tests/pipelines/test_multiprocessing.py",
    "tests/pipelines/test_shared_data.py",
    "tests/pipelines/test_synthetic.py::test_synthetic_source_end_to_end",
    "tests/activations/test_registry.py::test_cli_lists_the_registry",
    "tests/activations/test_runtime.py::test_learnable_activations_train_identically_under_mirrored_strategy",
    "tests/activations/test_runtime.py::test_saved_model_reloads_without_the_project",
    "tests/data/test_columnar.py::test_the_format_is_neutral_for_training_and_for_a_resume",
    "tests/serving/test_monitor.py::test_check_gate_cli_exit_codes",
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the :data:`SLOW` tests, then run every slow (multi-process, end-to-end) test first.

    Under ``pytest -n`` (``make test``) the longest tests then start at once on separate workers
    instead of being left for the end, where one of them would run alone while the other workers
    idle (longest-processing-time-first scheduling). Serial runs are unaffected but for the order.
    """
    for item in items:
        if item.nodeid.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)

    whole_suite = all(pathlib.Path(a).resolve() == REPO_ROOT / "tests" for a in config.args or ["tests"])
    if whole_suite and not config.getoption("-k") and not config.getoption("-m"):
        stale = [p for p in SLOW if not any(item.nodeid.startswith(p) for item in items)]
        if stale:  # a renamed or deleted test must not leave a stale entry (its successor would run as fast)
            raise pytest.UsageError(f"tests/conftest.py SLOW names no collected test: {stale}")
