"""TF Serving's REST JSON <-> numpy: "instances" (row) and "inputs" (columnar) requests, outputs.

Values are checked against the signature's dtypes: numbers for numeric inputs (integers for integer
inputs), strings or ``{"b64": ...}`` for string inputs; anything else is INVALID_ARGUMENT (HTTP 400).
"""

from __future__ import annotations

import base64
import binascii

import numpy as np

from serving import codec
from serving.errors import invalid
from serving.jsonparse import encode_str
from serving.servable import Signature, TensorSpec


def _strings(value):
    """Nested lists of str / {"b64": ...} -> nested lists of bytes."""
    if isinstance(value, list):
        return [_strings(v) for v in value]
    if isinstance(value, str):
        return encode_str(value)
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError) as err:  # also non-ASCII characters
            raise invalid(f"Unable to base64 decode: {err}") from err
    raise invalid(
        f"JSON Value: {_short(value)} not formatted correctly for string data "
        '(expected a string or {"b64": ...})'
    )


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def to_array(value, spec: TensorSpec) -> np.ndarray:
    """One input's JSON value (nested lists) -> an array of the spec's dtype."""
    want = codec.numpy_dtype(spec.dtype)
    if want.kind == "O":
        data = _strings(value)
        try:
            arr = np.array(data, dtype=object)
            if arr.dtype != object or any(not isinstance(v, bytes) for v in arr.reshape(-1)):
                raise ValueError("ragged")
        except ValueError as err:
            raise invalid(f"input '{spec.alias}': string values must form a regular nested list") from err
        return arr
    try:
        arr = np.array(value)
    except (ValueError, OverflowError) as err:
        raise invalid(f"input '{spec.alias}': values must form a regular nested list of numbers") from err
    if arr.size == 0 and arr.dtype == np.float64:
        return arr.astype(want)
    if arr.dtype.kind not in "biuf" or (want.kind == "b") != (arr.dtype.kind == "b"):
        raise invalid(
            f"input '{spec.alias}' expects {codec.dtype_name(spec.dtype)} values, got {_short(value)}"
        )
    if want.kind in "iu":
        if arr.dtype.kind == "f":
            raise invalid(f"input '{spec.alias}' expects integers, got {_short(value)}")
        info = np.iinfo(want)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise invalid(f"input '{spec.alias}': value out of range for {codec.dtype_name(spec.dtype)}")
    elif want.kind == "f" and arr.size and arr.dtype.kind == "f":
        finite = arr[np.isfinite(arr)]
        if finite.size and np.abs(finite).max() > np.finfo(want).max:
            raise invalid(f"input '{spec.alias}': value out of range for {codec.dtype_name(spec.dtype)}")
    return arr.astype(want)


def parse_predict(body, signature: Signature) -> tuple[dict[str, np.ndarray], bool]:
    """A :predict body -> (inputs, row_format)."""
    if not isinstance(body, dict):
        raise invalid("JSON Value: request body must be a JSON object")
    has_rows, has_cols = "instances" in body, "inputs" in body
    if has_rows == has_cols:
        raise invalid(
            "JSON Value: must have exactly one of 'instances' (row format) or 'inputs' (columnar format)"
        )
    specs = signature.inputs
    if has_rows:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise invalid("'instances' must be a non-empty JSON list")
        if isinstance(rows[0], dict) and not (len(specs) == 1 and _is_b64(rows[0])):
            keys = set(rows[0])
            for i, row in enumerate(rows):
                if not isinstance(row, dict) or set(row) != keys:
                    raise invalid(
                        f"Failed to process element: {i} of 'instances' list. JSON object: "
                        f"keys {sorted(row) if isinstance(row, dict) else _short(row)} differ "
                        f"from the first element's {sorted(keys)}"
                    )
            _check_names(keys, specs)
            return {k: to_array([row[k] for row in rows], specs[k]) for k in keys}, True
        if len(specs) != 1:
            raise invalid(
                f"instances are plain values but the signature has {len(specs)} named inputs "
                f"{list(specs)}; send objects with those keys"
            )
        ((alias, spec),) = specs.items()
        return {alias: to_array(rows, spec)}, True
    cols = body["inputs"]
    if isinstance(cols, dict) and not (len(specs) == 1 and _is_b64(cols)):
        _check_names(set(cols), specs)
        return {k: to_array(v, specs[k]) for k, v in cols.items()}, False
    if len(specs) != 1:
        raise invalid(f"'inputs' is not an object but the signature has {len(specs)} named inputs")
    ((alias, spec),) = specs.items()
    return {alias: to_array(cols, spec)}, False


