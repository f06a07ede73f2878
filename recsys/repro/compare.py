"""Offline model diff of two SavedModel exports (``recsys compare``): weight digests, PD, flip rate, AUC.

Each export is loaded with ``tf.saved_model.load`` (no model code: what TF Serving would serve) and
scored through its ``predict_examples`` signature on the raw eval shards of a feature spec. The
weights digest reads the export's ``model/variables/<i>`` (:func:`recsys.export.saved_model.read_weights`)
with :func:`recsys.repro.digest.weights_digest`, so it equals the trainer's fingerprint.

Relative PD is TFMA's ``SymmetricPredictionDifference`` (mean of 2|p1-p2|/(p1+p2)); it is reported
under both names. The flip rates are TFMA's ``BooleanFlipRates`` with A as the baseline. Top-k churn
groups the eval rows into queries of ``rows_per_query`` consecutive rows, as ``recsys monitor`` sends
them. Every metric comes from its one implementation in :mod:`serving.pd`, :mod:`serving.churn` and
:mod:`recsys.repro.accuracy`; the gate is :class:`serving.gate.Thresholds`. ``lineage`` says whether
one export is the other's warm-start parent, ancestor or distillation teacher, by following the
fingerprints' ``parent`` entries on disk (:func:`recsys.repro.lineage.relation`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import pipelines.feature_spec as feature_spec
from recsys.compat import tf
from recsys.export.saved_model import read_weights
from recsys.repro.accuracy import auc, logloss
from recsys.repro.digest import weights_digest
from recsys.repro.lineage import read_fingerprint, relation
from serving.churn import flip_rates, query_ids_by_request, topk_churn
from serving.gate import Thresholds
from serving.pd import pd_distribution

PERCENTILES = (50.0, 90.0, 99.0, 100.0)


def export_weights_digest(export_dir: str) -> str:
    """The weights digest of a SavedModel written by ``recsys train`` (see the module docstring)."""
    return weights_digest(read_weights(export_dir))


def eval_records(spec: feature_spec.FeatureSpec, max_examples: int = 0) -> tuple[list[bytes], np.ndarray]:
    """Serialized eval tf.Examples (file order) and their labels."""
    files = sorted(tf.io.gfile.glob(spec.path(spec.data.eval_pattern)))
    if not files:
        raise FileNotFoundError(f"no eval shards match {spec.path(spec.data.eval_pattern)!r}")
    ds = tf.data.TFRecordDataset(files, compression_type=spec.data.compression or None)
    if max_examples:
        ds = ds.take(max_examples)
    records = [r.numpy() for r in ds]
    label = {spec.label.name: tf.io.FixedLenFeature([], tf.float32)}
    labels = tf.io.parse_example(tf.constant(records), label)[spec.label.name].numpy() if records else \
        np.zeros([0], np.float32)
    return records, labels


def score(export_dir: str, records: list[bytes], batch_size: int = 4096,
          signature: str = "predict_examples") -> np.ndarray:
    """Probabilities [N] of an export on serialized tf.Examples, through one of its signatures."""
    loaded = tf.saved_model.load(export_dir)
    if signature not in loaded.signatures:
        raise ValueError(f"{export_dir} has no signature {signature!r}; it has {sorted(loaded.signatures)}")
    fn = loaded.signatures[signature]
    out = []
    for i in range(0, len(records), batch_size):
        result = fn(inputs=tf.constant(records[i : i + batch_size]))
        out.append(np.reshape(next(iter(result.values())).numpy(), [-1]))
    return np.concatenate(out) if out else np.zeros([0], np.float32)


def compare(export_a: str, export_b: str, spec_dir: str, thresholds: Thresholds | None = None,
            max_examples: int = 0, require_identical_weights: bool = False, k: int = 10,
            rows_per_query: int = 64) -> dict[str, Any]:
    """The full diff as a JSON-ready dict; ``passed`` and ``violations`` apply the thresholds."""
    thresholds = thresholds or Thresholds()
    spec = feature_spec.load(spec_dir)
    records, labels = eval_records(spec, max_examples)
    models: dict[str, dict[str, Any]] = {}
    preds = {}
    fingerprints = {}
    for key, path in (("a", export_a), ("b", export_b)):
        preds[key] = score(path, records)
        fp = fingerprints[key] = read_fingerprint(path)
        models[key] = {"path": path, "weights_sha256": export_weights_digest(path),
                       "auc": auc(labels, preds[key]), "logloss": logloss(labels, preds[key]),
                       "trained_steps": fp.get("final_step") if fp else None,
                       "resumes": len(fp.get("resumes", [])) if fp else None}
    a, b = preds["a"].astype(np.float64), preds["b"].astype(np.float64)
    dist = pd_distribution(a, b, percentiles=PERCENTILES)
    flips = flip_rates(a, b, thresholds.flip_threshold)
    out: dict[str, Any] = {
        "a": models["a"], "b": models["b"], "examples": len(labels),
        "identical_weights": models["a"]["weights_sha256"] == models["b"]["weights_sha256"],
        "identical_predictions": bool(np.array_equal(preds["a"], preds["b"])),
        "relative_pd": dist.relative_pd,
        "symmetric_prediction_difference": dist.relative_pd,
        "absolute_pd": dist.absolute_pd,
        "relative_pd_percentiles": dist.percentiles,
        "share_above": dist.share_above,
        "flip_rate": flips.flip_rate, "neg_to_pos_flip_rate": flips.neg_to_pos_flip_rate,
        "pos_to_neg_flip_rate": flips.pos_to_neg_flip_rate, "flip_threshold": flips.threshold,
        "topk_churn": topk_churn([a, b], query_ids_by_request(len(a), rows_per_query), k),
        "k": k, "rows_per_query": rows_per_query,
        "auc_delta": models["b"]["auc"] - models["a"]["auc"],
        "lineage": relation(*({"weights_sha256": models[k]["weights_sha256"], "fingerprint": fingerprints[k]}
                              for k in ("a", "b"))),
    }
    violations = []
    if require_identical_weights and not out["identical_weights"]:
        violations.append("weights differ")
    violations += thresholds.crossed(out)
    out["thresholds"] = {**thresholds.as_dict(), "require_identical_weights": require_identical_weights}
    out["violations"] = violations
    out["passed"] = not violations
    return out


def format_report(diff: dict[str, Any]) -> str:
    """A short human-readable report of :func:`compare`'s result."""
    a, b = diff["a"], diff["b"]
    p = diff["relative_pd_percentiles"]
    lines = [
        f"A {a['path']}  weights {a['weights_sha256'][:16]}  AUC {a['auc']:.4f}  logloss {a['logloss']:.4f}",
        f"B {b['path']}  weights {b['weights_sha256'][:16]}  AUC {b['auc']:.4f}  logloss {b['logloss']:.4f}",
        f"weights identical: {'yes' if diff['identical_weights'] else 'no'}; "
        f"predictions identical: {'yes' if diff['identical_predictions'] else 'no'} "
        f"({diff['examples']} eval examples)",
        f"relative PD {diff['relative_pd']:.6g} (p50 {p['p50']:.3g}, p90 {p['p90']:.3g}, p99 {p['p99']:.3g}, "
        f"max {p['p100']:.3g}); absolute PD {diff['absolute_pd']:.6g}; flip rate@{diff['flip_threshold']:g} "
        f"{diff['flip_rate']:.4g}; top-{diff['k']} churn {diff['topk_churn']:.4g}; "
        f"AUC B-A {diff['auc_delta']:+.4f}",
        f"lineage: {diff['lineage']['line']}",
        "gate: " + ("passed" if diff["passed"] else "FAILED: " + "; ".join(diff["violations"])),
    ]
    return "\n".join(lines)
