"""``recsys plan --config FILE|NAME [--set k=v ...] [--workers N] [--memory 16Gi] [--json]``: what the
embedding tables cost per worker (weights, optimizer slots, peak memory) and on the wire per step.

Instant: computed from the feature spec and the resolved config, without TensorFlow. Exits 1, naming
the biggest table, when a worker's ``--memory`` would be exceeded (``--nostrict`` only warns); exits 0
when it fits or no ``--memory`` is given; a bad flag or config exits 2. The model behind the numbers:
``recsys/planning/cost.py``. Flags are generated from :class:`recsys.settings.plan.PlanSettings`
(``--set plan.KEY=...``; ``--set model.KEY=...`` changes the experiment).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from absl import flags

from recsys.cli import exits
from recsys.cli.flagging import Flags
from recsys.settings.plan import PlanSettings

SETTINGS = Flags(PlanSettings, "plan", config_help="Experiment YAML file or name in configs/ (e.g. "
                 "criteo_dcn); may hold a plan: section with this command's settings.")
flags.mark_flag_as_required("config")


def run(experiment: Any, settings: PlanSettings) -> int:
    """Print the plan of ``experiment`` under ``settings``; the exit status (1: refused)."""
    from pipelines import feature_spec
    from recsys.planning import cost, render

    if not experiment.data.spec_dir:
        exits.usage("plan", "data.spec_dir is not set (the directory written by `recsys preprocess`: "
                    "--set data.spec_dir=DIR)")
    try:
        spec = cost.override_num_ids(feature_spec.load(experiment.data.spec_dir), settings.what_if_ids(),
                                     settings.max_ids)
        plan = cost.plan_experiment(experiment, spec, settings.workers, settings.replicas_per_worker,
                                    settings.memory_bytes)
    except (FileNotFoundError, ValueError) as err:
        exits.fail("plan", err)
    print(json.dumps(plan.to_dict(), indent=2) if settings.json else render.render(plan))
    if plan.fits:
        return 0
    print(f"recsys plan: {'refused' if settings.strict else 'warning'}: {plan.refusal()}", file=sys.stderr)
    return 1 if settings.strict else 0


def main(argv: list[str]) -> None:
    exits.no_arguments("plan", argv)
    experiment, settings = SETTINGS.load_job("plan")
    sys.exit(run(experiment, settings))
