"""The columnar copy without TensorFlow: FarmHash Fingerprint64 as TensorFlow computes it, and chunk
records byte-identical to protobuf's deterministic serialization of the same tf.Example."""

from __future__ import annotations

import math
import random
import struct

import numpy as np
import pytest

from pipelines import columnar, farmhash
from pipelines import feature_spec as fs
from pipelines.columnar_chunk import NAN32, Columns, encode_chunk, packed_varints


def _rows(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    lengths = list(range(0, 300)) + [rng.randrange(300, 3000) for _ in range(100)]
    return [bytes(rng.getrandbits(8) for _ in range(n)) for n in lengths]


@pytest.mark.parametrize("buckets", [(1 << 63) - 1, 1 << 30, 7])
def test_fingerprint64_is_tensorflows_hash_bucket_for_every_length(buckets):
    from recsys.compat import tf

    rows = _rows(buckets % 97)  # every length class of farmhash: 0-16, 17-32, 33-64, longer
    want = tf.strings.to_hash_bucket_fast(tf.constant(rows), buckets).numpy()
    np.testing.assert_array_equal(farmhash.hash_buckets(rows, buckets), want)


def test_packed_varints_are_protobufs():
    from recsys.compat import tf

    values = [0, 1, 127, 128, 300, 16383, 16384, (1 << 62) + 5, (1 << 63) - 1, -1, -(1 << 40)]
    msg = tf.train.Int64List(value=values).SerializeToString()
    assert msg == b"\x0a" + bytes([len(packed_varints(np.asarray(values)))]) + packed_varints(
        np.asarray(values))


def _spec() -> fs.FeatureSpec:
    return fs.FeatureSpec(dataset="t", label=fs.Label(name="label"), features=(
        fs.Feature(name="I1", kind="numeric", dtype="float32"),
        fs.Feature(name="I10", kind="numeric", dtype="float32"),
        fs.Feature(name="C1", kind="categorical", dtype="string"),
        fs.Feature(name="C10", kind="categorical", dtype="string"),
        fs.Feature(name="tags", kind="multi_categorical", dtype="string"),
    ))


def test_a_chunk_is_protobufs_deterministic_serialization():
    """Keys sorted as protobuf sorts them ("C10" before "C1"), NaN and empty values, a value of 200
    bytes (a two-byte length), a multi-valued row with no value."""
    from recsys.compat import tf

    records = [b"row-%d" % i * (i + 1) for i in range(5)]
    floats = [1.5, math.nan, -0.0, 3e38, 0.1]
    cols = Columns(
        records,
        {"label": [struct.pack("<f", v) for v in (0, 1, 1, 0, 1)],
         "I1": [struct.pack("<f", v) if v == v else NAN32 for v in floats],
         "I10": [struct.pack("<f", 2.0)] * 5},
        {"C1": [b"a", b"", b"x" * 200, b"b", b"\xc3\xa9"], "C10": [b"z"] * 5},
        {"tags": [(b"a", b"b"), (), (b"c",), (), (b"d", b"e", b"f")]},
    )
    got = encode_chunk(cols, columnar.ROWS, columnar.EXAMPLE_ID, columnar.HOLDOUT_BUCKET,
                       columnar.ID_BUCKETS, columnar.HOLDOUT_BUCKETS, columnar.ROW_LENGTHS)
    ex = tf.train.Example()
    f = ex.features.feature
    f[columnar.ROWS].int64_list.value.append(5)
    serialized = tf.constant(records)
    f[columnar.EXAMPLE_ID].int64_list.value.extend(
        tf.strings.to_hash_bucket_fast(serialized, columnar.ID_BUCKETS).numpy().tolist())
    f[columnar.HOLDOUT_BUCKET].int64_list.value.extend(
        tf.strings.to_hash_bucket_fast(serialized, columnar.HOLDOUT_BUCKETS).numpy().tolist())
    f["label"].float_list.value.extend([0, 1, 1, 0, 1])
    f["I1"].float_list.value.extend(floats)
    f["I10"].float_list.value.extend([2.0] * 5)
    f["C1"].bytes_list.value.extend(cols.strings["C1"])
    f["C10"].bytes_list.value.extend(cols.strings["C10"])
    f["tags"].bytes_list.value.extend([b"a", b"b", b"c", b"d", b"e", b"f"])
    f["tags" + columnar.ROW_LENGTHS].int64_list.value.extend([2, 0, 1, 0, 3])
    assert got == ex.SerializeToString(deterministic=True)


def test_the_processors_columns_and_a_reparse_write_the_same_shard(tmp_path):
    """Rows handed over as parsed columns (the pipeline) and as serialized tf.Examples (converting an
    old output) give the same bytes, chunk boundaries across writes included."""
    from pipelines import example_codec

    spec = _spec()
    rng = random.Random(3)
    fields, cols = [], Columns()
    for i in range(250):
        label = float(i % 2)
        value = rng.choice([None, 0.25, -3.0, 1e6 + i])
        c1 = rng.choice([b"", b"a", b"bb", b"c" * 150])
        tags = tuple(rng.sample([b"p", b"q", b"r"], rng.randrange(0, 3)))
        parts = [example_codec.float_field(b"label", label),
                 b"" if value is None else example_codec.float_field(b"I1", value),
                 example_codec.float_field(b"I10", 2.0),
                 b"" if not c1 else example_codec.bytes_field(b"C1", (c1,)),
                 example_codec.bytes_field(b"C10", (b"k%d" % (i % 9),)),
                 example_codec.bytes_field(b"tags", tags)]
        fields.append(parts)
        record = example_codec.examples_from_fields([[p] for p in parts])[0]
        cols.extend(Columns([record], {"label": [struct.pack("<f", label)],
                                       "I1": [NAN32 if value is None else struct.pack("<f", value)],
                                       "I10": [struct.pack("<f", 2.0)]},
                            {"C1": [c1], "C10": [b"k%d" % (i % 9)]}, {"tags": [tags]}))
    a, b = columnar.ColumnarWriter(str(tmp_path / "a"), spec, 64), columnar.ColumnarWriter(
        str(tmp_path / "b"), spec, 64)
    for lo, hi in ((0, 10), (10, 100), (100, 250)):
        a.write_columns(cols.select([lo <= i < hi for i in range(250)]))
        b.write(cols.records[lo:hi])
    a.close()
    b.close()
    assert a.rows == b.rows == 250 and a.chunks == 4
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
