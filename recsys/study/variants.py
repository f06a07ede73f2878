"""Study variants (activation specs) and the replica configs that differ only in chosen sources."""

from __future__ import annotations

import dataclasses

from recsys.config.schema import Experiment

SOURCES = ("seed", "order", "noise")
DEFAULT_SOURCES = ("seed", "order")


def split_specs(text: str) -> list[str]:
    """Split "relu,smelu(beta=0.5),gsmelu(alpha=1, beta=2)" on commas outside parentheses, into the
    canonical strings of the activations (``smelu(beta=1)`` and ``smelu(beta=1.0)`` are one variant)."""
    out, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ')' in activation list {text!r}")
        if ch == "," and depth == 0:
            out.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if depth:
        raise ValueError(f"unbalanced '(' in activation list {text!r}")
    out.append("".join(current).strip())
    given = [s for s in out if s]
    if not given:
        raise ValueError("no activations given")
    from recsys.activations import canonical

    specs = [canonical(s) for s in given]
    dups = sorted({c for c in specs if specs.count(c) > 1})
    if dups:
        same = "; ".join(" = ".join(g for g, c in zip(given, specs, strict=True) if c == d) for d in dups)
        raise ValueError(f"the same activation is listed twice: {same}")
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

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def plan_replica(variant: str, index: int, sources: tuple[str, ...], base_seed: int,
                 noise_scale: float) -> ReplicaPlan:
    """Seeds of one replica: a varied source takes base + index, a fixed one stays at base."""
    return ReplicaPlan(
        variant=variant,
        index=index,
        seed=base_seed + index if "seed" in sources else base_seed,
        data_seed=base_seed + index if "order" in sources else base_seed,
        noise_seed=(base_seed + index) if "noise" in sources else None,
        noise_scale=noise_scale if "noise" in sources else 0.0,
    )


def replica_config(base: Experiment, activation: str, plan: ReplicaPlan, export_dir: str = "",
                   model_name: str = "") -> Experiment:
    """The base experiment with this variant's activation everywhere and this replica's seeds.

    With ``export_dir`` the replica is exported as version ``index + 1`` of ``model_name`` there
    (``<export_dir>/<model_name>/<version>``), so a server can serve a variant's replicas side by side.
    """
    model = dataclasses.replace(base.model, activation=activation, bottom_activation=None,
                                top_activation=None)
    det = dataclasses.replace(base.determinism, seed=plan.seed, data_seed=plan.data_seed,
                              weight_noise=plan.noise_scale if plan.noise_seed is not None else 0.0,
                              weight_noise_seed=plan.noise_seed or 0)
    train = dataclasses.replace(base.train, record_eval_predictions=True)
    export = dataclasses.replace(base.export, enabled=bool(export_dir), base_dir=export_dir,
                                 model_name=model_name or base.export.model_name,
                                 version=plan.index + 1)
    return dataclasses.replace(base, model=model, determinism=det, export=export, train=train,
                               name=f"{base.name}/{plan.variant}/replica_{plan.index}")
