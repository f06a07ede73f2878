"""The hand-rolled tf.Example / TFRecord bytes are what TensorFlow itself reads."""

from __future__ import annotations

import numpy as np

from pipelines import example_codec as codec
from recsys.compat import tf


def test_varint_matches_protobuf_encoding():
    assert codec.varint(0) == b"\x00"
    assert codec.varint(127) == b"\x7f"
    assert codec.varint(128) == b"\x80\x01"
    assert codec.varint(300) == b"\xac\x02"
    assert codec.varint(2**32) == b"\x80\x80\x80\x80\x10"


def test_examples_parse_with_tf_train_example():
    fields = [
        [codec.float_field(b"label", 1.0), codec.float_field(b"label", 0.0)],
        [codec.float_field(b"x", 2.5), b""],  # second row: x missing
        [codec.bytes_field(b"c", (b"abc",)), codec.bytes_field(b"c", ("é".encode(),))],
        [codec.bytes_field(b"m", (b"a", b"b")), codec.bytes_field(b"m", ())],
    ]
    ours = codec.examples_from_fields(fields)
    first = tf.train.Example.FromString(ours[0])
    assert first.features.feature["label"].float_list.value == [1.0]
    assert first.features.feature["x"].float_list.value == [2.5]
    assert first.features.feature["c"].bytes_list.value == [b"abc"]
    assert first.features.feature["m"].bytes_list.value == [b"a", b"b"]
    second = tf.train.Example.FromString(ours[1])
    assert "x" not in second.features.feature
    assert second.features.feature["c"].bytes_list.value == ["é".encode()]
    assert second.features.feature["m"].HasField("bytes_list")
    assert list(second.features.feature["m"].bytes_list.value) == []
    # Byte-identical to protobuf's own serialisation of the same message (same field order).
    expected = tf.train.Example()
    for name, val in (("label", 1.0), ("x", 2.5)):
        expected.features.feature[name].float_list.value.append(val)
    expected.features.feature["c"].bytes_list.value.append(b"abc")
    expected.features.feature["m"].bytes_list.value.extend([b"a", b"b"])
    assert tf.train.Example.FromString(ours[0]) == expected


def test_long_example_uses_multibyte_length():
    big = b"v" * 70_000  # longer than the prefix table
    (ex,) = codec.examples_from_fields([[codec.bytes_field(b"big", (big,))]])
    assert tf.train.Example.FromString(ex).features.feature["big"].bytes_list.value == [big]


def test_gzip_tfrecords_read_back_with_tf_data(tmp_path):
    path = str(tmp_path / "part-00000.tfrecord.gz")
    w = codec.GzipTFRecordWriter(path, level=1)
    records = [bytes(np.random.default_rng(i).integers(0, 256, i * 37, dtype=np.uint8)) for i in range(50)]
    w.write(records[:20])
    w.write([])
    w.write(records[20:])
    w.close()
    assert w.count == 50
    got = [r.numpy() for r in tf.data.TFRecordDataset([path], compression_type="GZIP")]
    assert got == records


def test_empty_shard_is_a_valid_empty_file(tmp_path):
    path = str(tmp_path / "empty.tfrecord.gz")
    w = codec.GzipTFRecordWriter(path)
    w.close()
    assert list(tf.data.TFRecordDataset([path], compression_type="GZIP")) == []
