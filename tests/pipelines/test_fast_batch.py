"""The NumPy batch path gives the general path's bytes, statistics and dead letters, edge cases included."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.columnar_chunk import Columns
from pipelines.processor import BatchProcessor
from pipelines.schema import schema_from_dict
from pipelines.sources.criteo import criteo_schema
from pipelines.sources.synthetic import SyntheticCriteo

TOY = {
    "delimiter": ",",
    "columns": [
        {"name": "c", "kind": "categorical"},
        {"name": "x", "kind": "numeric", "log1p": True},
        {"name": "z", "kind": "numeric", "clip_min": -2, "clip_max": 5},
        {"name": "skip", "kind": "ignored"},
        {"name": "y", "kind": "label"},
    ],
    "label": {"column": "y"},
    "split": {"eval_fraction": 0.3, "key": ["c"], "salt": "s"},
}


def _plain(cols: Columns) -> tuple:
    """The columns as lists of bytes (the fast path hands over arrays and Blocks)."""
    floats = {k: v if isinstance(v, list) else v.astype("<u4").view("V4").tolist()
              for k, v in cols.floats.items()}
    strings = {k: v if isinstance(v, list) else v.tolist() for k, v in cols.strings.items()}
    return cols.records, floats, strings


def _run(schema, batches: list[list[bytes]], fast: bool):
    proc = BatchProcessor(schema)
    proc.columnar = True
    if not fast:
        proc.fast = None
    taken: list[bool] = []  # per batch: whether the fast path produced it
    if fast:
        assert proc.fast is not None
        inner = proc.fast.process

        def spy(lines, joined):
            result = inner(lines, joined)
            taken.append(result is not None)
            return result

        proc.fast.process = spy  # type: ignore[method-assign]
    out = []
    for lines in batches:
        calls = len(taken)
        r = proc.process(list(lines))
        if len(taken) == calls:
            taken.append(False)  # not offered to the fast path at all
        cols = r.columns
        out.append((r.examples, r.is_eval.tolist(), [(e.index, e.code, e.reason, e.raw) for e in r.errors],
                    None if cols is None else _plain(cols)))
    return out, proc.accs, taken


def _same(schema, batches: list[list[bytes]]) -> list[bool]:
    """Both paths agree; returns which batches the fast path took."""
    fast, fast_accs, taken = _run(schema, batches, True)
    slow, slow_accs, _ = _run(schema, batches, False)
    assert fast == slow
    assert fast_accs == slow_accs
    return taken


def test_synthetic_criteo_batches_take_the_fast_path_with_identical_output():
    rows = SyntheticCriteo(seed=3).lines(0, 3000)
    assert _same(criteo_schema(eval_fraction=0.2, salt="x"), [rows[:1000], rows[1000:2999], rows[2999:]]) == [
        True, True, True]


def test_edge_values_take_the_fast_path():
    batch = [b"a,1,2,s,1", b",,,,0", b"abcdefgh,-0.5,-7.5,s,1", b"abcdefghi,3e38,+5,s,0", b"a, ,,,1",
             b"\xc3\xa9t\xc3\xa9,0.5, 3 ,s,1", b"x" * 64 + b",123456789012,-0,s,1", b"a,,1e-320,s,0"]
    assert _same(schema_from_dict(TOY), [batch, batch[::-1]]) == [True, True]


@pytest.mark.parametrize("bad", [
    b"a,1,2,s",  # too few fields
    b"a,1,2,s,1,extra",  # too many
    b"",  # an empty line
    b"a,oops,2,s,1",  # not a number
    b"a,-1,2,s,1",  # log1p of -1
    b"a,inf,2,s,1",  # not finite
    b"a,1,nan,s,1",  # not a finite number either
    b"a,1e309,2,s,1",  # too large for a float
    b"a,1e308,2,s,1",  # finite, but too large for the tf.Example's float32
    b"a,1,2,s,",  # missing label
    b"a,1,2,s,maybe",  # bad label
    b"a\xff,1,2,s,1",  # not UTF-8
    b"a\x00b,1,2,s,1",  # a NUL byte
    b"a,1,2,s,1\r",  # a carriage return
    b"y" * 65 + b",1,2,s,1",  # wider than the fast path takes
])
def test_batches_the_fast_path_declines_give_the_general_paths_output(bad):
    batch = [b"a,1,2,s,1", bad, b"b,,3,s,0"]
    assert _same(schema_from_dict(TOY), [batch, [b"c,4,5,s,1"]]) == [False, True]


@pytest.mark.parametrize("value", [b"1e308", b"-3.5e38", b"4e38"])
def test_a_finite_value_beyond_float32_is_dead_lettered_not_a_crash(value):
    """struct.pack('<f') raised OverflowError for these and stopped the whole pipeline."""
    batch = [b"a,1,2,s,1", b"b," + value + b",2,s,1", b"c,3,4,s,0"]
    result = BatchProcessor(schema_from_dict(TOY)).process(batch)
    assert [(e.index, e.code) for e in result.errors] == [(1, "bad_numeric")]
    assert "not a finite float32 number" in result.errors[0].reason and len(result.examples) == 2


def test_a_row_with_too_many_fields_beside_one_with_too_few_is_declined():
    batch = [b"a,1,2,s,1,1", b"b,1,2,1", b"c,1,2,s,0"]  # the delimiter count is right overall
    proc = BatchProcessor(schema_from_dict(TOY))
    assert proc.fast is not None and proc.fast.process(batch, b"\n".join(batch)) is None
    codes = [e.code for e in proc.process(batch).errors]
    assert codes == ["field_count", "field_count"]


def test_value_counts_merge_across_many_batches():
    rng = np.random.default_rng(0)
    values = [f"{v:x}".encode() for v in rng.zipf(1.3, 40_000) % 100_000]
    batches = [[v + b",1,1,s,1" for v in values[i : i + 500]] for i in range(0, len(values), 500)]
    assert all(_same(schema_from_dict(TOY), batches))


def test_a_columnar_shard_mixing_fast_and_general_batches_has_the_general_paths_bytes(tmp_path):
    """Columns handed over as arrays and Blocks (fast path) and as lists (a batch with a bad row) meet in
    one writer's pending rows; the shard is the one the general path alone writes."""
    from pipelines import columnar

    rows = SyntheticCriteo(seed=5).lines(0, 900)
    batches = [rows[:300], rows[300:600] + [b"bad"], rows[600:]]
    schema = criteo_schema(eval_fraction=0.2)
    paths = []
    for fast in (True, False):
        proc = BatchProcessor(schema)
        proc.columnar = True
        if not fast:
            proc.fast = None
        path = tmp_path / f"fast-{fast}"
        writer = columnar.ColumnarWriter(str(path), columnar.writer_spec(schema, proc.features), 128)
        kinds = []
        for lines in batches:
            cols = proc.process(list(lines)).columns
            assert cols is not None
            kinds.append(type(cols.strings["C1"]).__name__)
            writer.write_columns(cols.select([True] * len(cols)))
        writer.close()
        assert kinds == (["Block", "list", "Block"] if fast else ["list"] * 3)
        paths.append(path.read_bytes())
    assert paths[0] == paths[1]


@pytest.mark.parametrize("widths", [(3, 0, 64), (127, 5), (128, 1), (300, 2, 0)])
def test_a_block_column_encodes_as_the_list_encoding(widths):
    """The one-byte length of the NumPy encoding holds below 128 bytes; a wider Block (no fast-path batch
    makes one today) takes the general encoding instead of a wrong length byte."""
    from pipelines.columnar_chunk import Block, _block_bytes_list, _bytes_lists

    values = [bytes([97 + i]) * w for i, w in enumerate(widths)]
    width = max(widths)
    grid = np.zeros((len(values), width), np.uint8)
    for i, v in enumerate(values):
        grid[i, : len(v)] = np.frombuffer(v, np.uint8)
    block = Block(grid, np.array(widths, np.int64))
    assert block.tolist() == values
    assert _block_bytes_list(block) == _bytes_lists([values])[0]
