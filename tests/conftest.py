"""Shared test setup: Keras 2 selected before anything imports TensorFlow; paths to the shared data."""

from __future__ import annotations

import fcntl
import os
import pathlib
import shutil
from collections.abc import Callable

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


@pytest.fixture(scope="session")
def run_once(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, Callable[[pathlib.Path], object]],
                                                                   pathlib.Path]:
    """``run_once(name, make)``: a directory that ``make(directory)`` fills once per test session, also
    across the pytest-xdist workers (the first to ask builds it under a lock, the others wait for it
    and reuse it): trained references and preprocessed data shared by every test that needs them."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # this session's folder, shared by its workers (not by other sessions)

    def get(name: str, make: Callable[[pathlib.Path], object]) -> pathlib.Path:
        directory = root / f"shared-{name}"
        with open(root / f"shared-{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
            if not (directory / ".done").exists():
                shutil.rmtree(directory, ignore_errors=True)  # a builder that failed half-way
                directory.mkdir()
                make(directory)
                (directory / ".done").touch()
        return directory

    return get


# Tests that start processes or train real jobs, by node-id prefix, besides those marked in their
# own files: `make test-fast` (-m "not slow") leaves them out; `make test` runs them first.
SLOW = (
    "tests/study/test_study.py",
    "tests/study/test_rerun.py::test_a_finished_study_run_again_is_a_no_op_and_another_config_is_refused",
    "tests/study/test_cost.py::test_study_records_cost_and_an_unmeetable_budget_recommends_nothing",
    "tests/study/test_sources.py::test_by_source_runs_one_study_per_source_and_shares_replica_zero",
    "tests/models/test_ensemble.py::test_stopped_ensemble_resumes_to_identical_weights",
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
    "tests/serving/test_mtls_tools.py::test_monitor_cli_takes_the_client_certificate",
    "tests/serving/test_mtls_tools.py::test_promote_cli_takes_the_client_certificate",
    "tests/serving/test_pointers.py::test_recsys_query_on_the_wrong_port_says_so",
    # Every subcommand or module in a fresh interpreter, real exports, supervisors, fuzzed servers:
    "tests/config/test_help.py",
    "tests/config/test_cli_config.py",
    "tests/config/test_exit_codes.py::test_a_bad_input_is_one_line_with_the_documented_code",
    "tests/test_import_order.py",
    "tests/models/test_imports.py",
    "tests/models/test_resume.py",
    "tests/models/test_export.py",
    "tests/serving/test_real_export.py",
    "tests/serving/test_fuzz_rest.py",
    "tests/serving/test_fuzz_grpc.py",
    "tests/launch/test_supervisor.py",
    "tests/launch/test_k8s_apply.py",
    "tests/data/test_columnar.py::test_the_workers_rows_make_up_the_global_batches",
    "tests/launch/test_update_resume.py",
    "tests/launch/test_early_stop_workers.py",
    # Model updates: a parent and children trained for real (tests/train/conftest.py)
    "tests/train/test_warm_start.py",
    "tests/train/test_distill.py",
    "tests/train/test_lineage.py",
    # recsys reproduce: each test runs the command (and most retrain) in a fresh interpreter
    "tests/repro/test_reproduce.py",
    "tests/train/test_early_stopping.py::test_a_",  # runs that stop early, resume (tests/train/conftest.py)
)


# The longest of them, longest first (measured: the demo ~2 min, each exact-resume job up to ~1 min).
LONGEST_FIRST = (
    "tests/test_demo.py",
    "tests/test_first_hour.py",
    "tests/study/test_update_study.py",
    "tests/launch/test_exact_resume.py",
    "tests/study/test_study.py",
    "tests/study/test_topology.py",
    "tests/launch/test_local_training.py",
    "tests/serving/test_promote.py",
    "tests/planning/test_plan_memory.py",
)


def _schedule(item: pytest.Item) -> tuple[bool, int]:
    """Slow before fast; among the slow, :data:`LONGEST_FIRST`'s order, then the rest."""
    rank = next((i for i, p in enumerate(LONGEST_FIRST) if item.nodeid.startswith(p)), len(LONGEST_FIRST))
    return item.get_closest_marker("slow") is None, rank


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the :data:`SLOW` tests, then list every slow (multi-process, end-to-end) test first, the
    longest first.

    ``make test`` runs ``pytest -n <cores + 1> --dist worksteal``: the list goes out in blocks, so the
    slow tests start at once on the first worker while the others take the fast ones and steal. Handing
    the slow ones out one by one (``--dist load --maxschedchunk 1``) measured slower on 2 cores (11.7
    against 10.7 minutes): three multi-process jobs at once thrash two cores.
    """
    for item in items:
        if item.nodeid.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
    items.sort(key=_schedule)

    whole_suite = all(pathlib.Path(a).resolve() == REPO_ROOT / "tests" for a in config.args or ["tests"])
    if whole_suite and not config.getoption("-k") and not config.getoption("-m"):
        stale = [p for p in SLOW if not any(item.nodeid.startswith(p) for item in items)]
        if stale:  # a renamed or deleted test must not leave a stale entry (its successor would run as fast)
            raise pytest.UsageError(f"tests/conftest.py SLOW names no collected test: {stale}")
