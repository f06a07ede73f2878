"""Hand-rolled tf.Example wire encoding and a gzip TFRecord writer (no TensorFlow import).

Building ``example_pb2`` messages costs tens of microseconds a row; a tf.Example is a map of small
length-delimited fields, so each (feature, raw value) encodes once to bytes, is cached, and a row is
one ``b"".join``. The tests parse the output with ``tf.train.Example`` to prove the bytes are right.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Sequence

import google_crc32c

_TABLE_SIZE = 1 << 16
_LEN_PREFIX: list[bytes] = []


def varint(n: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _ld(tag: int, payload: bytes) -> bytes:
    """A length-delimited field: tag byte, varint length, payload."""
    return bytes((tag,)) + varint(len(payload)) + payload


def _map_field(name: bytes, feature: bytes) -> bytes:
    """One ``Features.feature`` map entry wrapped as field 1 of ``Features``."""
    return _ld(0x0A, _ld(0x0A, name) + _ld(0x12, feature))


def float_field(name: bytes, value: float) -> bytes:
    """Encoded entry for ``name -> float_list [value]``."""
    return _map_field(name, _ld(0x12, _ld(0x0A, struct.pack("<f", value))))


def bytes_field(name: bytes, values: Sequence[bytes]) -> bytes:
    """Encoded entry for ``name -> bytes_list values`` (an empty list is kept, as an empty list)."""
    return _map_field(name, _ld(0x0A, b"".join(_ld(0x0A, v) for v in values)))


def _prefix_table() -> list[bytes]:
    if not _LEN_PREFIX:
        _LEN_PREFIX.extend(b"\n" + varint(i) for i in range(_TABLE_SIZE))
    return _LEN_PREFIX


def examples_from_fields(columns: Sequence[Sequence[bytes]]) -> list[bytes]:
    """Serialised tf.Examples, one per row, from per-feature columns of encoded entries."""
    table = _prefix_table()
    bodies = [b"".join(row) for row in zip(*columns, strict=True)]
    return [(table[m] if (m := len(b)) < _TABLE_SIZE else b"\n" + varint(m)) + b for b in bodies]


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


_PACK_LEN = struct.Struct("<Q").pack
_PACK_CRC = struct.Struct("<I").pack
_HEADS: dict[int, bytes] = {}  # record length -> its framed length and masked crc (lengths repeat)


def tfrecord_frames(records: Iterable[bytes]) -> bytes:
    """TFRecord framing: u64 length, masked crc32c(length), data, masked crc32c(data)."""
    parts: list[bytes] = []
    add = parts.extend
    crc32c = google_crc32c.value
    for r in records:
        head = _HEADS.get(len(r))
        if head is None:
            n = _PACK_LEN(len(r))
            head = n + _PACK_CRC(_masked_crc(n))
            if len(_HEADS) < _TABLE_SIZE:
                _HEADS[len(r)] = head
        crc = crc32c(r)
        add((head, r, _PACK_CRC((((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)))
    return b"".join(parts)


class GzipTFRecordWriter:
    """Writes TFRecords into one gzip file through Beam's FileSystems (local, gs://, hdfs://...)."""

    def __init__(self, path: str, level: int = 1):
        from apache_beam.io.filesystem import CompressionTypes
        from apache_beam.io.filesystems import FileSystems

        self.path = path
        self.count = 0
        self._fh = FileSystems.create(
            path, mime_type="application/octet-stream", compression_type=CompressionTypes.UNCOMPRESSED
        )
        self._z = zlib.compressobj(level, zlib.DEFLATED, 31)

    def write(self, records: Sequence[bytes]) -> None:
        if records:
            self._fh.write(self._z.compress(tfrecord_frames(records)))
            self.count += len(records)

    def close(self) -> None:
        self._fh.write(self._z.flush())
        self._fh.close()
