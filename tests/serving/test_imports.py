"""Import rules of serving/: Keras 2 selected before TensorFlow, and never the project's model code."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVING = os.path.join(REPO, "serving")
MODULES = sorted(f for f in os.listdir(SERVING) if f.endswith(".py"))


def _imports(path: str, top_level: bool = False) -> list[tuple[int, str]]:
    tree = ast.parse(Path(path).read_text())
    out = []
    for node in tree.body if top_level else ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "recsys":
            out += [(node.lineno, f"recsys.{a.name}") for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


@pytest.mark.parametrize("module", MODULES)
def test_compat_before_tensorflow_and_no_model_code(module):
    imports = _imports(os.path.join(SERVING, module))
    top = _imports(os.path.join(SERVING, module), top_level=True)
    tf_lines = [line for line, name in top if name.split(".")[0] in ("tensorflow", "tensorflow_serving")]
    compat_lines = [line for line, name in top if name == "recsys.compat"]
    if tf_lines:  # the editable install may skip serving/__init__.py, so each module selects Keras 2
        assert compat_lines and min(compat_lines) < min(tf_lines), module
    for _, name in imports:
        if name.split(".")[0] == "recsys":
            assert name.startswith(("recsys.compat", "recsys.repro")), (module, name)
