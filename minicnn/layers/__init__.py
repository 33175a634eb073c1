"""Layers with Keras's names and arguments. Each owns its weights and calls the
differentiable ops in ``minicnn.functional``."""
from .base import Layer
from .convolutional import Conv2D, MaxPooling2D
from .core import Activation, Dense, Dropout, Flatten, Rescaling
from .normalization import BatchNormalization

MaxPool2D = MaxPooling2D  # Keras's alias

__all__ = ["Layer", "Conv2D", "MaxPooling2D", "MaxPool2D", "Dense", "Flatten", "Activation",
           "Rescaling", "Dropout", "BatchNormalization"]
