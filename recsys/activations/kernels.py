"""Fused elementwise kernels for the piecewise activations, and the switch that makes them portable.

A piecewise activation written as plain TF ops costs one memory pass per op (5–8 passes against ReLU's
one) when TensorFlow runs a graph without XLA. Each kernel here is a small ``jit_compile=True``
function, so XLA fuses its forward (and, separately, its closed-form backward) into one pass: inside an
ordinary ``tf.function`` SmeLU then costs what ReLU costs.

Stock TF Serving runs with XLA CPU JIT disabled, so exports trace inside :func:`portable_kernels`,
where the same math is emitted as plain ops that any TensorFlow runtime executes.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

from recsys.compat import tf

_state = threading.local()


def fusion_enabled() -> bool:
    """True unless the caller is inside :func:`portable_kernels`."""
    return not getattr(_state, "portable", False)


@contextlib.contextmanager
def portable_kernels() -> Iterator[None]:
    """Trace activation kernels as plain TF ops (no nested XLA), e.g. for a SavedModel export."""
    previous = getattr(_state, "portable", False)
    _state.portable = True
    try:
        yield
    finally:
        _state.portable = previous


def fusible(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a pure elementwise function: XLA-fused when fusion is on, plain ops otherwise.

    The choice is made at trace time, so a graph traced under :func:`portable_kernels` stays portable.
    """
    fused = tf.function(fn, jit_compile=True, reduce_retracing=True, autograph=False)

    def call(*args: tf.Tensor) -> Any:
        return fused(*args) if fusion_enabled() else fn(*args)

    call.__name__ = getattr(fn, "__name__", "kernel")
    call.__doc__ = fn.__doc__
    return call


def custom_gradient(fn: Callable[..., tuple[Any, Callable[..., Any]]]) -> Callable[..., tf.Tensor]:
    """``tf.custom_gradient``, typed: ``fn`` returns (output, gradient function); the result, the output."""
    return cast(Callable[..., tf.Tensor], tf.custom_gradient(fn))


def reduce_to_shape(t: tf.Tensor, shape: tf.TensorShape) -> tf.Tensor:
    """Sum a broadcast gradient back to a parameter's shape (scalar, or per unit on the last axis)."""
    if shape.rank == 0:
        return tf.reduce_sum(t)
    axes = list(range(t.shape.rank - shape.rank))
    return tf.reduce_sum(t, axis=axes) if axes else t
