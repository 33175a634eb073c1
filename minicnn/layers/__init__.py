"""Layers with Keras's names and arguments. Each owns its weights and calls the
differentiable ops in ``minicnn.functional``."""
from .activation import ELU, LeakyReLU, PReLU, ReLU, Softmax
from .augmentation import (RandomBrightness, RandomContrast, RandomCrop, RandomFlip, RandomRotation, RandomShear,
                           RandomTranslation, RandomZoom)
from .base import Layer
from .color import (RandomColorJitter, RandomHue, RandomInvert, RandomPosterization, RandomSaturation,
                    Solarization)
from .convolutional import Conv2D
from .data_normalization import Normalization
from .erasing import RandomErasing, RandomGrayscale
from .mixing import CutMix, MixUp
from .core import Activation, Dense, Dropout, Flatten, Identity, Permute, Rescaling, Reshape, SpatialDropout2D
from .image_preprocessing import CenterCrop, Resizing
from .input_layer import Input, InputLayer
from .lambda_layer import Lambda
from .merging import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from .nested import NestedModel
from .noise import GaussianDropout, GaussianNoise
from .normalization import BatchNormalization, GroupNormalization, LayerNormalization
from .randaugment import RandAugment
from .tone import AutoContrast, Equalization, RandomColorDegeneration, RandomSharpness
from .pooling import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D
from .reshaping import Cropping2D, UpSampling2D, ZeroPadding2D
from .separable import DepthwiseConv2D, SeparableConv2D
from .transposed import Conv2DTranspose

MaxPool2D = MaxPooling2D  # Keras's aliases
AvgPool2D = AveragePooling2D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool2D = GlobalMaxPooling2D

__all__ = ["Layer", "Input", "InputLayer", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Conv2D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D",
           "MaxPooling2D", "MaxPool2D", "AveragePooling2D", "AvgPool2D",
           "GlobalAveragePooling2D", "GlobalAvgPool2D", "GlobalMaxPooling2D", "GlobalMaxPool2D", "ZeroPadding2D",
           "Cropping2D", "UpSampling2D",
           "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "Dense", "Flatten", "Reshape", "Permute", "Identity", "Activation", "Rescaling", "Dropout",
           "SpatialDropout2D", "BatchNormalization", "LayerNormalization", "GroupNormalization", "RandomFlip", "RandomTranslation",
           "RandomRotation", "NestedModel", "RandomZoom", "RandomContrast", "RandomBrightness", "RandomCrop", "RandomErasing",
           "RandomGrayscale", "RandomHue", "RandomSaturation", "RandomColorJitter", "RandomInvert",
           "Solarization", "RandomPosterization", "RandomShear", "AutoContrast", "Equalization",
           "RandomColorDegeneration", "RandomSharpness", "RandAugment", "MixUp", "CutMix", "Resizing", "CenterCrop",
           "Normalization", "GaussianNoise", "GaussianDropout", "Lambda"]
