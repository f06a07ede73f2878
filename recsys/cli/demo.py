"""``recsys demo``: the main job end to end on embedded defaults (synthetic data, 2-worker local cluster).

data -> Beam preprocessing -> ReLU-vs-SmeLU study (replicas on the local cluster) -> exports ->
``recsys serve`` -> ``recsys query`` over gRPC -> ``recsys monitor`` between the served replicas ->
the accuracy / PD table and the command that opens the TensorBoard PD dashboards.
"""

from __future__ import annotations

from absl import flags

flags.DEFINE_string("output", "out/demo", "Where everything goes.")
flags.DEFINE_enum("source", "synthetic", ["synthetic", "criteo", "movielens"], "Data source.")
flags.DEFINE_string("data", "", "Input for --source=criteo (TSV) or movielens (the ml-100k directory).")
flags.DEFINE_integer("rows", 200_000, "Synthetic rows to generate.")
flags.DEFINE_string("activations", "relu,smelu", "Variants of the study (smelu: beta=1).")
flags.DEFINE_integer("replicas", 2, "Replicas per variant.")
flags.DEFINE_integer("workers", 2, "Workers of the local cluster per replica (1: in process), with sources "
                     "other than topology.")
flags.DEFINE_string("sources", "topology", "What differs between replicas (see `recsys study --sources`); "
                    "topology: the same job on --topology_workers workers.")
flags.DEFINE_string("topology_workers", "1,2", "Worker counts of the topology source, replica by replica.")
flags.DEFINE_integer("steps", 0, "Training steps per replica (0: the config's).")
flags.DEFINE_integer("eval_every", 0, "Steps between evaluations (0: the config's).")
flags.DEFINE_float("learning_rate", 0.01, "Adam learning rate of the replicas (0: the config's).")
flags.DEFINE_integer("query_rows", 512, "Eval rows sent to the served replicas by the monitor.")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise SystemExit(f"unexpected arguments: {argv[1:]}")
    from recsys.demo import Demo, DemoOptions
    from recsys.study.variants import parse_sources, parse_workers, split_specs

    options = DemoOptions(output=FLAGS.output, source=FLAGS.source, data=FLAGS.data, rows=FLAGS.rows,
                          activations=tuple(split_specs(FLAGS.activations)), replicas=FLAGS.replicas,
                          workers=FLAGS.workers, steps=FLAGS.steps, eval_every=FLAGS.eval_every,
                          query_rows=FLAGS.query_rows, sources=parse_sources(FLAGS.sources),
                          topology_workers=parse_workers(FLAGS.topology_workers),
                          learning_rate=FLAGS.learning_rate)
    try:
        Demo(options).run()
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        raise SystemExit(f"demo failed: {err}") from None
    except KeyboardInterrupt:
        raise SystemExit("demo interrupted; every process it started has been stopped") from None
