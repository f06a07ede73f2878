"""LineBatches, the streaming chunk reader, gives exactly the batches of reading the whole chunk at once."""

from __future__ import annotations

import gzip
import random

import pytest

from pipelines.chunks import Chunk, LineBatches, batches, plan_chunks, read_chunk, split_lines

PIECES = (b"", b" ", b"\r", b"abc", b"h\tq", b"x" * 17, b"y" * 40)


def _whole(chunk: Chunk, size: int) -> tuple[list[tuple[int, list[bytes]]], int, int]:
    """The reference: the batches, the line count and the header flag of the chunk read at once."""
    lines = split_lines(read_chunk(chunk), file_end=chunk.file_end)
    first = 1 if (chunk.skip_header and lines) else 0
    return list(batches(lines[first:], size)), len(lines), first


def _chunks(path: str, size: int, chunk_bytes: int, header: bool) -> list[Chunk]:
    out = []
    for start in range(0, max(size, 1), chunk_bytes):
        end = min(start + chunk_bytes, size)
        out.append(Chunk(len(out), path, start, end, header and start == 0, end == size))
    return out


@pytest.mark.parametrize("header", [False, True])
def test_same_batches_as_reading_the_whole_chunk(tmp_path, header):
    rng = random.Random(7)
    checked = 0
    for trial in range(60):
        body = b"\n".join(rng.choice(PIECES) for _ in range(rng.randint(0, 40)))
        data = body + rng.choice([b"", b"\n", b"\n\n", b" \n", b"\n \r\n"])
        path = tmp_path / f"f{trial}.tsv"
        path.write_bytes(data)
        for chunk_bytes in (11, 64, 1 << 20):
            for chunk in _chunks(str(path), len(data), chunk_bytes, header):
                want, lines, first = _whole(chunk, 4)
                for block in (1, 5, 4096):
                    stream = LineBatches(chunk, 4, block)
                    assert list(stream) == want, (data, chunk, block)
                    assert (stream.lines, stream.first) == (lines, first), (data, chunk, block)
                    checked += 1
    assert checked > 1000


def test_a_compressed_file_streams_whole(tmp_path):
    path = tmp_path / "rows.tsv.gz"
    rows = [b"%d\tv%d" % (i, i % 7) for i in range(2500)]
    path.write_bytes(gzip.compress(b"\n".join(rows) + b"\n\n"))
    (chunk,) = plan_chunks([(str(path), path.stat().st_size)], 1 << 20, header=False)
    stream = LineBatches(chunk, 1000, block_bytes=333)
    got = list(stream)
    assert [offset for offset, _ in got] == [0, 1000, 2000]
    assert [line for _, batch in got for line in batch] == rows
    assert stream.lines == 2500 and stream.first == 0
