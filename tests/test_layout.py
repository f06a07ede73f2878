"""Layout rules that keep scripts importable."""

from __future__ import annotations

import pathlib


def test_no_script_shadows_a_package(repo_root: pathlib.Path):
    """A script runs with its own folder first on sys.path: benchmarks/serving.py would hide the
    serving package from everything the script imports (recsys.repro imports serving.pd)."""
    packages = {p.name for p in repo_root.iterdir() if (p / "__init__.py").is_file()}
    assert {"recsys", "pipelines", "serving"} <= packages
    scripts = {p.stem for p in (repo_root / "benchmarks").glob("*.py")}
    assert not scripts & packages, scripts & packages
