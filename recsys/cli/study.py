"""``recsys study``: K replicas per activation, accuracy beside PD, frontier plot, TensorBoard PD dashboards.

    recsys study --config configs/synthetic_small.yaml --replicas 4 \\
        --activations "relu,smelu(beta=0.5),smelu(beta=1),gelu,swish" --output out/study
"""

from __future__ import annotations

import os

from absl import flags

flags.DEFINE_string("config", None, "Experiment YAML file or name in configs/ (e.g. synthetic_small).")
flags.DEFINE_multi_string("set", [], "Override a config value: --set train.steps=200 (repeatable).")
flags.DEFINE_integer("replicas", 4, "Replicas per activation variant (>= 2).")
flags.DEFINE_string("activations", "relu,smelu(beta=0.5),smelu(beta=1),gelu,swish",
                    "Comma-separated activation specs from the registry (see `recsys activations`).")
flags.DEFINE_string("sources", "seed,order",
                    "Nondeterminism sources that differ between replicas: seed, order, noise, topology "
                    "(worker count: replica i trains on --topology_workers[i % len] local workers).")
flags.DEFINE_string("topology_workers", "1,2,4,8", "Worker counts of the topology source, one per replica "
                    "in turn; each must divide data.batch_size. Give at least --replicas distinct counts "
                    "(replicas on equal counts are bit-identical).")
flags.DEFINE_float("validation_fraction", 0.1, "Share of train held out (by record hash) as a validation "
                   "split: each variant is reported at its best validation-AUC step, on the untouched eval "
                   "split. 0: no validation split, report at the last step.")
flags.DEFINE_float("noise_scale", 1e-7, "Relative initial-weight perturbation for the 'noise' source.")
flags.DEFINE_integer("seed", 0, "Base seed; a varied source uses base + replica index.")
flags.DEFINE_string("output", "out/study", "Output directory (results, plots, TensorBoard logdir).")
flags.DEFINE_string("title", "", "Title of the table and plot.")
flags.DEFINE_string("export_dir", "", "Also export replica i of each variant as <dir>/<variant>/<i+1> "
                    "(TF Serving layout: serve a variant's replicas as versions of one model).")
flags.DEFINE_integer("workers", 1, "1: train replicas in this process. N > 1: each replica is a supervised "
                     "N-worker MultiWorkerMirroredStrategy job on the local cluster (127.0.0.1).")
flags.DEFINE_string("baseline", "", "Variant the others are compared with (PD ratio, AUC delta, verdict); "
                    "default: the first of --activations.")
flags.DEFINE_integer("bootstrap_draws", 1000, "Bootstrap draws (examples and replicas resampled) behind "
                     "every confidence interval.")
flags.DEFINE_bool("overwrite", False, "Replace an existing study in --output.")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise SystemExit(f"unexpected arguments: {argv[1:]}")
    from recsys.config import loading
    from recsys.study import runner
    from recsys.study.variants import parse_sources, parse_workers, split_specs

    try:
        activations = split_specs(FLAGS.activations)
        from recsys.models.activation import validate_activation

        for spec in activations:
            validate_activation(spec)
        sources = parse_sources(FLAGS.sources)
        base = loading.load(FLAGS.config, FLAGS.set)
        options = runner.StudyOptions(activations=tuple(activations), replicas=FLAGS.replicas,
                                      sources=sources, noise_scale=FLAGS.noise_scale,
                                      base_seed=FLAGS.seed, title=FLAGS.title or base.name,
                                      export_dir=FLAGS.export_dir, workers=FLAGS.workers,
                                      baseline=FLAGS.baseline, bootstrap_draws=FLAGS.bootstrap_draws,
                                      topology_workers=parse_workers(FLAGS.topology_workers),
                                      validation_fraction=FLAGS.validation_fraction)
        payload = runner.run_study(base, options, FLAGS.output, overwrite=FLAGS.overwrite)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as err:
        raise SystemExit(f"error: {err}") from None
    with open(os.path.join(FLAGS.output, runner.RESULTS_MD), encoding="utf-8") as fh:
        print(fh.read())
    print(f"frontier plot: {os.path.join(FLAGS.output, runner.FRONTIER_PNG)}")
    print(f"PD distribution: {os.path.join(FLAGS.output, runner.DISTRIBUTION_PNG)}")
    print("PD dashboards (Custom Scalars tab: one line per variant, 95% CI margin charts; HParams tab: "
          "one row per replica):")
    for command in payload["tensorboard"]["commands"]:
        print(f"  {command}")
    from recsys.study.report import finding_line

    print(f"Finding: {finding_line(payload)}")
