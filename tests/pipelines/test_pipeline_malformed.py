"""Malformed input: every bad row lands in the dead letter with file, line, raw text and reason."""

from __future__ import annotations

import gzip
import os

import pytest

from pipelines import feature_spec
from pipelines.config import PreprocessConfig
from pipelines.failures import ErrorBudgetExceeded, NoRowsError
from pipelines.sources.criteo import criteo_schema
from pipelines.sources.synthetic import SyntheticCriteo

GOOD = 53


def _bad_rows(good: list[bytes]) -> dict[int, tuple[bytes, str]]:
    """1-based line number -> (raw line, expected reason code)."""
    fields = good[0].split(b"\t")
    wrong_count = b"\t".join(fields[:-1])
    non_numeric = b"\t".join(fields[:3] + [b"12x"] + fields[4:])
    undecodable = b"\t".join(fields[:20] + [b"\xff\xfe\xfa"] + fields[21:])
    missing_label = b"\t".join([b""] + fields[1:])
    bad_label = b"\t".join([b"2"] + fields[1:])
    return {
        3: (wrong_count, "field_count"),
        10: (non_numeric, "bad_numeric"),
        11: (b"", "empty_line"),
        25: (undecodable, "undecodable"),
        40: (missing_label, "missing_label"),
        41: (b"", "empty_line"),
        58: (bad_label, "bad_label"),
    }


@pytest.fixture
def malformed(tmp_path):
    good = SyntheticCriteo(seed=5).lines(0, GOOD)
    bad = _bad_rows(good)
    lines, it = [], iter(good)
    for n in range(1, GOOD + len(bad) + 1):
        lines.append(bad[n][0] if n in bad else next(it))
    lines[4] += b"\r"  # a CRLF line is fine
    path = tmp_path / "raw.tsv"
    # Blank lines at the end of the file (an editor's habit) are not rows: neither read nor dead-lettered.
    path.write_bytes(b"\n".join(lines) + b"\n\n \r\n")
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"")
    return path, empty, lines, bad


@pytest.mark.parametrize("chunk_bytes", [1 << 20, 2048])  # one chunk / many chunks
def test_dead_letter_exact(malformed, tmp_path, run_config, read_errors, read_examples, chunk_bytes):
    path, empty, lines, bad = malformed
    out = tmp_path / "out"
    cfg = PreprocessConfig(
        source="criteo",
        output=str(out),
        schema=criteo_schema(),
        inputs=(str(path), str(empty)),
        max_error_fraction=0.2,
        chunk_bytes=chunk_bytes,
    )
    summary = run_config(cfg)
    spec = feature_spec.load(str(out))
    c = spec.counts
    assert (c.read, c.dead_lettered) == (GOOD + len(bad), len(bad))
    assert c.written_train + c.written_eval == GOOD
    assert summary.stage_counts["3_rows_dead_lettered"] == len(bad)
    if chunk_bytes == 2048:
        assert summary.stage_counts["0_chunks"] > 5
    errors = read_errors(out)
    assert [(e["line"], e["code"]) for e in errors] == [(n, code) for n, (_, code) in bad.items()]
    for e in errors:
        assert e["file"] == str(path)
        assert e["raw"] == lines[e["line"] - 1].decode("utf-8", "backslashreplace")
        assert e["reason"]
    assert "expected 40 fields, got 39" in errors[0]["reason"]
    assert "'I3'" in errors[1]["reason"]
    # Good rows survive intact, the CRLF one without its \r.
    got = read_examples(out, "train") + read_examples(out, "eval")
    assert len(got) == GOOD
    assert sorted(e["C1"][0] for e in got if "C1" in e) == sorted(
        ln.split(b"\t")[14].decode() for n, ln in enumerate(lines, 1) if n not in bad and ln.split(b"\t")[14]
    )
    crlf = lines[4].rstrip(b"\r").split(b"\t")
    match = [e for e in got if e.get("C26") == [crlf[39].decode()] and e.get("C1") == [crlf[14].decode()]]
    assert match


def test_gzip_input_gives_the_same_result(malformed, tmp_path, run_config, read_errors):
    path, _, _, bad = malformed
    gz = tmp_path / "raw.tsv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    out = tmp_path / "out"
    cfg = PreprocessConfig(
        source="criteo",
        output=str(out),
        schema=criteo_schema(),
        inputs=(str(gz),),
        max_error_fraction=0.2,
        chunk_bytes=2048,
    )
    run_config(cfg)
    c = feature_spec.load(str(out)).counts
    assert (c.read, c.dead_lettered, c.written_train + c.written_eval) == (GOOD + len(bad), len(bad), GOOD)
    assert [(e["file"], e["line"]) for e in read_errors(out)] == [(str(gz), n) for n in bad]


def test_directory_input_is_refused(tmp_path, run_config):
    cfg = PreprocessConfig(
        source="criteo", output=str(tmp_path / "out"), schema=criteo_schema(), inputs=(str(tmp_path),)
    )
    with pytest.raises(IsADirectoryError, match="is a directory"):
        run_config(cfg)


def test_error_budget_fails_the_run_but_keeps_the_dead_letter(malformed, tmp_path, run_config, read_errors):
    path, _, _, bad = malformed
    out = tmp_path / "out"
    cfg = PreprocessConfig(
        source="criteo", output=str(out), schema=criteo_schema(), inputs=(str(path),)
    )  # default max_error_fraction=0.01
    with pytest.raises(ErrorBudgetExceeded, match="dead-lettered, above"):
        run_config(cfg)
    assert not os.path.exists(out / "feature_spec.json")
    assert len(read_errors(out)) == len(bad)


def test_only_empty_input_fails_clearly(tmp_path, run_config):
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"")
    cfg = PreprocessConfig(
        source="criteo", output=str(tmp_path / "out"), schema=criteo_schema(), inputs=(str(empty),)
    )
    with pytest.raises(NoRowsError, match="no rows were read"):
        run_config(cfg)


def test_missing_input_file(tmp_path, run_config):
    cfg = PreprocessConfig(
        source="criteo",
        output=str(tmp_path / "out"),
        schema=criteo_schema(),
        inputs=(str(tmp_path / "nope.tsv"),),
    )
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        run_config(cfg)


def test_only_blank_lines_at_the_end_of_a_file_are_dropped():
    from pipelines.chunks import split_lines

    data = b"a\n\nb\n\n \r\n"
    assert split_lines(data, file_end=True) == [b"a", b"", b"b"]
    assert split_lines(data) == [b"a", b"", b"b", b"", b" \r"]  # a chunk inside the file keeps them
