"""Row readers and conversion used by ``recsys query`` and ``recsys monitor`` (no server needed)."""

from __future__ import annotations

import numpy as np
import pytest
from tensorflow.core.framework import types_pb2

from serving.tools import client


def test_read_rows_formats_and_conversion(tmp_path):
    criteo = tmp_path / "day.txt"
    ints = "\t".join(["3", ""] + ["1"] * 11)
    cats = "\t".join(["68fd1e64", ""] + ["x"] * 24)
    criteo.write_text(f"1\t{ints}\t{cats}\n{ints}\t{cats}\n")  # with and without the label column
    rows = list(client.read_rows(str(criteo)))
    assert rows[0]["label"] == "1" and "label" not in rows[1]
    assert rows[0]["I1"] == rows[1]["I1"] == "3" and rows[0]["C1"] == "68fd1e64"
    specs = {
        "I1": client.InputSpec("I1", types_pb2.DT_FLOAT, (-1,)),
        "I2": client.InputSpec("I2", types_pb2.DT_FLOAT, (-1,)),
        "C2": client.InputSpec("C2", types_pb2.DT_STRING, (-1,)),
        "n": client.InputSpec("n", types_pb2.DT_INT64, (-1,)),
    }
    inputs = client.rows_to_inputs(rows, specs)
    assert inputs["I1"].dtype == np.float32 and inputs["I1"].tolist() == [3.0, 3.0]
    assert np.isnan(inputs["I2"]).all()  # empty field = missing numeric
    assert inputs["C2"].tolist() == [b"", b""] and inputs["n"].tolist() == [0, 0]

    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("cat,x1\na,1.5\nb,\n")
    assert list(client.read_rows(str(csv_path))) == [{"cat": "a", "x1": "1.5"}, {"cat": "b", "x1": ""}]
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text('{"cat": "a", "x1": 2}\n\n{"cat": "b"}\n')
    assert list(client.read_rows(str(jsonl))) == [{"cat": "a", "x1": 2}, {"cat": "b"}]
    bad = tmp_path / "bad.txt"
    bad.write_text("1\t2\t3\n")
    with pytest.raises(ValueError, match="39 or 40"):
        list(client.read_rows(str(bad)))


def test_replica_parsing():
    r = client.Replica.parse("10.0.0.1:8500/ranker:stable", "serving_default")
    assert (r.address, r.spec.name, r.spec.version_label, r.rest) == (
        "10.0.0.1:8500",
        "ranker",
        "stable",
        False,
    )
    r = client.Replica.parse("http://h:8501/ranker@7")
    assert (r.address, r.spec.version.value, r.rest, r.label) == ("h:8501", 7, True, "h:8501/ranker@7")
    with pytest.raises(ValueError):
        client.Replica.parse("no-model-here")
