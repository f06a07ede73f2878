"""Write a small synthetic click dataset straight in the feature-spec format (shards + vocabularies + spec).

The label has a learnable signal (a logistic model of per-value category weights and numeric
features), so a trained model must beat AUC 0.5 by a known margin. Used by tests and benchmarks so
they do not depend on a Beam run; the shards are encoded by the pipeline's own
:mod:`pipelines.example_codec`, so they are the bytes the pipeline would write for the same rows.
Raw Criteo-layout TSV for the pipeline itself comes from :mod:`pipelines.sources.synthetic`.
"""

from __future__ import annotations

import gzip
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines import example_codec
from pipelines.feature_spec import (
    Counts,
    DataFiles,
    Feature,
    FeatureSpec,
    Kind,
    Label,
    NumericStats,
    NumericTransform,
)


@dataclass(frozen=True)
class SyntheticLayout:
    """Shape of the synthetic data: Criteo-like by default (13 numeric, 26 categorical)."""

    num_numeric: int = 13
    num_categorical: int = 26
    num_multi: int = 0
    cardinality: int = 200  # distinct values of each categorical feature
    hash_every: int = 3  # every n-th categorical feature is hashed instead of looked up
    missing_rate: float = 0.05
    signal: float = 0.5  # std of the per-value logit weights


def _rows(n: int, layout: SyntheticLayout, rng: np.random.Generator, weights: dict) -> dict:
    cols: dict[str, np.ndarray] = {}
    logit = np.full(n, -1.0)
    for i in range(layout.num_numeric):
        x = rng.lognormal(mean=1.0, sigma=1.0, size=n).round(1)
        logit += weights[f"I{i + 1}"] * (np.log1p(x) - 1.3)
        x[rng.random(n) < layout.missing_rate] = np.nan
        cols[f"I{i + 1}"] = x
    for j in range(layout.num_categorical):
        name = f"C{j + 1}"
        v = np.minimum(rng.zipf(1.3, size=n) - 1, layout.cardinality - 1)
        logit += weights[name][v]
        cols[name] = np.array([f"{name}v{k}" for k in v], dtype=object)
        cols[name][rng.random(n) < layout.missing_rate] = None
    for m in range(layout.num_multi):
        name = f"M{m + 1}"
        lengths = rng.integers(0, 5, size=n)
        vals = [rng.integers(0, layout.cardinality, size=k) for k in lengths]
        logit += np.array([weights[name][v].mean() if len(v) else 0.0 for v in vals])
        col = np.empty(n, dtype=object)
        for i, v in enumerate(vals):
            col[i] = [f"{name}v{k}" for k in v]
        cols[name] = col
    cols["label"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return cols


def _fields(name: str, col: np.ndarray) -> list[bytes]:
    """One column as encoded tf.Example entries (b"" for a missing value, as the spec says: absent)."""
    key = name.encode()
    if name == "label" or col.dtype != object:
        return [b"" if np.isnan(v) else example_codec.float_field(key, float(v)) for v in col]
    if any(isinstance(v, list) for v in col):
        return [example_codec.bytes_field(key, [s.encode() for s in v]) for v in col]
    return [b"" if v is None else example_codec.bytes_field(key, [v.encode()]) for v in col]


def _write_shards(cols: dict, directory: str, num_shards: int) -> None:
    """Row i goes to shard i % num_shards, named as the pipeline names its shards."""
    os.makedirs(directory, exist_ok=True)
    for s in range(num_shards):
        fields = [_fields(name, col[s::num_shards]) for name, col in cols.items()]
        path = os.path.join(directory, f"part-{s:05d}-of-{num_shards:05d}.tfrecord.gz")
        with open(path, "wb") as fh:
            fh.write(gzip.compress(example_codec.tfrecord_frames(example_codec.examples_from_fields(fields)),
                                   compresslevel=1))


def write_synthetic(
    directory: str,
    num_train: int = 4000,
    num_eval: int = 1000,
    layout: SyntheticLayout = SyntheticLayout(),
    num_train_shards: int = 4,
    num_eval_shards: int = 1,
    seed: int = 0,
) -> FeatureSpec:
    """Write ``train/``, ``eval/``, ``vocab/`` and ``feature_spec.json`` under ``directory``."""
    rng = np.random.default_rng(seed)
    weights: dict = {f"I{i + 1}": rng.normal(0, 0.3) for i in range(layout.num_numeric)}
    for j in range(layout.num_categorical):
        weights[f"C{j + 1}"] = rng.normal(0, layout.signal, size=layout.cardinality)
    for m in range(layout.num_multi):
        weights[f"M{m + 1}"] = rng.normal(0, 2 * layout.signal, size=layout.cardinality)
    train = _rows(num_train, layout, rng, weights)
    evals = _rows(num_eval, layout, rng, weights)
    _write_shards(train, os.path.join(directory, "train"), num_train_shards)
    _write_shards(evals, os.path.join(directory, "eval"), num_eval_shards)

    features = []
    for i in range(layout.num_numeric):
        name = f"I{i + 1}"
        x = train[name]
        t = np.log1p(np.maximum(x[~np.isnan(x)], 0.0))
        features.append(
            Feature(
                name=name,
                kind="numeric",
                dtype="float32",
                default=0.0,
                transform=NumericTransform(clip_min=0.0, log1p=True),
                stats=NumericStats(
                    mean=float(t.mean()),
                    variance=float(t.var()),
                    count=int(t.size),
                    missing=int(np.isnan(x).sum()),
                    min=float(t.min()),
                    max=float(t.max()),
                ),
            )
        )
    os.makedirs(os.path.join(directory, "vocab"), exist_ok=True)
    names: list[tuple[str, Kind]] = [(f"C{j + 1}", "categorical") for j in range(layout.num_categorical)]
    names += [(f"M{m + 1}", "multi_categorical") for m in range(layout.num_multi)]
    for k, (name, kind) in enumerate(names):
        values = train[name]
        flat = (
            [v for row in values for v in row]
            if kind == "multi_categorical"
            else [v for v in values if v is not None]
        )
        counts = Counter(flat)
        common: dict[str, Any] = (
            dict(separator=",", max_values=max((len(r) for r in values), default=0))
            if kind == "multi_categorical"
            else {}
        )
        if layout.hash_every and k % layout.hash_every == layout.hash_every - 1:
            features.append(
                Feature(
                    name=name,
                    kind=kind,
                    dtype="string",
                    encoding="hash",
                    hash_buckets=2 * layout.cardinality,
                    cardinality=len(counts),
                    **common,
                )
            )
            continue
        vocab = [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        rel = f"vocab/{name}.txt"
        with open(os.path.join(directory, rel), "w", encoding="utf-8") as fh:
            fh.writelines(v + "\n" for v in vocab)
        features.append(
            Feature(
                name=name,
                kind=kind,
                dtype="string",
                encoding="vocabulary",
                vocabulary_file=rel,
                vocabulary_size=len(vocab),
                num_oov_buckets=2,
                cardinality=len(counts),
                **common,
            )
        )
    spec = FeatureSpec(
        dataset="synthetic",
        label=Label(name="label", rule="Bernoulli(sigmoid(logit))"),
        features=tuple(features),
        data=DataFiles(num_train_shards=num_train_shards, num_eval_shards=num_eval_shards),
        counts=Counts(read=num_train + num_eval, written_train=num_train, written_eval=num_eval),
        root=os.path.abspath(directory),
    )
    spec.save(directory)
    return spec
