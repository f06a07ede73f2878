"""Study variants and the replica configs that differ only in chosen sources.

A variant is an activation spec with an optional ensemble size: ``relu``, ``smelu(beta=0.5)``, or
``relu×2`` / ``relu*2`` (model.ensemble=2: two towers with that activation, probabilities averaged).
The canonical name writes ``×`` and drops ``×1``."""

from __future__ import annotations

import dataclasses

from recsys.config.schema import Experiment

SOURCES = ("seed", "order", "noise", "topology", "update")  # update: chains of versions (study/update.py)
DEFAULT_SOURCES = ("seed", "order")
DEFAULT_TOPOLOGY_WORKERS = (1, 2, 4, 8)  # replica i runs on workers[i % len]: distinct for K <= 4


ENSEMBLE_MARK = "×"  # "relu×2": the canonical ensemble suffix ("*" is accepted on input)


def split_variant(text: str) -> tuple[str, int]:
    """"smelu(beta=1)×2" or "smelu(beta=1)*2" -> ("smelu(beta=1)", 2), the spec as written; a plain spec
    -> (spec, 1). The mark counts only after the spec's parentheses; the size must be an integer >= 1."""
    text = text.strip()
    at = max(text.rfind(ENSEMBLE_MARK), text.rfind("*"))
    if at < 0 or at < text.rfind(")"):
        return text, 1
    head, size = text[:at].strip(), text[at + 1:].strip()
    try:
        n = int(size)
    except ValueError:
        n = 0
    if n < 1 or not head:
        raise ValueError(f"variant {text!r}: the ensemble size after {ENSEMBLE_MARK!r} (or '*') must be an "
                         f"integer >= 1 after an activation, as in relu{ENSEMBLE_MARK}2")
    return head, n


def parse_variant(text: str) -> tuple[str, int]:
    """A variant -> (the activation's canonical spec, the ensemble size)."""
    from recsys.activations import canonical

    head, n = split_variant(text)
    return canonical(head), n


def variant_name(activation: str, ensemble: int = 1) -> str:
    """The canonical variant name: the activation's canonical spec, with ``×N`` when N > 1."""
    return activation if ensemble == 1 else f"{activation}{ENSEMBLE_MARK}{ensemble}"


def canonical_variant(text: str) -> str:
    """"relu*2" -> "relu×2"; "smelu(beta=1.0)" -> "smelu(beta=1)"; "relu×1" -> "relu"."""
    return variant_name(*parse_variant(text))


def split_specs(text: str) -> list[str]:
    """"relu,smelu(beta=0.5),relu*2" -> the canonical variant names, in order (``smelu(beta=1)`` and
    ``smelu(beta=1.0)`` are one variant, so listing both is an error)."""
    from recsys.activations import split_list

    given = split_list(text)
    specs = [canonical_variant(s) for s in given]
    dups = sorted({c for c in specs if specs.count(c) > 1})
    if dups:
        same = "; ".join(" = ".join(g for g, c in zip(given, specs, strict=True) if c == d) for d in dups)
        raise ValueError(f"the same variant is listed twice: {same}")
    return specs


def parse_sources(text: str) -> tuple[str, ...]:
    """"seed,order" -> ("seed", "order"); every name must be one of :data:`SOURCES`.

    "none" gives identical replicas: a control whose PD must be exactly 0 on a deterministic CPU.
    """
    if text.strip() == "none":
        return ()
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in names if s not in SOURCES]
    if bad or not names:
        raise ValueError(
            f"unknown nondeterminism source(s) {bad or text!r}; choose from {', '.join(SOURCES)} or none"
        )
    return names


