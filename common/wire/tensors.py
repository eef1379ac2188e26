"""numpy arrays <-> semcom.v1.Tensor: raw little-endian bytes plus dtype and shape.

Complex symbols travel as DATA_TYPE_COMPLEX64, float32 I/Q interleaved, which
is exactly numpy's little-endian complex64 memory layout.
"""

from __future__ import annotations

import math

import numpy as np

from ..serving.errors import InvalidInput
from .pb import tensor_pb2

_TO_NUMPY = {
    tensor_pb2.DATA_TYPE_UINT8: np.dtype("<u1"),
    tensor_pb2.DATA_TYPE_INT8: np.dtype("<i1"),
    tensor_pb2.DATA_TYPE_INT32: np.dtype("<i4"),
    tensor_pb2.DATA_TYPE_FLOAT32: np.dtype("<f4"),
    tensor_pb2.DATA_TYPE_COMPLEX64: np.dtype("<c8"),
}
_FROM_NUMPY = {dtype: code for code, dtype in _TO_NUMPY.items()}


def dtype_name(code: int) -> str:
    try:
        return tensor_pb2.DataType.Name(code)
    except ValueError:
        return f"unknown dtype {code}"


def to_proto(array: np.ndarray) -> tensor_pb2.Tensor:
    """Serializes an array whose dtype is one of the wire dtypes."""
    dtype = array.dtype.newbyteorder("<")
    if dtype not in _FROM_NUMPY:
        raise TypeError(f"no wire dtype for numpy {array.dtype}")
    return tensor_pb2.Tensor(
        dtype=_FROM_NUMPY[dtype],
        shape=list(array.shape),
        raw_contents=np.ascontiguousarray(array, dtype=dtype).tobytes(),
    )


def from_proto(
    tensor: tensor_pb2.Tensor,
    field: str,
    *,
    dtype: int | None = None,
    ndim: int | None = None,
    finite: bool = True,
    max_elements: int | None = None,
) -> np.ndarray:
    """Parses and validates a Tensor; every failure names `field`.

    Raises InvalidInput for an unknown or unexpected dtype, a negative or
    wrongly ranked shape, a byte length that does not match the shape, or
    (with `finite`) NaN/inf values. The returned array is a read-only view.
    """
    if tensor.dtype not in _TO_NUMPY:
        raise InvalidInput(f"{field}.dtype: {dtype_name(tensor.dtype)} is not a wire dtype")
    if dtype is not None and tensor.dtype != dtype:
        raise InvalidInput(f"{field}.dtype: expected {dtype_name(dtype)}, got {dtype_name(tensor.dtype)}")
    shape = tuple(tensor.shape)
    if ndim is not None and len(shape) != ndim:
        raise InvalidInput(f"{field}.shape: expected {ndim} dimensions, got {list(shape)}")
    if any(d < 0 for d in shape):
        raise InvalidInput(f"{field}.shape: negative dimension in {list(shape)}")
    count = math.prod(shape)
    if max_elements is not None and count > max_elements:
        raise InvalidInput(f"{field}.shape: {count} elements, more than the {max_elements} allowed")
    np_dtype = _TO_NUMPY[tensor.dtype]
    expected_bytes = count * np_dtype.itemsize
    if len(tensor.raw_contents) != expected_bytes:
        raise InvalidInput(
            f"{field}.raw_contents: {len(tensor.raw_contents)} bytes, but shape {list(shape)} "
            f"of {dtype_name(tensor.dtype)} needs {expected_bytes}"
        )
    array = np.frombuffer(tensor.raw_contents, dtype=np_dtype).reshape(shape)
    if finite and np_dtype.kind in "fc":
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise InvalidInput(f"{field}: {bad} non-finite (NaN or inf) values")
    return array
