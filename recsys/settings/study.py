"""``recsys study`` settings, one field per flag (``study:`` in a config file beside the experiment)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.typed import setting

DEFAULT_ACTIVATIONS = ("relu", "smelu(beta=0.5)", "smelu(beta=1)", "gelu", "swish")


def activations(text: str) -> tuple[str, ...]:
    """"relu,smelu(beta=0.5)" -> the canonical specs (commas inside parentheses kept)."""
    from recsys.study.variants import split_specs

    return tuple(split_specs(text))


def sources(text: str) -> tuple[str, ...]:
    """"seed,order" -> ("seed", "order"); "none" -> ()."""
    from recsys.study.variants import parse_sources

    return parse_sources(text)


def worker_counts(text: str) -> tuple[int, ...]:
    """"1,2,4" -> (1, 2, 4)."""
    from recsys.study.variants import parse_workers

    return parse_workers(text)


def check_study(s: Any) -> None:
    """The checks a study and the demo share: replicas, known activations (made canonical: "smelu(beta=1.0)"
    and "smelu(beta=1)" are one variant) and sources, worker counts."""
    from recsys.study.variants import SOURCES, split_specs

    if s.replicas < 2:
        raise ValueError(f"replicas must be >= 2 (PD needs two replicas of a variant), got {s.replicas}")
    if not s.activations:
        raise ValueError("activations: none given")
    # Frozen, but this runs in __post_init__: the canonical specs replace the given ones.
    object.__setattr__(s, "activations", tuple(split_specs(",".join(s.activations))))
    bad = [x for x in s.sources if x not in SOURCES]
    if bad:
        raise ValueError(f"sources: unknown {bad}; choose from {', '.join(SOURCES)}")
    if not s.topology_workers or min(s.topology_workers) < 1:
        raise ValueError(f"topology_workers needs worker counts >= 1, got {list(s.topology_workers)}")
    if s.workers < 1:
        raise ValueError(f"workers must be >= 1, got {s.workers}")
    if "update" in s.sources and "topology" in s.sources:
        raise ValueError("sources: update does not combine with topology (chains differ in seed, order or "
                         "noise)")


@dataclass(frozen=True)
class StudySettings:
    """A study's variants, replicas and outputs; :meth:`options` gives the runner's StudyOptions."""

    replicas: int = setting(4, "Replicas per activation variant (>= 2).")
    activations: tuple[str, ...] = setting(DEFAULT_ACTIVATIONS, "Comma-separated activation specs from the "
                                           "registry (see `recsys activations`).", parse=activations)
    sources: tuple[str, ...] = setting(("seed", "order"), "Nondeterminism sources that differ between "
                                       "replicas: seed, order, noise, topology (worker count: replica i "
                                       "trains on --topology_workers[i % len] local workers); none: "
                                       "identical.",
                                       parse=sources)
    topology_workers: tuple[int, ...] = setting((1, 2, 4, 8), "Worker counts of the topology source, one per "
                                                "replica in turn; each must divide data.batch_size. Give at "
                                                "least --replicas distinct counts (replicas on equal counts "
                                                "are bit-identical).", parse=worker_counts)
    validation_fraction: float = setting(0.1, "Share of train held out (by record hash) as a validation "
                                         "split: each variant is reported at its best validation-AUC step, "
                                         "on the untouched eval split. 0: no validation split, report at the "
                                         "last step.")
    patience: int = setting(3, "Early stopping per replica: stop after this many evaluations without a "
                            "better validation AUC (train.steps is the maximum) and report each replica at "
                            "its best validation step; needs --validation_fraction > 0. 0: train every "
                            "replica for train.steps and report each variant at its best common step.")
    noise_scale: float = setting(1e-7, "Relative initial-weight perturbation for the 'noise' source.")
    seed: int = setting(0, "Base seed; a varied source uses base + replica index.")
    output: str = setting("out/study", "Output directory (results, plots, TensorBoard logdir).")
    title: str = setting("", "Title of the table and plot (default: the experiment's name).")
    export_dir: str = setting("", "Also export replica i of each variant as <dir>/<variant>/<i+1> (TF "
                              "Serving layout: serve a variant's replicas as versions of one model).")
    workers: int = setting(1, "1: train replicas in this process. N > 1: each replica is a supervised "
                           "N-worker MultiWorkerMirroredStrategy job on the local cluster (127.0.0.1).")
    baseline: str = setting("", "Variant the others are compared with (PD ratio, AUC delta, verdict); "
                            "default: the first of --activations.")
    bootstrap_draws: int = setting(1000, "Bootstrap draws (examples and replicas resampled) behind every "
                                   "confidence interval.")
    bootstrap_seed: int = setting(0, "Seed of the bootstrap draws.", flag=None)
    windows: int = setting(0, "update source: versions per chain, one per time window (0: every window of "
                           "the data, written by `recsys preprocess --windows N`).")
    update_steps: int = setting(0, "update source: steps of each update v(j) -> v(j+1) (0: train.steps).")
    distill_weight: float = setting(0.0, "update source: also run each activation with distillation toward "
                                    "the previous version at this weight in (0, 1] (0: no distilled "
                                    "variants).")

    max_cost: float = setting(0.0, "Recommend only variants whose cost (the largest of the training-time "
                              "and serving-latency ratios vs the baseline; latency needs --export_dir) is at "
                              "most this; none meeting it: nothing is recommended. 0: no budget.")

    by_source: bool = setting(False, "PD by source: one study per source in --sources (each varying only "
                              "that source) per variant, under <output>/<source>; a source × variant table "
                              "with 95% CIs, a heat map and the dominant source in <output>/results.md.")

    def __post_init__(self) -> None:
        check_study(self)
        if self.by_source:
            from recsys.study.sources import check_sources

            check_sources(self.sources)
        if self.max_cost < 0:
            raise ValueError(f"max_cost must be > 0 (a cost ratio vs the baseline) or 0 (no budget), got "
                             f"{self.max_cost}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience}")
        if self.patience and not self.validation_fraction and "update" not in self.sources:
            raise ValueError(f"patience {self.patience} (early stopping) needs a validation split to stop "
                             "on: --validation_fraction > 0, or --patience 0 for a fixed train.steps")
        if self.bootstrap_draws < 1:
            raise ValueError(f"bootstrap_draws must be >= 1, got {self.bootstrap_draws}")
        if self.windows < 0 or self.windows == 1:
            raise ValueError(f"windows must be 0 (all) or >= 2, got {self.windows}")
        if self.update_steps < 0:
            raise ValueError(f"update_steps must be >= 0, got {self.update_steps}")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"distill_weight must be in [0, 1], got {self.distill_weight}")

    def options(self, title: str = "") -> Any:
        """The runner's :class:`~recsys.study.runner.StudyOptions` (``title``: when none is set)."""
        from recsys.study.runner import StudyOptions

        return StudyOptions(activations=self.activations, replicas=self.replicas, sources=self.sources,
                            noise_scale=self.noise_scale, base_seed=self.seed, title=self.title or title,
                            export_dir=self.export_dir, workers=self.workers, baseline=self.baseline,
                            bootstrap_draws=self.bootstrap_draws, bootstrap_seed=self.bootstrap_seed,
                            topology_workers=self.topology_workers,
                            validation_fraction=self.validation_fraction, patience=self.patience,
                            windows=self.windows,
                            update_steps=self.update_steps, distill_weight=self.distill_weight,
                            max_cost=self.max_cost)