def _is_b64(value) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _check_names(keys: set, specs: dict) -> None:
    if keys != set(specs):
        raise invalid(
            f"input names {sorted(keys)} do not match the signature's inputs {sorted(specs)}. "
            f"Missing: {sorted(set(specs) - keys)}. Unknown: {sorted(keys - set(specs))}."
        )


def to_json_value(alias: str, arr: np.ndarray):
    """An output array -> nested lists; float32 written with its shortest round-trip digits."""
    if arr.dtype.kind in "OS":
        b64 = alias.endswith("_bytes")

        def enc(v):
            if not b64:
                try:
                    return v.decode() if isinstance(v, bytes) else str(v)
                except UnicodeDecodeError:
                    pass
            return {"b64": base64.b64encode(v).decode()}

        flat = [enc(v) for v in arr.reshape(-1)]
        return np.array(flat, dtype=object).reshape(arr.shape).tolist()
    if arr.dtype == np.float32 or arr.dtype == np.float16:
        return arr.astype(str).astype(np.float64).tolist()
    return arr.tolist()


def format_predict(outputs: dict[str, np.ndarray], row_format: bool) -> dict:
    """TF Serving's :predict response: {"predictions": ...} for rows, {"outputs": ...} for columns."""
    values = {a: to_json_value(a, v) for a, v in outputs.items()}
    if not row_format:
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    sizes = {a: (v.shape[0] if v.ndim else None) for a, v in outputs.items()}
    batch = {int(v.shape[0]) for v in outputs.values() if v.ndim}
    if len(batch) != 1 or None in sizes.values():
        raise invalid(f"outputs have different batch sizes {sizes}; use the columnar 'inputs' format")
    n = batch.pop()
    return {"predictions": [{a: v[i] for a, v in values.items()} for i in range(n)]}


def examples_from_json(body) -> list:
    """:classify / :regress body ({"examples": [...], "context": {...}}) -> tf.Example protos."""
    from tensorflow.core.example import example_pb2

    if not isinstance(body, dict) or not isinstance(body.get("examples"), list) or not body["examples"]:
        raise invalid("request must be an object with a non-empty 'examples' list")
    context = body.get("context", {})
    if not isinstance(context, dict):
        raise invalid("'context' must be a JSON object")
    out = []
    for i, ex in enumerate(body["examples"]):
        if not isinstance(ex, dict):
            raise invalid(f"examples[{i}] must be a JSON object of feature values")
        proto = example_pb2.Example()
        for name, value in {**context, **ex}.items():
            encode_str(name)  # a lone surrogate in a feature name is invalid, not a server error
            _set_feature(proto.features.feature[name], name, value)
        out.append(proto)
    return out


def _set_feature(feature, name: str, value) -> None:
    values = value if isinstance(value, list) else [value]
    if not values:
        return
    if all(isinstance(v, bool) for v in values) or all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        if any(not -(1 << 63) <= v < (1 << 63) for v in values):
            raise invalid(f"feature '{name}': value out of range for int64, got {_short(value)}")
        feature.int64_list.value.extend(int(v) for v in values)
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        feature.float_list.value.extend(float(v) for v in values)
    elif all(isinstance(v, (str, dict)) for v in values):
        feature.bytes_list.value.extend(_strings(values))
    else:
        raise invalid(f"feature '{name}': values must be all numbers or all strings, got {_short(value)}")
