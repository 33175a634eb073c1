"""Reordering the axes of a batch: x.transpose, copied so the result is laid out in its own
order (a transposed view would hand every later op strided memory, which the fast kernels
refuse and BLAS reads slowly).

Shapes:
  x (N, d1, ..., dk)  ->  y (N, d_p1, ..., d_pk)   for axes (0, p1, ..., pk)
"""
import numpy

from ..backend import get_array_module


def permute_forward(x, axes):
    """x -> x.transpose(axes), contiguous; the cache is the inverse permutation."""
    return get_array_module(x).ascontiguousarray(x.transpose(axes)), tuple(int(a) for a in numpy.argsort(axes))


def permute_backward(gy, inverse):
    """Each value's gradient goes back to where the value came from: gy transposed back."""
    return get_array_module(gy).ascontiguousarray(gy.transpose(inverse))
