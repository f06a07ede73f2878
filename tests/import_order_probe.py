"""Run as a script: import each given module first, as in a fresh process, with TensorFlow blocked.

A finder on ``sys.meta_path`` records ``TF_USE_LEGACY_KERAS`` at the moment anything asks for
``tensorflow`` and then refuses it, so TensorFlow never loads and every module can be "first" in the
same cheap process: before each one the project's modules, their absl flags and the variable are
cleared. Prints one JSON line: {module: the variable's value at the first TensorFlow request, or
"not requested"}.
"""

import importlib
import importlib.abc
import importlib.machinery
import json
import os
import sys

PROJECT = ("recsys", "pipelines", "serving")
seen: list[str | None] = []


class _Block(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Records the variable when ``tensorflow`` (or a submodule) is imported, then refuses it."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            seen.append(os.environ.get("TF_USE_LEGACY_KERAS"))
            return importlib.machinery.ModuleSpec(name, self, origin=None)
        return None

    def create_module(self, spec):
        raise ImportError(f"blocked by the probe: {spec.name}")

    def exec_module(self, module):  # pragma: no cover - create_module always raises
        raise ImportError(f"blocked by the probe: {module.__name__}")


sys.meta_path.insert(0, _Block())
from absl import flags  # noqa: E402

ABSL_FLAGS = set(flags.FLAGS)
report: dict[str, str] = {}
for module in sys.argv[1:]:
    for name in [n for n in sys.modules if n.split(".")[0] in PROJECT]:
        del sys.modules[name]
    for name in set(flags.FLAGS) - ABSL_FLAGS:  # the previous module's flags, so its import reruns clean
        delattr(flags.FLAGS, name)
    os.environ.pop("TF_USE_LEGACY_KERAS", None)
    seen.clear()
    try:
        importlib.import_module(module)
    except BaseException:  # noqa: BLE001 - blocked TensorFlow fails many imports; the record is what counts
        pass
    report[module] = str(seen[0]) if seen else "not requested"
print(json.dumps(report))
