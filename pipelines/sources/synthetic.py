"""Synthetic Criteo-layout rows: Zipf-skewed categoricals, log-normal counts, learnable labels.

Labels come from a hidden nonlinear teacher (per-id effects, pairwise latent interactions, nonlinear
count terms), scaled so the Bayes-optimal AUC is about 0.83 with ~25% positives. Rows are produced in
fixed blocks seeded by ``(seed, block)``, so the data do not depend on how the work is chunked.
The generator emits raw TSV lines, which go through the same parser as real Criteo files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.sources.criteo import NUM_CATEGORICAL, NUM_INTEGER

BLOCK_ROWS = 25_000
DEFAULT_CARDINALITIES = (
    1460, 583, 100000, 50000, 305, 24, 12517, 633, 3, 50000, 5683, 100000, 3194,
    27, 14992, 100000, 10, 5652, 2173, 4, 100000, 18, 15, 50000, 105, 40000,
)  # fmt: skip
# Fraction of missing values per column (Criteo-like: some dense columns, some sparse).
_INT_MISSING = (0.45, 0.0, 0.2, 0.2, 0.03, 0.22, 0.04, 0.0, 0.04, 0.45, 0.04, 0.75, 0.2)
_CAT_MISSING = (0.0,) * 18 + (0.4, 0.4, 0.0, 0.75, 0.0, 0.0, 0.4, 0.4)
_PAIRS = ((5, 13), (8, 16), (19, 22), (0, 24), (1, 5))  # categorical pairs that interact
_HEAD_RANKS = 100.0  # ids beyond this rank have effects shrunk by sqrt(rank / _HEAD_RANKS)
_TARGET_LOGIT_STD = 1.6
_TARGET_POSITIVE_RATE = 0.25


@dataclass
class _Teacher:
    cdfs: list[np.ndarray]
    tables: list[np.ndarray]  # rank -> 8-hex value (bytes)
    effects: list[np.ndarray]
    latents: dict[int, np.ndarray]
    int_mu: np.ndarray
    int_sigma: np.ndarray
    int_w: np.ndarray
    scale: float
    bias: float


class SyntheticCriteo:
    """Deterministic generator of Criteo-layout TSV lines (bytes, no newline)."""

    def __init__(self, seed: int = 0, cardinalities=DEFAULT_CARDINALITIES, zipf: float = 1.1):
        if len(cardinalities) != NUM_CATEGORICAL:
            raise ValueError(f"need {NUM_CATEGORICAL} cardinalities, got {len(cardinalities)}")
        if any(int(c) < 1 for c in cardinalities):
            raise ValueError(f"cardinalities must be >= 1, got {cardinalities}")
        self.seed = int(seed)
        self.cardinalities = tuple(int(c) for c in cardinalities)
        self.zipf = float(zipf)
        self._teacher: _Teacher | None = None

    def __getstate__(self):
        return {"seed": self.seed, "cardinalities": self.cardinalities, "zipf": self.zipf}

    def __setstate__(self, state):
        type(self).__init__(self, **state)

    # -- the hidden teacher ---------------------------------------------------------------------
    def teacher(self) -> _Teacher:
        if self._teacher is None:
            rng = np.random.default_rng([self.seed, 2**31 - 1])
            cdfs, tables, effects = [], [], []
            for c, k in enumerate(self.cardinalities):
                p = np.arange(1, k + 1, dtype=np.float64) ** -self.zipf
                cdfs.append(np.cumsum(p) / p.sum())
                codes = (
                    np.arange(k, dtype=np.uint64) * np.uint64(2654435761)
                    + np.uint64((self.seed * 7919 + c * 104729) % 2**32)
                ) % np.uint64(2**32)
                tables.append(np.char.encode(np.char.mod("%08x", codes), "ascii"))
                strength = rng.uniform(0.0, 1.0) if c % 3 != 2 else 0.0  # some columns are noise
                effects.append(rng.normal(0.0, strength, k) * self._shrink(k))
            latents = {
                c: rng.normal(0.0, 0.6, (self.cardinalities[c], 4))
                * self._shrink(self.cardinalities[c])[:, None]
                for pair in _PAIRS
                for c in pair
            }
            t = _Teacher(
                cdfs,
                tables,
                effects,
                latents,
                int_mu=rng.uniform(0.5, 4.0, NUM_INTEGER),
                int_sigma=rng.uniform(0.8, 1.8, NUM_INTEGER),
                int_w=rng.normal(0.0, 0.6, NUM_INTEGER),
                scale=1.0,
                bias=0.0,
            )
            self._teacher = t
            # Calibrate on a sample: logit std -> target, then bias -> target positive rate.
            _, _, logits = self._draw(np.random.default_rng([self.seed, 2**31 - 2]), 20_000)
            t.scale = _TARGET_LOGIT_STD / max(float(logits.std()), 1e-9)
            z = (logits - logits.mean()) * t.scale
            lo, hi = -10.0, 10.0
            for _ in range(60):
                mid = (lo + hi) / 2
                rate = float((1 / (1 + np.exp(-(z + mid)))).mean())
                lo, hi = (mid, hi) if rate < _TARGET_POSITIVE_RATE else (lo, mid)
            t.bias = (lo + hi) / 2 - float(logits.mean()) * t.scale
        return self._teacher

    @staticmethod
    def _shrink(k: int) -> np.ndarray:
        """Effect scale by rank: 1 for the head, decaying in the tail (rare ids are less distinct,
        and a model cannot learn what it has hardly seen)."""
        ranks = np.arange(1, k + 1, dtype=np.float64)
        return np.minimum(1.0, np.sqrt(_HEAD_RANKS / ranks))

    def _draw(self, rng: np.random.Generator, n: int):
        """(integer features with -1 = missing marker array, categorical ranks (-1 missing), logits)."""
        t = self.teacher()
        ints = np.floor(rng.lognormal(t.int_mu, t.int_sigma, (n, NUM_INTEGER))).astype(np.int64)
        ints[:, 1] -= 1  # I2 can be -1, as in Criteo
        int_missing = rng.random((n, NUM_INTEGER)) < np.asarray(_INT_MISSING)
        ranks = np.empty((n, NUM_CATEGORICAL), dtype=np.int64)
        for c in range(NUM_CATEGORICAL):
            ranks[:, c] = np.searchsorted(t.cdfs[c], rng.random(n), side="right")
            ranks[:, c] = np.minimum(ranks[:, c], self.cardinalities[c] - 1)
        cat_missing = rng.random((n, NUM_CATEGORICAL)) < np.asarray(_CAT_MISSING)
        logit = np.zeros(n)
        for c in range(NUM_CATEGORICAL):
            logit += np.where(cat_missing[:, c], 0.0, t.effects[c][ranks[:, c]])
        for a, b in _PAIRS:
            dot = (t.latents[a][ranks[:, a]] * t.latents[b][ranks[:, b]]).sum(axis=1)
            logit += np.where(cat_missing[:, a] | cat_missing[:, b], 0.0, dot)
        x = np.log1p(np.maximum(ints, 0)).astype(np.float64)
        x = np.where(int_missing, 0.0, x)
        logit += np.sin(1.5 * x[:, 0]) * 1.2 + (x[:, 2] > 2.5) * 0.8 - 0.15 * x[:, 4]
        logit += np.tanh(x[:, 6] - 1.0) * 0.9 + 0.6 * np.cos(x[:, 10]) * (x[:, 7] > 1.0)
        logit += (x @ t.int_w) * 0.15
        ints = np.where(int_missing, np.iinfo(np.int64).min, ints)
        ranks = np.where(cat_missing, -1, ranks)
        return ints, ranks, logit

    # -- rows ---------------------------------------------------------------------------------
    def block(self, index: int, rows: int = BLOCK_ROWS) -> tuple[list[bytes], np.ndarray]:
        """Lines and true click probabilities of block ``index`` (first ``rows`` rows of it)."""
        t = self.teacher()
        rng = np.random.default_rng([self.seed, int(index)])
        ints, ranks, logit = self._draw(rng, BLOCK_ROWS)
        prob = 1.0 / (1.0 + np.exp(-(logit * t.scale + t.bias)))
        labels = (rng.random(BLOCK_ROWS) < prob).astype(np.int64)
        ints, ranks, labels, prob = ints[:rows], ranks[:rows], labels[:rows], prob[:rows]
        cols = [labels.astype("S1").tolist()]
        for j in range(NUM_INTEGER):
            col = ints[:, j]
            text = col.astype("S21")
            text[col == np.iinfo(np.int64).min] = b""
            cols.append(text.tolist())
        for c in range(NUM_CATEGORICAL):
            r = ranks[:, c]
            text = t.tables[c][np.maximum(r, 0)].astype("S8")
            text[r < 0] = b""
            cols.append(text.tolist())
        return [b"\t".join(row) for row in zip(*cols, strict=True)], prob

    def lines(self, start: int, end: int) -> list[bytes]:
        """Rows [start, end) as TSV lines."""
        out: list[bytes] = []
        for b in range(start // BLOCK_ROWS, (end - 1) // BLOCK_ROWS + 1 if end > start else 0):
            lo, hi = b * BLOCK_ROWS, (b + 1) * BLOCK_ROWS
            block, _ = self.block(b, min(hi, end) - lo)
            out.extend(block[max(start, lo) - lo :])
        return out

    def write_tsv(self, path: str, rows: int) -> None:
        """Write ``rows`` lines to a local TSV file (for benchmarks and tests)."""
        with open(path, "wb") as fh:
            for b in range(0, (rows + BLOCK_ROWS - 1) // BLOCK_ROWS):
                block, _ = self.block(b, min(BLOCK_ROWS, rows - b * BLOCK_ROWS))
                fh.write(b"\n".join(block) + b"\n")
