"""Old import path of :mod:`pipelines.synthetic_spec`, the small synthetic dataset writer."""

from pipelines.synthetic_spec import SyntheticLayout, write_synthetic

__all__ = ["SyntheticLayout", "write_synthetic"]
