"""Datasets read from their original files."""
from . import cifar10

__all__ = ["cifar10"]
