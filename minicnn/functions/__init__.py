"""Stateless differentiable operations on raw NumPy/CuPy arrays.

Each op is a pair: ``<op>_forward(inputs..., params) -> (y, cache)`` and, right
below it, ``<op>_backward(gy, cache) -> gradient(s) of the inputs``. They know
nothing of Tensors or layers; ``minicnn.functional`` lifts them into the graph.
All arrays are channels-last: images are (N, H, W, C).
"""
