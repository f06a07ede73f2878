"""``recsys study``: K replicas per activation, accuracy beside PD, frontier plot, TensorBoard PD dashboards.

    recsys study --config configs/synthetic_small.yaml --replicas 4 \\
        --activations "relu,smelu(beta=0.5),smelu(beta=1),gelu,swish" --output out/study
    recsys study --config job.yaml --set study.replicas=3 --set train.steps=200

One ``--config`` holds the experiment (top-level keys) and the study's settings (a ``study:`` section);
``--set train.KEY=...`` changes the experiment, ``--set study.KEY=...`` the study. Flags are generated
from :class:`recsys.settings.study.StudySettings`. The resolved file is saved as
``<output>/config.yaml``: ``recsys study --config <output>/config.yaml`` reruns the same study.
"""

from __future__ import annotations

import os

from absl import flags

from recsys.cli import exits
from recsys.cli.flagging import Flags
from recsys.settings.study import StudySettings

FLAGS = flags.FLAGS
flags.DEFINE_bool("overwrite", False, "Replace an existing study in --output.")

SETTINGS = Flags(StudySettings, "study",
                 config_help="Experiment YAML file or name in configs/ (e.g. synthetic_small); may hold a "
                 "study: section with this command's settings.")


def main(argv: list[str]) -> None:
    exits.no_arguments("study", argv)
    base, settings = SETTINGS.load_job("study")  # --print_config and config errors: before TensorFlow loads
    from recsys.study import runner

    if settings.by_source:
        _by_source(base, settings)
        return
    try:
        payload = runner.run_study(base, settings.options(title=base.name), settings.output,
                                   overwrite=FLAGS.overwrite, sections={"study": settings})
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as err:
        exits.fail("study", err)
    # The report is a file to read; the terminal gets where it is and the one-line finding.
    print(f"report: {os.path.join(settings.output, runner.RESULTS_MD)} (tables with 95% CIs; JSON: "
          f"{os.path.join(settings.output, runner.RESULTS_JSON)})")
    print(f"frontier plot: {os.path.join(settings.output, runner.FRONTIER_PNG)}")
    if payload.get("kind") == "update":
        print("churn dashboards (Scalars tab: churn per update, replica PD and AUC per version, one line "
              "per variant):")
    else:
        print(f"PD distribution: {os.path.join(settings.output, runner.DISTRIBUTION_PNG)}")
        print("PD dashboards (Custom Scalars tab: one line per variant, 95% CI margin charts; HParams tab: "
              "one row per replica):")
    from recsys.study.dashboards import OPEN_HINT, open_url

    for command in payload["tensorboard"]["commands"]:
        print(f"  {command}")
    print(f"  then open {open_url('scalars' if payload.get('kind') == 'update' else 'custom_scalars')} "
          f"({OPEN_HINT})")
    from recsys.study.report import finding_line
    from recsys.study.update_report import finding_line as update_finding

    print(f"Finding: {update_finding(payload) if payload.get('kind') == 'update' else finding_line(payload)}")


def _by_source(base, settings: StudySettings) -> None:
    """``--by_source``: one study per source, then the source × variant decomposition."""
    from recsys.study import sources

    try:
        payload = sources.run_by_source(base, settings.options(title=base.name), settings.output,
                                        overwrite=FLAGS.overwrite, sections={"study": settings})
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as err:
        raise SystemExit(f"error: {err}") from None
    print(f"report: {os.path.join(settings.output, sources.RESULTS_MD)} (source × variant, 95% CIs; heat "
          f"map: {os.path.join(settings.output, sources.HEATMAP_PNG)}; one study per source under "
          f"{settings.output}/<source>)")
    print(f"Finding: {payload['finding']}")
