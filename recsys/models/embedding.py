"""Fused embedding tables: one table per embedding dim, each feature a row range at its own offset.

One gather over a fused table replaces one gather per feature (measured ~4x faster than 26 separate
tables under two-worker MultiWorkerMirroredStrategy: fewer ops and fewer gradient all-gathers).
Multi-valued features are mean-pooled over their first ``max_values`` values (an empty list embeds
to zeros).
"""

from __future__ import annotations

from dataclasses import dataclass

from recsys.compat import keras, tf


@dataclass(frozen=True)
class TableSlot:
    """Where one feature lives: its table (by dim), first row, number of rows, pooled or not."""

    name: str
    dim: int
    offset: int
    num_ids: int
    multi: bool
    max_values: int = 0  # multi-valued: values kept per row (longer rows are truncated)


def plan_tables(features: list[tuple]) -> dict[int, list[TableSlot]]:
    """(name, num_ids, dim, max_values) in model order -> {dim: [slots]}; max_values > 0 marks a
    multi-valued feature. Single-valued features come first in each table, then multi-valued."""
    groups: dict[int, list[TableSlot]] = {}
    order = [f for f in features if not f[3]] + [f for f in features if f[3]]
    for name, num_ids, dim, max_values in order:
        if num_ids < 1 or dim < 1:
            raise ValueError(f"feature {name!r}: num_ids={num_ids} and dim={dim} must be >= 1")
        slots = groups.setdefault(dim, [])
        offset = slots[-1].offset + slots[-1].num_ids if slots else 0
        slots.append(TableSlot(name, dim, offset, num_ids, max_values > 0, int(max_values)))
    return dict(sorted(groups.items()))


class FusedEmbedding(keras.layers.Layer):
    """ids by feature name -> [float [B, F_d, d] for each dim d, ascending], one fused table per d."""

    def __init__(self, features: list[tuple], embeddings_initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        # A tuple, not a dict: Keras would wrap a dict with int keys into an unsaveable tracker.
        self.groups = tuple(plan_tables(features).items())
        self.initializer = embeddings_initializer
        self.tables: list[tf.Variable] = []

    def _fresh_initializer(self):
        # A named initializer is instantiated per table (one unseeded instance reused would give
        # every table the same values).
        init = self.initializer
        return keras.initializers.get(init) if isinstance(init, str | dict) else init

    def build(self, input_shape=None):
        self.tables = [
            self.add_weight(
                name=f"table_d{dim}",
                shape=(sum(s.num_ids for s in slots), dim),
                initializer=self._fresh_initializer(),
                trainable=True,
            )
            for dim, slots in self.groups
        ]
        super().build(input_shape)

    def call(self, ids: dict) -> list[tf.Tensor]:
        if not self.built:
            self.build()
        out = []
        for table, (_, slots) in zip(self.tables, self.groups, strict=True):
            parts = []
            singles = [s for s in slots if not s.multi]
            if singles:
                offsets = tf.constant([s.offset for s in singles], tf.int64)
                stacked = tf.stack([tf.cast(ids[s.name], tf.int64) for s in singles], axis=1)
                parts.append(tf.gather(table, stacked + offsets))  # [B, F, dim]
            for s in (s for s in slots if s.multi):
                # Pad to a fixed width so every replica's gradient has the same number of rows
                # (MultiWorkerMirroredStrategy's IndexedSlices all-gather fails on ragged sizes).
                dense = tf.cast(ids[s.name], tf.int64).to_tensor(default_value=-1, shape=[None, s.max_values])
                mask = tf.cast(dense >= 0, table.dtype)[:, :, None]
                vecs = tf.gather(table, tf.maximum(dense, 0) + s.offset) * mask  # [B, L, dim]
                counts = tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
                parts.append((tf.reduce_sum(vecs, axis=1) / counts)[:, None, :])
            out.append(parts[0] if len(parts) == 1 else tf.concat(parts, axis=1))
        return out
