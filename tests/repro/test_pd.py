"""PD golden numbers on hand-made predictions (the one implementation: serving.pd), edge cases, slices,
TensorBoard tags."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.compat import tf
from recsys.repro import summaries
from recsys.repro.slices import pd_by_prediction_bucket, pd_by_slice
from serving import pd

P1 = [0.1, 0.2, 0.5, 0.0]
P2 = [0.3, 0.2, 0.25, 0.0]


def test_two_model_golden_numbers():
    assert pd.absolute_pd(P1, P2) == pytest.approx(0.45 / 4)
    # 0.2/0.2 = 1, 0, 0.25/0.375 = 2/3, both zero -> 0
    assert pd.relative_pd(P1, P2) == pytest.approx((1 + 2 / 3) / 4)
    np.testing.assert_allclose(pd.per_example_relative_difference(P1, P2), [1, 0, 2 / 3, 0])
    d = pd.pd_distribution(P1, P2, percentiles=(50, 100), threshold=0.5)
    assert d.percentiles == {"p50": pytest.approx(1 / 3), "p100": pytest.approx(1.0)}
    assert d.share_above == pytest.approx(0.5) and d.count == 4
    # The percentiles compare reports: sorted [0, 0, 2/3, 1], p90 = 2/3 + 0.7 * (1 - 2/3) = 0.9.
    q = pd.pd_distribution(P1, P2, percentiles=(50, 90, 99, 100)).percentiles
    assert q == {"p50": pytest.approx(1 / 3), "p90": pytest.approx(0.9), "p99": pytest.approx(0.99),
                 "p100": pytest.approx(1.0)}


def test_identical_predictions_have_zero_pd_and_one_zero_gives_two():
    p = np.array([0.0, 0.3, 1e-12])
    assert pd.relative_pd(p, p) == 0.0 and pd.absolute_pd(p, p) == 0.0
    assert pd.relative_pd([0.0], [0.4]) == pytest.approx(2.0)


def test_pairwise_over_three_replicas():
    s = pd.pairwise_pd([[0.1, 0.2], [0.2, 0.2], [0.1, 0.4]], percentiles=(50,))
    assert s.num_replicas == 3 and s.pairs == ((0, 1), (0, 2), (1, 2))
    np.testing.assert_allclose(s.relative.values, [1 / 3, 1 / 3, 2 / 3])
    np.testing.assert_allclose(s.absolute.values, [0.05, 0.1, 0.15])
    assert s.relative.mean == pytest.approx(4 / 9)
    assert s.relative.min == pytest.approx(1 / 3) and s.relative.max == pytest.approx(2 / 3)
    assert s.relative.std == pytest.approx(np.std([1 / 3, 1 / 3, 2 / 3]))
    assert set(s.as_dict()) >= {"relative", "absolute", "per_pair"}


@pytest.mark.parametrize(
    "preds, message",
    [
        ([[0.1, 0.2]], "at least 2 replicas"),
        ([[], []], "empty set of examples"),
        ([[0.1], [0.1, 0.2]], "same number of examples"),
        ([[0.1, np.nan], [0.1, 0.2]], "NaN or inf"),
        ([[-0.1, 0.2], [0.1, 0.2]], "non-negative"),
    ],
)
def test_bad_inputs_raise_clear_errors(preds, message):
    with pytest.raises(ValueError, match=message):
        pd.pairwise_pd(preds)


def test_pd_by_slice_and_bucket():
    a = [0.1, 0.2, 0.5, 0.6, 0.02]
    b = [0.3, 0.2, 0.5, 0.3, 0.02]
    rows = pd_by_slice([a, b], ["x", "y", "x", "y", "z"], min_count=2)
    by = {r["slice"]: r for r in rows}
    assert [r["slice"] for r in rows] == ["x", "y", "z"]  # most frequent first, then by name
    assert by["x"]["relative_pd"] == pytest.approx((1.0 + 0.0) / 2)
    assert by["y"]["absolute_pd"] == pytest.approx(0.15)
    assert by["z"]["count"] == 1 and by["z"]["relative_pd"] is None  # below min_count
    buckets = pd_by_prediction_bucket([a, b], edges=(0.0, 0.1, 0.5, 1.0))
    # Mean predictions 0.2, 0.2, 0.5, 0.45, 0.02.
    assert [b_["count"] for b_ in buckets] == [1, 3, 1]
    assert buckets[0]["relative_pd"] == 0.0
    assert buckets[1]["relative_pd"] == pytest.approx((1.0 + 0.0 + 0.3 / 0.45) / 3)
    assert buckets[1]["absolute_pd"] == pytest.approx((0.2 + 0.0 + 0.3) / 3)
    empty = pd_by_prediction_bucket([a, b], edges=(0.0, 0.01, 1.0))
    assert empty[0] == {"bucket": "[0, 0.01)", "count": 0, "relative_pd": None, "absolute_pd": None}
    with pytest.raises(ValueError, match="increasing"):
        pd_by_prediction_bucket([a, b], edges=(0.5, 0.1))


def test_pd_summaries_are_real_event_files_with_layout(tmp_path):
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.custom_scalar import metadata as cs_metadata

    writer = tf.summary.create_file_writer(str(tmp_path / "pd"))
    for step, preds in enumerate([[[0.1, 0.2], [0.2, 0.2], [0.1, 0.4]], [[0.1, 0.2]] * 3]):
        summaries.write_pd(writer, "smelu(beta=0.5)", step, pd.pairwise_pd(preds))
    summaries.write_layout(str(tmp_path), ["relu", "smelu(beta=0.5)"])
    acc = event_accumulator.EventAccumulator(str(tmp_path / "pd"), size_guidance={"tensors": 0})
    acc.Reload()
    values = [tf.make_ndarray(e.tensor_proto).item() for e in acc.Tensors("pd/smelu_beta_0.5/relative")]
    assert values == [pytest.approx(4 / 9), 0.0]
    assert "pd/smelu_beta_0.5/relative_max" in acc.Tags()["tensors"]
    layout_acc = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    layout_acc.Reload()
    assert cs_metadata.CONFIG_SUMMARY_TAG in layout_acc.Tags()["tensors"]
    layout = summaries.layout(["relu", "smelu(beta=0.5)"])
    titles = [c.title for c in layout.category[0].chart]
    assert "smelu(beta=0.5): relative PD spread across replica pairs" in titles
    margin = layout.category[0].chart[4].margin.series[0]
    assert (margin.value, margin.lower) == ("pd/smelu_beta_0.5/relative", "pd/smelu_beta_0.5/relative_min")
