"""The version of the training stream's order rule (TensorFlow-free: the supervisor records it).

A run records the version it started under; a resume under another version is refused as a data
change, since the same step would see other examples. History:

1. shards interleaved four at a time, record by record; blocks of records shuffled.
2. shards read one after another; blocks of records shuffled (the columnar format reads the same
   order cheaply: :mod:`recsys.data.stream`).
"""

STREAM_VERSION = 2
