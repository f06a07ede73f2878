"""``recsys plan --config FILE|NAME [--set k=v ...] [--workers N] [--memory 16Gi] [--json]``: what the
embedding tables cost per worker (weights, optimizer slots, peak memory) and on the wire per step.

Instant: computed from the feature spec and the resolved config, without TensorFlow. Exits 1, naming
the biggest table, when a worker's ``--memory`` would be exceeded (``--nostrict`` only warns); exits 0
when it fits or no ``--memory`` is given. The model behind the numbers: ``recsys/planning/cost.py``.
"""

from __future__ import annotations

import json
import sys

from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "YAML config file, or the name of one in configs/")
flags.DEFINE_multi_string("set", [], "config override: --set model.embedding_dim=32")
flags.DEFINE_integer("workers", 1, "MultiWorkerMirroredStrategy workers (every one holds every table)")
flags.DEFINE_integer("replicas_per_worker", 1, "replicas per worker (GPUs per worker; 1 on CPU)")
flags.DEFINE_string("memory", None, "memory of one worker, as `recsys submit --memory`: 16Gi, 512Mi, 8G")
flags.DEFINE_bool("strict", True, "exit 1 when a worker's --memory would be exceeded (else only warn)")
flags.DEFINE_bool("json", False, "print the plan as JSON instead of a table")
flags.DEFINE_multi_string("num_ids", [], "what-if: FEATURE=N gives a categorical feature N ids (as "
                          "hashing to N buckets would); repeatable")
flags.DEFINE_string("num_ids_file", None, "what-if: YAML mapping FEATURE: N (e.g. a data set's full "
                    "cardinalities, configs/plans/criteo_kaggle_cardinality.yaml)")
flags.DEFINE_integer("max_ids", 0, "what-if: cap every categorical feature at N ids (hash to N buckets)")
flags.mark_flag_as_required("config")


def _num_ids() -> dict[str, int]:
    import yaml

    out: dict[str, int] = {}
    if FLAGS.num_ids_file:
        with open(FLAGS.num_ids_file, encoding="utf-8") as fh:
            loaded = yaml.safe_load(fh) or {}
        out.update({str(k): int(v) for k, v in loaded.items()})
    for item in FLAGS.num_ids:
        name, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise SystemExit(f"recsys plan: --num_ids {item!r} is not FEATURE=N")
        out[name.strip()] = int(value)
    return out


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise SystemExit(f"recsys plan: unexpected arguments {argv[1:]}")
    from pipelines import feature_spec
    from recsys import config as cfg
    from recsys.planning import cost, parse_quantity, render

    try:
        experiment = cfg.load(FLAGS.config, FLAGS.set)
        if not experiment.data.spec_dir:
            raise ValueError("data.spec_dir is not set (the directory written by `recsys preprocess`)")
        spec = cost.override_num_ids(feature_spec.load(experiment.data.spec_dir), _num_ids(), FLAGS.max_ids)
        memory = parse_quantity(FLAGS.memory) if FLAGS.memory else 0
        plan = cost.plan_experiment(experiment, spec, FLAGS.workers, FLAGS.replicas_per_worker, memory)
    except (cfg.ConfigError, FileNotFoundError, ValueError) as err:
        raise SystemExit(f"recsys plan: {err}") from None
    print(json.dumps(plan.to_dict(), indent=2) if FLAGS.json else render.render(plan))
    if not plan.fits:
        print(f"recsys plan: {'refused' if FLAGS.strict else 'warning'}: {plan.refusal()}", file=sys.stderr)
        sys.exit(1 if FLAGS.strict else 0)
