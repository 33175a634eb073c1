"""Two residual networks for CIFAR-10, written with the functional API (docs/10 says why
the identity path helps):

* ``resnet20``: He et al. 2016 ("Deep Residual Learning", section 4.2), as Keras's CIFAR-10
  ResNet example builds it (v1): a 3x3 conv, then three stages of three blocks with 16,
  32 and 64 filters, each block conv-BN-ReLU-conv-BN plus its input, then ReLU; the
  first block of stages 2 and 3 halves the image and widens the shortcut with a strided
  1x1 conv. Global average pooling (an 8x8 average) and a softmax layer. 274,442
  parameters (273,066 trainable), the 0.27M of the paper.
* ``resnet9``: David Page's DAWNBench ResNet-9 ("How to train your ResNet", 2018): prep
  conv 64, then conv-BN-ReLU-pool stages of 128, 256 and 512 filters, with a residual
  pair of convs after the first and the last, a global max pool, a bias-free dense layer
  and a logit scale of 0.125. 6,573,120 trainable parameters (4,480 more in the batch-norm
  moving statistics).
"""
from .layers import (Activation, Add, BatchNormalization, Conv2D, Dense, Flatten, GlobalAveragePooling2D, Input,
                     MaxPooling2D, Rescaling)
from .models import Model

INPUT_SHAPE = (32, 32, 3)


def _conv_bn(x, filters, kernel=3, strides=1, relu=True):
    """conv (he_normal, as Keras's example) -> batch-norm -> ReLU (optional). The weight
    decay is the recipe's optimizer's (He et al.'s 1e-4 on the gradient); Keras's example
    puts l2(1e-4) on each kernel instead, which is 2e-4 on the gradient."""
    x = Conv2D(filters, kernel, strides, padding="same", kernel_initializer="he_normal")(x)
    x = BatchNormalization()(x)
    return Activation("relu")(x) if relu else x


def resnet20(num_classes=10):
    """(N, 32, 32, 3) -> (N, num_classes) probabilities: 3 stages x 3 basic blocks, 20 layers
    with weights (19 convs and the dense layer; the two 1x1 shortcut convs not counted)."""
    inputs = Input(INPUT_SHAPE)
    x = _conv_bn(inputs, 16)
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            strides = 2 if stage > 0 and block == 0 else 1  # the first block of stages 2, 3 halves the image
            y = _conv_bn(x, filters, strides=strides)
            y = _conv_bn(y, filters, relu=False)
            if strides != 1:  # the shortcut must match: a strided 1x1 conv, no batch-norm
                x = Conv2D(filters, 1, strides, padding="same", kernel_initializer="he_normal")(x)
            x = Activation("relu")(Add()([x, y]))
    x = GlobalAveragePooling2D()(x)  # Keras's example: AveragePooling2D(8) then Flatten, the same numbers
    outputs = Dense(num_classes, activation="softmax", kernel_initializer="he_normal")(x)
    return Model(inputs, outputs, name="resnet20")


def _page_conv(x, filters):
    """Page's conv_bn: a bias-free 3x3 conv, batch-norm, ReLU."""
    x = Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_uniform")(x)
    return Activation("relu")(BatchNormalization(momentum=0.9, epsilon=1e-5)(x))


def resnet9(num_classes=10):
    """(N, 32, 32, 3) -> (N, num_classes) probabilities: the softmax of Page's logits, which
    are scaled by 0.125 (minicnn's loss takes the logits before that softmax)."""
    inputs = Input(INPUT_SHAPE)
    x = _page_conv(inputs, 64)
    for filters, residual in ((128, True), (256, False), (512, True)):
        x = MaxPooling2D(2)(_page_conv(x, filters))
        if residual:
            x = Add()([x, _page_conv(_page_conv(x, filters), filters)])
    x = Flatten()(MaxPooling2D(4)(x))  # the 4x4 maps' maximum: a global max pool
    x = Dense(num_classes, use_bias=False, kernel_initializer="he_uniform")(x)
    return Model(inputs, Activation("softmax")(Rescaling(0.125)(x)), name="resnet9")
