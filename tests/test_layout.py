"""Layout rules that keep scripts importable."""

from __future__ import annotations

import ast
import pathlib


def test_no_script_shadows_a_package(repo_root: pathlib.Path):
    """A script runs with its own folder first on sys.path: benchmarks/serving.py would hide the
    serving package from everything the script imports (recsys.repro imports serving.pd)."""
    packages = {p.name for p in repo_root.iterdir() if (p / "__init__.py").is_file()}
    assert {"recsys", "pipelines", "serving"} <= packages
    scripts = {p.stem for p in (repo_root / "benchmarks").glob("*.py")}
    assert not scripts & packages, scripts & packages


def _imported_modules(path: pathlib.Path) -> set[str]:
    """Absolute module names a source file imports (at any depth: lazy imports count too)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


APPLICATIONS = ("recsys.cli", "recsys.demo", "recsys.launch", "recsys.reproduce", "recsys.settings",
                "recsys.study")
LIBRARY = ("activations", "config", "data", "export", "models", "train")


def test_imports_run_one_way(repo_root: pathlib.Path):
    """pipelines is the bottom layer; the training library never imports the applications on top."""
    wrong = []
    for path in (repo_root / "pipelines").rglob("*.py"):
        wrong += [f"{path}: {m}" for m in _imported_modules(path) if m.split(".")[0] in ("recsys", "serving")]
    for package in LIBRARY:
        for path in (repo_root / "recsys" / package).rglob("*.py"):
            wrong += [f"{path}: {m}" for m in _imported_modules(path)
                      if any(m == app or m.startswith(app + ".") for app in APPLICATIONS)]
    assert wrong == []


def test_the_layer_check_sees_lazy_imports(tmp_path: pathlib.Path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from recsys.launch import ports\n    import recsys.cli.train\n")
    assert _imported_modules(source) == {"recsys.launch", "recsys.cli.train"}


def _unit(module: str) -> str:
    """The package-level unit of a module: pipelines, serving, or a subpackage of recsys."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "recsys" and len(parts) > 1 else parts[0]


def test_no_package_level_import_cycle(repo_root: pathlib.Path):
    graph: dict[str, set[str]] = {}
    for top in ("recsys", "pipelines", "serving"):
        for path in (repo_root / top).rglob("*.py"):
            src = _unit(".".join(path.relative_to(repo_root).with_suffix("").parts))
            deps = {_unit(m) for m in _imported_modules(path) if m.split(".")[0] in ("recsys", "pipelines",
                                                                                       "serving")}
            graph.setdefault(src, set()).update(deps - {src})
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for dep in sorted(graph.get(node, ())):
            if dep in path:
                cycles.append(path[path.index(dep):] + [dep])
            elif len(path) < len(graph):
                visit(dep, path + [dep])

    for start in sorted(graph):
        visit(start, [start])
    assert cycles == []
