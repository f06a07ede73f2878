"""TensorProto <-> numpy without ``tf.make_ndarray``/``tf.make_tensor_proto`` (slow on the request path).

Decoding validates what a client sent (dtype known, content size matching the shape, a size limit), so
a malformed tensor becomes INVALID_ARGUMENT / RESOURCE_EXHAUSTED instead of an exception in the server.
"""

from __future__ import annotations

import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from serving.errors import exhausted, invalid

# DataType -> (numpy dtype, typed repeated field of TensorProto)
_DTYPES: dict[int, tuple[np.dtype, str]] = {
    types_pb2.DT_FLOAT: (np.dtype(np.float32), "float_val"),
    types_pb2.DT_DOUBLE: (np.dtype(np.float64), "double_val"),
    types_pb2.DT_INT32: (np.dtype(np.int32), "int_val"),
    types_pb2.DT_INT16: (np.dtype(np.int16), "int_val"),
    types_pb2.DT_INT8: (np.dtype(np.int8), "int_val"),
    types_pb2.DT_UINT8: (np.dtype(np.uint8), "int_val"),
    types_pb2.DT_UINT16: (np.dtype(np.uint16), "int_val"),
    types_pb2.DT_INT64: (np.dtype(np.int64), "int64_val"),
    types_pb2.DT_UINT32: (np.dtype(np.uint32), "uint32_val"),
    types_pb2.DT_UINT64: (np.dtype(np.uint64), "uint64_val"),
    types_pb2.DT_BOOL: (np.dtype(np.bool_), "bool_val"),
    types_pb2.DT_HALF: (np.dtype(np.float16), "half_val"),
    types_pb2.DT_STRING: (np.dtype(object), "string_val"),
}
_BY_NUMPY: dict[np.dtype, int] = {np_dtype: enum for enum, (np_dtype, _) in _DTYPES.items()}

DEFAULT_MAX_ELEMENTS = 1 << 24  # 16M values in one tensor


def dtype_name(dtype: int) -> str:
    """ "DT_FLOAT" -> "float", as TF's error messages print dtypes."""
    try:
        return types_pb2.DataType.Name(dtype)[3:].lower()
    except ValueError:
        return f"<unknown dtype {dtype}>"


def numpy_dtype(dtype: int) -> np.dtype:
    """The numpy dtype of a DataType enum (object for strings)."""
    if dtype not in _DTYPES:
        raise invalid(f"unsupported tensor dtype {dtype_name(dtype)}")
    return _DTYPES[dtype][0]


def shape_of(shape: tensor_shape_pb2.TensorShapeProto) -> tuple[int, ...]:
    """Dimensions of a fully defined request shape (unknown rank or negative sizes are invalid)."""
    if shape.unknown_rank:
        raise invalid("request tensor has unknown rank")
    dims = tuple([d.size for d in shape.dim])
    if dims and min(dims) < 0:
        raise invalid(f"request tensor has a negative dimension: {list(dims)}")
    return dims


def value_count(proto: tensor_pb2.TensorProto) -> int:
    """How many values a request tensor carries (tensor_content counts in whole elements, rounded up)."""
    entry = _DTYPES.get(proto.dtype)
    if entry is None:
        raise invalid(f"unsupported tensor dtype {dtype_name(proto.dtype)}")
    np_dtype, field = entry
    if proto.tensor_content:
        return -(-len(proto.tensor_content) // np_dtype.itemsize)
    return len(getattr(proto, field))


def declared(proto: tensor_pb2.TensorProto, max_elements: int = DEFAULT_MAX_ELEMENTS) -> tuple[
    tuple[int, ...], np.dtype, int
]:
    """(shape, numpy dtype, element count) a request tensor declares, checked against what it carries.

    Nothing is allocated: a tensor declaring 2^24 values and sending one is priced here, before decoding.
    """
    entry = _DTYPES.get(proto.dtype)
    if entry is None:
        raise invalid(f"unsupported tensor dtype {dtype_name(proto.dtype)}")
    np_dtype = entry[0]
    dims = shape_of(proto.tensor_shape)
    size = 1
    for d in dims:
        size *= d
        if size > max_elements:
            raise exhausted(f"tensor of shape {list(dims)} exceeds the limit of {max_elements} values")
    if proto.tensor_content:
        if np_dtype.kind == "O":
            raise invalid("string tensors cannot use tensor_content")
        content = proto.tensor_content
        if len(content) != size * np_dtype.itemsize:
            raise invalid(
                f"tensor_content has {len(content)} bytes, shape {list(dims)} of "
                f"{dtype_name(proto.dtype)} needs {size * np_dtype.itemsize}"
            )
        return dims, np_dtype, size
    n = value_count(proto)
    if n not in (size, 0, 1):
        raise invalid(f"tensor has {n} values, shape {list(dims)} needs {size}")
    return dims, np_dtype, size


def decoded_bytes(np_dtype: np.dtype, size: int) -> int:
    """Memory a decoded tensor of ``size`` elements takes (a pointer per element for strings)."""
    return size * np_dtype.itemsize


def to_numpy(proto: tensor_pb2.TensorProto, max_elements: int = DEFAULT_MAX_ELEMENTS) -> np.ndarray:
    """Decode a request TensorProto (tensor_content or the typed value field, a single value broadcast)."""
    dims, np_dtype, size = declared(proto, max_elements)
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype=np_dtype).reshape(dims)
    values = getattr(proto, _DTYPES[proto.dtype][1])
    n = len(values)
    if np_dtype.kind == "O":
        arr = np.empty(n, dtype=object)
        arr[:] = list(values)
    else:
        try:  # half_val holds the float16 bit patterns in int32s
            arr = (
                np.asarray(values, dtype=np.uint16).view(np.float16)
                if proto.dtype == types_pb2.DT_HALF
                else np.asarray(values, dtype=np_dtype)
            )
        except OverflowError as err:
            raise invalid(f"tensor value out of range for {dtype_name(proto.dtype)}: {err}") from err
    if n == size:
        return arr.reshape(dims)
    # TF semantics: one value fills the tensor; none means all default values
    fill = arr[0] if n == 1 else (b"" if np_dtype.kind == "O" else np_dtype.type(0))
    out = np.empty(size, dtype=np_dtype)
    out.fill(fill)
    return out.reshape(dims)


def from_numpy(array: np.ndarray) -> tensor_pb2.TensorProto:
    """Encode a numpy array (numbers as tensor_content, strings as string_val)."""
    array = np.asarray(array)
    if array.dtype.kind in "SUO":
        proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING)
        flat = array.reshape(-1)
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in flat)
    else:
        enum = _BY_NUMPY.get(array.dtype)
        if enum is None:
            raise invalid(f"cannot encode numpy dtype {array.dtype}")
        proto = tensor_pb2.TensorProto(dtype=enum)
        proto.tensor_content = np.ascontiguousarray(array).tobytes()
    proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape)
    return proto


def coerce(values, dtype: int) -> np.ndarray:
    """Python values (lists, strings) -> an array of DataType ``dtype`` (client side and JSON)."""
    np_dtype = numpy_dtype(dtype)
    if np_dtype.kind == "O":
        arr = np.asarray(values, dtype=object)
        flat = arr.reshape(-1)
        for i, v in enumerate(flat):
            if isinstance(v, str):
                flat[i] = v.encode()
            elif not isinstance(v, bytes):
                flat[i] = str(v).encode()
        return arr
    return np.asarray(values, dtype=np_dtype)
