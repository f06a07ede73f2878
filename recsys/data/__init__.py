"""Training input: tf.data pipelines over the feature-spec shards."""

from recsys.data.input import make_dataset, parse_batch, parse_spec, shard_files

__all__ = ["make_dataset", "parse_batch", "parse_spec", "shard_files"]
