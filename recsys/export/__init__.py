"""SavedModel export for TF Serving: raw-feature and tf.Example signatures, warm-up requests."""

from recsys.export.saved_model import check_strategy_free, export_saved_model, next_version
from recsys.export.signatures import raw_input_signature, raw_to_model_inputs
from recsys.export.warmup import raw_batch, write_warmup

__all__ = [
    "check_strategy_free",
    "export_saved_model",
    "next_version",
    "raw_batch",
    "raw_input_signature",
    "raw_to_model_inputs",
    "write_warmup",
]
