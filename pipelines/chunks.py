"""Byte-range chunks of input files: the unit of parallel work, read as batches of lines.

A line belongs to the chunk holding its first byte, so chunks can be planned from file sizes alone
(no pass over the data on the launcher). Each chunk reports how many lines it holds; absolute line
numbers of dead-lettered rows are resolved afterwards from those counts.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from dataclasses import dataclass

COMPRESSED_SUFFIXES = (".gz", ".gzip", ".bz2", ".zst", ".deflate")


@dataclass(frozen=True)
class Chunk:
    """One unit of work: ``[start, end)`` of ``path`` (end -1 = whole file) or a synthetic range."""

    index: int  # global shard index
    path: str
    start: int
    end: int
    skip_header: bool = False  # first line of the file is a header (chunk with start 0 only)
    file_end: bool = True  # the chunk ends where its file ends (blank lines there are not rows)
    # Where the file lies in all the inputs laid end to end (bytes): its offset, its size, and the
    # inputs' total size. Row-order time windows (pipelines/windows.py) place a row by its byte there.
    base: int = 0
    size: int = 0
    total: int = 0


def expand_inputs(patterns: list[str]) -> list[tuple[str, int]]:
    """Resolve file patterns (local or remote) to sorted (path, size); error if nothing matches."""
    from apache_beam.io.filesystems import FileSystems

    found: dict[str, int] = {}
    for pattern in patterns:
        if os.path.isdir(pattern):
            raise IsADirectoryError(
                f"input {pattern!r} is a directory; pass files or a glob such as "
                f"'{pattern.rstrip('/')}/*.tsv'"
            )
        result = FileSystems.match([pattern])[0]
        if not result.metadata_list:
            raise FileNotFoundError(f"input not found: {pattern!r} matches no file")
        for m in result.metadata_list:
            found[m.path] = m.size_in_bytes
    return sorted(found.items())


def plan_chunks(files: list[tuple[str, int]], chunk_bytes: int, header: bool) -> list[Chunk]:
    """Split files into byte ranges of about ``chunk_bytes`` (compressed files stay whole)."""
    chunks: list[Chunk] = []
    total = sum(size for _, size in files)
    base = 0
    for path, size in files:
        if path.endswith(COMPRESSED_SUFFIXES) or size <= chunk_bytes:
            chunks.append(Chunk(len(chunks), path, 0, -1, header, base=base, size=size, total=total))
        else:
            for start in range(0, size, chunk_bytes):
                end = min(start + chunk_bytes, size)
                chunks.append(Chunk(len(chunks), path, start, end, header and start == 0, end == size,
                                    base=base, size=size, total=total))
        base += size
    return chunks


def read_chunk(chunk: Chunk) -> bytes:
    """Bytes of the whole lines that start inside the chunk (header included if any)."""
    return read_chunk_at(chunk)[1]


def _first_line(fh, start: int) -> int:
    """Seek ``fh`` to the first line starting at or after byte ``start`` and return its offset: the line
    in progress at ``start`` belongs to the previous chunk."""
    if start <= 0:
        return 0
    fh.seek(start - 1)
    if fh.read(1) == b"\n":
        return start
    fh.readline()
    return fh.tell()


def read_chunk_at(chunk: Chunk) -> tuple[int, bytes]:
    """(offset in the file of the first byte returned, :func:`read_chunk`'s bytes); the offset is 0 for
    a whole file (compressed files: offsets count decompressed bytes)."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    if chunk.end < 0:
        with FileSystems.open(chunk.path, compression_type=CompressionTypes.AUTO) as fh:
            return 0, fh.read()
    with FileSystems.open(chunk.path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        begin = _first_line(fh, chunk.start)
        if begin >= chunk.end:
            return begin, b""
        data = fh.read(chunk.end - begin)
        if data and not data.endswith(b"\n"):
            data += fh.readline()  # finish the last line that starts in this chunk
        return begin, data


def read_blocks(chunk: Chunk, block_bytes: int = 4 << 20) -> Iterator[bytes]:
    """:func:`read_chunk`'s bytes in blocks of about ``block_bytes`` (their concatenation is the same),
    so a worker never holds a whole chunk: the first block starts at ``chunk_begin(...)``."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    if chunk.end < 0:
        with FileSystems.open(chunk.path, compression_type=CompressionTypes.AUTO) as fh:
            while block := fh.read(block_bytes):
                yield block
        return
    with FileSystems.open(chunk.path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        begin = _first_line(fh, chunk.start)
        left, last = chunk.end - begin, b""
        while left > 0:
            block = fh.read(min(block_bytes, left))
            if not block:
                break
            left -= len(block)
            last = block
            yield block
        if last and not last.endswith(b"\n"):
            yield fh.readline()  # finish the last line that starts in this chunk


class LineBatches:
    """A chunk's lines as :func:`batches` of ``size`` lines (the header, if any, skipped), read a block
    at a time: the same batches as ``batches(split_lines(read_chunk(chunk), chunk.file_end)[first:])``
    without holding the chunk's bytes or all its lines. ``lines`` counts them (header included) and
    ``bytes`` the bytes read so far (for a progress estimate)."""

    def __init__(self, chunk: Chunk, size: int, block_bytes: int = 4 << 20):
        self.chunk, self.size, self.block_bytes = chunk, size, block_bytes
        self.lines = self.bytes = 0
        self.first = 0  # 1 when the chunk's first line is a header (skipped)

    def _lines(self) -> Iterator[list[bytes]]:
        """Lists of whole lines in order (split_lines' lines, before the trailing-blank rule)."""
        carry = b""
        for block in read_blocks(self.chunk, self.block_bytes):
            self.bytes += len(block)
            parts = (carry + block).split(b"\n") if carry else block.split(b"\n")
            carry = parts.pop()
            yield parts
        if carry:
            yield [carry]

    def __iter__(self) -> Iterator[tuple[int, list[bytes]]]:
        pending: list[bytes] = []
        done = 0  # data lines handed out
        header = self.chunk.skip_header
        hold = self.chunk.file_end  # blank lines at the very end are not rows: hold them until a line follows
        with gc_paused():  # as in batches()
            for parts in self._lines():
                self.lines += len(parts)
                pending += parts
                ready = len(pending)
                if hold:
                    while ready and not pending[ready - 1].strip():
                        ready -= 1
                if header and ready:
                    header, self.first, ready, pending = False, 1, ready - 1, pending[1:]
                while ready >= self.size:
                    batch, pending = pending[: self.size], pending[self.size :]
                    ready -= self.size
                    yield done, batch
                    done += len(batch)
            if hold:
                while pending and not pending[-1].strip():
                    pending.pop()
                    self.lines -= 1
            if header and pending:
                self.first, pending = 1, pending[1:]
            for i in range(0, len(pending), self.size):
                yield done + i, pending[i : i + self.size]


def split_lines(data: bytes, file_end: bool = False) -> list[bytes]:
    """Lines without their terminator; a final newline does not make an extra empty line.

    With ``file_end`` (the data ends where its file ends) blank lines at the very end are dropped:
    an editor's trailing empty line is not a malformed row. Blank lines inside the data stay lines
    (they are dead-lettered as ``empty_line``, so the line numbers of what follows are right).
    """
    if not data:
        return []
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    while file_end and lines and not lines[-1].strip():
        lines.pop()
    return lines


def batches(lines: list[bytes], size: int) -> Iterator[tuple[int, list[bytes]]]:
    """(offset, lines[offset:offset+size]) slices, with Python's cyclic garbage collector paused until
    the last one is consumed: processing a batch allocates many short-lived lists and tuples but makes
    no reference cycles, and the collector's passes over them cost 5-15% of a chunk's CPU."""
    with gc_paused():
        for i in range(0, len(lines), size):
            yield i, lines[i : i + size]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off inside (back on after, if it was on)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