@dataclasses.dataclass(frozen=True)
class ReplicaPlan:
    """What makes replica ``index`` of a variant differ from the others, recorded with the results."""

    variant: str
    index: int
    seed: int
    data_seed: int
    noise_seed: int | None  # None: no initial-weight perturbation
    noise_scale: float
    workers: int = 1  # local MultiWorkerMirroredStrategy workers this replica trains on (1: in process)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def plan_replica(variant: str, index: int, sources: tuple[str, ...], base_seed: int,
                 noise_scale: float, workers: int = 1,
                 topology_workers: tuple[int, ...] = DEFAULT_TOPOLOGY_WORKERS) -> ReplicaPlan:
    """Seeds of one replica: a varied source takes base + index, a fixed one stays at base.

    With "topology" the replica trains on ``topology_workers[index % len]`` local workers (otherwise
    on ``workers``); seed, data order and global batch stay those of the other sources.
    """
    return ReplicaPlan(
        variant=variant,
        index=index,
        seed=base_seed + index if "seed" in sources else base_seed,
        data_seed=base_seed + index if "order" in sources else base_seed,
        noise_seed=(base_seed + index) if "noise" in sources else None,
        noise_scale=noise_scale if "noise" in sources else 0.0,
        workers=topology_workers[index % len(topology_workers)] if "topology" in sources else workers,
    )


def parse_workers(text: str) -> tuple[int, ...]:
    """"1,2,4" -> (1, 2, 4): the worker counts of the topology source, each >= 1."""
    try:
        counts = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"--topology_workers must be comma-separated integers, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise ValueError(f"--topology_workers needs worker counts >= 1, got {text!r}")
    return counts


def check_topology(workers: tuple[int, ...], replicas: int, batch_size: int) -> list[str]:
    """Refuse worker counts that do not divide the global batch; warnings for repeated counts.

    Two replicas on the same worker count are bit-identical (same seed, order and batches on a
    deterministic CPU), so their pair has PD exactly 0: a control, but it pulls the variant's PD down.
    """
    used = [workers[i % len(workers)] for i in range(replicas)]
    bad = sorted({w for w in used if batch_size % w})
    if bad:
        raise ValueError(f"the topology source needs data.batch_size={batch_size} divisible by every worker "
                         f"count, and it is not by {bad} (--topology_workers {','.join(map(str, workers))})")
    repeated = sorted({w for w in used if used.count(w) > 1})
    if not repeated:
        return []
    same = sum(1 for i in range(replicas) for j in range(i + 1, replicas) if used[i] == used[j])
    return [f"replicas share worker counts {repeated}: {same} of {replicas * (replicas - 1) // 2} pairs are "
            "bit-identical (PD exactly 0); give --topology_workers at least --replicas distinct counts"]


def replica_config(base: Experiment, variant: str, plan: ReplicaPlan, export_dir: str = "",
                   model_name: str = "", validation_fraction: float | None = None,
                   patience: int | None = None) -> Experiment:
    """The base experiment with this variant's activation everywhere (and its ensemble size as
    model.ensemble) and this replica's seeds.

    With ``export_dir`` the replica is exported as version ``index + 1`` of ``model_name`` there
    (``<export_dir>/<model_name>/<version>``), so a server can serve a variant's replicas side by side.
    ``validation_fraction`` (None: the base config's) holds out that share of train for model selection;
    ``patience`` (None: the base config's) stops each replica early on it (train.early_stopping_patience;
    none without a validation split: the update source trains fixed-length versions).
    """
    activation, ensemble = parse_variant(variant)
    model = dataclasses.replace(base.model, activation=activation, bottom_activation=None,
                                top_activation=None, ensemble=ensemble)
    det = dataclasses.replace(base.determinism, seed=plan.seed, data_seed=plan.data_seed,
                              weight_noise=plan.noise_scale if plan.noise_seed is not None else 0.0,
                              weight_noise_seed=plan.noise_seed or 0)
    data = dataclasses.replace(base.data, validation_fraction=validation_fraction) \
        if validation_fraction is not None else base.data
    patience = base.train.early_stopping_patience if patience is None else patience
    patience = patience if data.validation_fraction else 0
    # Early stopping keeps the best evaluation's checkpoint (the study configs keep none otherwise).
    train = dataclasses.replace(base.train, record_eval_predictions=True, early_stopping_patience=patience,
                                checkpoint=base.train.checkpoint or bool(patience))
    export = dataclasses.replace(base.export, enabled=bool(export_dir), base_dir=export_dir,
                                 model_name=model_name or base.export.model_name,
                                 version=plan.index + 1)
    return dataclasses.replace(base, model=model, determinism=det, export=export, train=train, data=data,
                               name=f"{base.name}/{plan.variant}/replica_{plan.index}")
