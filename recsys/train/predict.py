"""Predictions of a trained model on a dataset, as NumPy arrays (for the study's PD metrics)."""

from __future__ import annotations

import weakref

import numpy as np

from recsys.compat import tf

# One traced predict function per model, so repeated evaluations do not retrace.
_PREDICT_FNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def predict_fn(model):
    """A cached ``tf.function``: features -> probabilities [B] (inference mode)."""
    fn = _PREDICT_FNS.get(model)
    if fn is None:
        ref = weakref.ref(model)  # the cached function must not keep its model alive

        def call(features):
            live = ref()
            if live is None:
                raise ReferenceError("the model of this cached predict function was garbage-collected")
            return tf.reshape(live(features, training=False), [-1])

        fn = tf.function(call, reduce_retracing=True, autograph=False)  # no control flow on tensors
        _PREDICT_FNS[model] = fn
    return fn


def predict(model, dataset: tf.data.Dataset) -> np.ndarray:
    """Click probabilities [N] for every example of ``dataset`` (batches of (features, labels) or
    features), in dataset order, computed in this process (no distribution)."""
    call = predict_fn(model)
    out = [call(batch[0] if isinstance(batch, tuple) else batch).numpy() for batch in dataset]
    return np.concatenate(out) if out else np.zeros([0], np.float32)


def labels(dataset: tf.data.Dataset) -> np.ndarray:
    """The labels [N] of a dataset of (features, labels) batches, in dataset order."""
    out = [np.reshape(batch[1].numpy(), [-1]) for batch in dataset]
    return np.concatenate(out) if out else np.zeros([0], np.float32)
