"""``recsys demo``: the main job end to end on embedded defaults (synthetic data, 2-worker local cluster).

data -> Beam preprocessing -> ReLU-vs-SmeLU study (replicas on the local cluster) -> exports ->
``recsys serve`` -> ``recsys query`` over gRPC -> ``recsys monitor`` between the served replicas ->
the accuracy / PD table and the command that opens the TensorBoard PD dashboards.

``--config`` may name the experiment (default: the source's named one) and hold a ``demo:`` section;
``--set train.KEY=...`` changes the experiment, ``--set demo.KEY=...`` the demo. Flags are generated
from :class:`recsys.settings.demo.DemoSettings`.
"""

from __future__ import annotations

import signal

from recsys.cli import exits
from recsys.cli.flagging import Flags, resolve_or_exit
from recsys.settings.demo import DemoSettings

SETTINGS = Flags(DemoSettings, "demo", config_help="Experiment YAML file or name (default: the source's "
                 "named experiment); may hold a demo: section with this command's settings.")


def main(argv: list[str]) -> None:
    exits.no_arguments("demo", argv)
    from recsys.demo import Demo

    settings = SETTINGS.load("demo")
    experiment_sets, _ = resolve_or_exit("demo", SETTINGS.overrides)
    if SETTINGS.fv["config"].value or experiment_sets:
        resolve_or_exit("demo", SETTINGS.experiment)  # a bad experiment key fails now, not after stage 1
    try:
        Demo(settings, SETTINGS.fv["config"].value, tuple(experiment_sets)).run()
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        exits.fail("demo", f"failed: {err}")
    except KeyboardInterrupt:
        exits.fail("demo", "interrupted; every process it started has been stopped", 128 + signal.SIGINT)
