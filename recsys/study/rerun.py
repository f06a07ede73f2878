"""A study run again on its own --output: the same resolved experiment and options is a no-op (the saved
results), anything else is refused naming the first difference (as ``recsys train`` treats a run)."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from recsys.config import loading
from recsys.config.schema import Experiment
from recsys.train.fingerprint import config_defaults, dict_differences

# StudyOptions fields named otherwise as `recsys study` settings (``--seed``).
_SETTING = {"base_seed": "seed"}


def recorded(base: Experiment, options: Any) -> dict[str, Any]:
    """What a finished study records of what it ran: the experiment and the options, as results.json
    holds them (JSON types: tuples as lists)."""
    return json.loads(json.dumps({"config": loading.to_dict(base), "options": dataclasses.asdict(options)}))


def differences(saved: dict[str, Any], now: dict[str, Any],
                option_defaults: dict[str, Any] | None = None) -> list[str]:
    """``key: saved -> now`` per differing field, experiment keys first (``train.steps``), then the
    study's (``study.replicas``); a field the saved study predates, at its default now, is none
    (:func:`recsys.train.fingerprint.dict_differences`; ``option_defaults``: the options' defaults)."""
    def named(options: dict[str, Any]) -> dict[str, Any]:
        return {_SETTING.get(k, k): v for k, v in options.items()}

    return (dict_differences(saved.get("config") or {}, now["config"], config_defaults())
            + dict_differences(named(saved.get("options") or {}), named(now["options"]),
                               named(option_defaults or {}), "study"))


def _defaults(options: Any) -> dict[str, Any]:
    """The defaults of ``options``'s dataclass fields, as results.json holds values (JSON types)."""
    return json.loads(json.dumps({f.name: f.default for f in dataclasses.fields(options)
                                  if f.default is not dataclasses.MISSING}))


def finished_study(path: str, base: Experiment, options: Any) -> dict[str, Any] | None:
    """The saved results (``path``: a study's results.json) when that finished study ran this experiment
    with these options; None when there is none (the study did not finish).

    Raises FileExistsError naming the first difference when the finished study is another one."""
    output = os.path.dirname(path) or "."
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as fh:
        saved = json.load(fh)
    if "config" not in saved or "options" not in saved:
        raise FileExistsError(f"{path} holds a study that records no config to compare with; choose "
                              "another --output or pass --overwrite")
    changed = differences(saved, recorded(base, options), _defaults(options))
    if changed:
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        raise FileExistsError(f"{output} holds a finished study of another config or settings: "
                              f"{changed[0]}{more}; choose another --output or pass --overwrite")
    return saved
