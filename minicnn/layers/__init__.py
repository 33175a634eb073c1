"""Layers with Keras's names and arguments. Each owns its weights and calls the
differentiable ops in ``minicnn.functional``."""
from .activation import LeakyReLU, ReLU
from .base import Layer
from .convolutional import Conv2D
from .core import Activation, Dense, Dropout, Flatten, Rescaling
from .input_layer import Input, InputLayer
from .merging import Add, Concatenate
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D
from .reshaping import ZeroPadding2D

MaxPool2D = MaxPooling2D  # Keras's aliases
AvgPool2D = AveragePooling2D
GlobalAvgPool2D = GlobalAveragePooling2D

__all__ = ["Layer", "Input", "InputLayer", "Add", "Concatenate", "Conv2D", "MaxPooling2D", "MaxPool2D", "AveragePooling2D", "AvgPool2D",
           "GlobalAveragePooling2D", "GlobalAvgPool2D", "ZeroPadding2D", "ReLU", "LeakyReLU", "Dense",
           "Flatten", "Activation", "Rescaling", "Dropout", "BatchNormalization"]
