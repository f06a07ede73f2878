"""Training input: tf.data pipelines over the feature-spec shards, and a synthetic data writer."""

from recsys.data.input import make_dataset, parse_batch, parse_spec, shard_files

__all__ = ["make_dataset", "parse_batch", "parse_spec", "shard_files"]
