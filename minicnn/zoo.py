"""The models of the CIFAR-10 tutorials in ../shared/seeds, written line for line,
with the training settings each tutorial used.

Each model function returns an uncompiled model built for (32, 32, 3) inputs: the
tutorials' ``Sequential`` networks, and two residual networks (minicnn/resnets.py).
``RECIPES[name]`` holds that tutorial's optimizer, batch size, epochs, augmentation and
published accuracy; ``build(name)`` returns the model and its recipe.
"""
from dataclasses import dataclass, field
from typing import Callable, Optional

from . import optimizers
from .constraints import max_norm
from .layers import Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from .models import Sequential
from .optimizers.schedules import PiecewiseConstantDecay, PiecewiseLinearDecay
from .resnets import resnet9, resnet20

INPUT_SHAPE = (32, 32, 3)


def seed000_sequential():
    """Seed 000: three valid 3x3 convs, dropout, batch-norm over 15,488 features, two dense.
    Keras summary: 4,122,954 params, 30,976 non-trainable (the moving statistics)."""
    return Sequential([
        Conv2D(32, (3, 3), activation="relu", input_shape=INPUT_SHAPE),
        MaxPooling2D((2, 2)),
        Conv2D(64, (3, 3), activation="relu"),
        Dropout(0.25),
        Conv2D(128, (3, 3), activation="relu"),
        Dropout(0.25),
        Flatten(),
        BatchNormalization(),
        Dense(256, activation="relu"),
        Dense(10, activation="softmax"),
    ], name="seed000_sequential")


def seed001_model0():
    """Seed 001, Model 0: 91,946 params. The text derives sizes for 256x256 images
    (254, 127, 125, 62, 60), but its parameter counts (Dense 256*256+256 = 65,792 fed by a
    2x2x64 flatten) only fit 32x32 inputs with three conv+pool stages of 16, 32, 64 filters."""
    return Sequential([
        Conv2D(16, (3, 3), 1, activation="relu", input_shape=INPUT_SHAPE),
        MaxPooling2D(),
        Conv2D(32, (3, 3), 1, activation="relu"),
        MaxPooling2D(),
        Conv2D(64, (3, 3), 1, activation="relu"),
        MaxPooling2D(),
        Flatten(),
        Dense(256, activation="relu"),
        Dense(10, activation="softmax"),
    ], name="seed001_model0")


def seed001_model1(name="seed001_model1"):
    """Seed 001, Model 1 (and 2, same architecture): 3,404,042 params. The printed code
    starts mid-model; 3,404,042 = 224 + 1,168 + 4,640 (convs of 8, 16, 32 filters) +
    387,000 + 3,001,000 + 10,010 (Dense 3000, 1000, 10 on a 2x2x32 flatten)."""
    return Sequential([
        Conv2D(8, (3, 3), 1, activation="relu", input_shape=INPUT_SHAPE),
        MaxPooling2D(),
        Conv2D(16, (3, 3), 1, activation="relu"),
        MaxPooling2D(),
        Conv2D(32, (3, 3), 1, activation="relu"),
        MaxPooling2D(),
        Flatten(),
        Dense(3000, activation="relu"),
        Dense(1000, activation="relu"),
        Dense(10, activation="softmax"),
    ], name=name)


def seed001_model2():
    """Seed 001, Model 2: the tutorial gives it Model 1's architecture and parameter count."""
    return seed001_model1(name="seed001_model2")


def seed002_cnn():
    """Seed 002 (TensorFlow 1.8): "5 convolutional layers having max-pooling and dropout in
    some of the layers ... 3 fully connected layers". The README gives no filter counts or
    sizes, so this is a reconstruction of that description in the usual widths: conv pairs
    of 32 and 64 filters and a single 128 conv, each stage max-pooled with dropout 0.25,
    then Dense 512, 256, 10. Its README says the last layer is a sigmoid giving "a
    probability distribution among the 10 classes"; only a softmax gives that, and TF1
    code of the time trained on the logits with softmax cross-entropy, so softmax it is
    (the argmax, hence accuracy, is the same)."""
    return Sequential([
        Conv2D(32, (3, 3), padding="same", activation="relu", input_shape=INPUT_SHAPE),
        Conv2D(32, (3, 3), padding="same", activation="relu"),
        MaxPooling2D((2, 2)),
        Dropout(0.25),
        Conv2D(64, (3, 3), padding="same", activation="relu"),
        Conv2D(64, (3, 3), padding="same", activation="relu"),
        MaxPooling2D((2, 2)),
        Dropout(0.25),
        Conv2D(128, (3, 3), padding="same", activation="relu"),
        MaxPooling2D((2, 2)),
        Dropout(0.25),
        Flatten(),
        Dense(512, activation="relu"),
        Dropout(0.5),
        Dense(256, activation="relu"),
        Dense(10, activation="softmax"),
    ], name="seed002_cnn")


def seed003_4layer():
    """Seed 003's 4-layer network (also seed 004's base model): 1,250,858 params."""
    return Sequential([
        Conv2D(32, (3, 3), padding="same", input_shape=INPUT_SHAPE),
        Activation("relu"),
        Conv2D(32, (3, 3)),
        Activation("relu"),
        MaxPooling2D(pool_size=(2, 2)),
        Dropout(0.25),
        Conv2D(64, (3, 3), padding="same"),
        Activation("relu"),
        Conv2D(64, (3, 3)),
        Activation("relu"),
        MaxPooling2D(pool_size=(2, 2)),
        Dropout(0.25),
        Flatten(),
        Dense(512),
        Activation("relu"),
        Dropout(0.5),
        Dense(10),
        Activation("softmax"),
    ], name="seed003_4layer")


def seed003_6layer():
    """Seed 003's 6-layer network with max-norm(3) on the big dense layer: 2,395,434 params."""
    return Sequential([
        Conv2D(32, (3, 3), padding="same", activation="relu", input_shape=INPUT_SHAPE),
        Dropout(0.2),
        Conv2D(32, (3, 3), padding="same", activation="relu"),
        MaxPooling2D(pool_size=(2, 2)),
        Conv2D(64, (3, 3), padding="same", activation="relu"),
        Dropout(0.2),
        Conv2D(64, (3, 3), padding="same", activation="relu"),
        MaxPooling2D(pool_size=(2, 2)),
        Conv2D(128, (3, 3), padding="same", activation="relu"),
        Dropout(0.2),
        Conv2D(128, (3, 3), padding="same", activation="relu"),
        MaxPooling2D(pool_size=(2, 2)),
        Flatten(),
        Dropout(0.2),
        Dense(1024, activation="relu", kernel_constraint=max_norm(3)),
        Dropout(0.2),
        Dense(10, activation="softmax"),
    ], name="seed003_6layer")


def seed004_base():
    """Seed 004's base model (the 4-layer network with activations inline): 1,250,858 params."""
    return Sequential([
        Conv2D(32, (3, 3), padding="same", activation="relu", input_shape=INPUT_SHAPE),
        Conv2D(32, (3, 3), activation="relu"),
        MaxPooling2D(pool_size=(2, 2)),
        Conv2D(64, (3, 3), padding="same", activation="relu"),
        Conv2D(64, (3, 3), activation="relu"),
        MaxPooling2D(pool_size=(2, 2)),
        Flatten(),
        Dense(512, activation="relu"),
        Dropout(0.5),
        Dense(10, activation="softmax"),
    ], name="seed004_base")


def seed004_vgg16():
    """Seed 004's VGG16 + Dense(512) + Dense(10) head, trained from scratch: ImageNet
    weights cannot be fetched here. The conv base has Keras VGG16's 14,714,688 params."""
    layers = []
    for stage, (filters, convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]):
        for i in range(convs):
            extra = {"input_shape": INPUT_SHAPE} if not layers else {}
            layers.append(Conv2D(filters, (3, 3), padding="same", activation="relu",
                                 name=f"block{stage + 1}_conv{i + 1}", **extra))
        layers.append(MaxPooling2D((2, 2), strides=(2, 2), name=f"block{stage + 1}_pool"))
    layers += [Flatten(), Dense(512, activation="relu"), Dense(10, activation="softmax")]
    return Sequential(layers, name="seed004_vgg16")


def seed004_augmented():
    """Seed 004's base model again, trained with its ImageDataGenerator augmentation."""
    model = seed004_base()
    model.name = "seed004_augmented"
    return model


MODELS = {fn.__name__: fn for fn in (seed000_sequential, seed001_model0, seed001_model1,
                                     seed001_model2, seed002_cnn, seed003_4layer, seed003_6layer,
                                     seed004_base, seed004_augmented, seed004_vgg16, resnet20, resnet9)}


@dataclass
class Recipe:
    """How a tutorial trained its model. ``published``: the test accuracy it reported
    (None where it reported none comparable); ``notes``: what the text did not say."""
    optimizer: Callable[[], optimizers.Optimizer]
    batch_size: int
    epochs: int
    augment: str = "none"        # a name in minicnn.data.AUGMENTATIONS
    published: Optional[float] = None
    notes: list = field(default_factory=list)


KERAS_BATCH_NOTE = _KERAS_BATCH = "batch size not given; Keras's default of 32"
RECIPES = {
    "seed000_sequential": Recipe(
        optimizers.Adam, 256, 50, published=0.7008,
        notes=["196 steps per epoch over 50,000 images: batch 256", "optimizer not shown; Adam assumed",
               "published: val_acc 0.7008 after epoch 50 (0.7008-0.7233 over the last epochs)"]),
    "seed001_model0": Recipe(optimizers.Adam, 32, 10, published=0.7955,
                             notes=[_KERAS_BATCH, "published: 'accuracy after 10th epoch' (training)"]),
    "seed001_model1": Recipe(optimizers.Adam, 32, 10, published=0.7925,
                             notes=[_KERAS_BATCH, "published: 'accuracy after 10th epoch' (training)"]),
    "seed001_model2": Recipe(optimizers.Adam, 32, 10, published=0.5813,
                             notes=[_KERAS_BATCH, "published: 'accuracy after 10th epoch' (training)",
                                    "the tutorial says models 1 and 2 'differ' without saying in what (same "
                                    "architecture, same compile call); with model 1's recipe and seed this is "
                                    "model 1's run, number for number (measured: 78.64% train, not 58.13%)"]),
    "seed002_cnn": Recipe(
        optimizers.Adam, 128, 27, published=None,
        notes=["architecture reconstructed from the README's description (no sizes given)",
               "batch 128 from its table; 27 epochs from its log (epochs 0..26); optimizer not "
               "given, Adam assumed", "its 96.08% was measured on 10,000 of the training images "
               "and is not a test-set figure"]),
    "seed003_4layer": Recipe(lambda: optimizers.SGD(lr=0.1, decay=1e-6, nesterov=True), 32, 50,
                             published=0.7532, notes=[_KERAS_BATCH, "published: 75.32% at 50 epochs"]),
    "seed003_6layer": Recipe(lambda: optimizers.SGD(lr=0.01, momentum=0.9, decay=1e-6), 32, 10,
                             published=0.7561, notes=[_KERAS_BATCH, "published: 75.61% at 10 epochs"]),
    "seed004_base": Recipe(optimizers.Adam, 128, 2, published=0.6603,
                           notes=["published: 66.03% after 2 epochs; 63.27% on a second run"]),
    "seed004_augmented": Recipe(optimizers.Adam, 128, 4, augment="seed004", published=0.6893,
                                notes=["published: val 68.93% after 2 augmented epochs that continued "
                                       "the base model's 2 plain ones; here all 4 epochs are augmented"]),
    # He et al.: SGD momentum 0.9, weight decay 1e-4, batch 128, lr 0.1 divided by 10 at 32k and 48k
    # iterations, stopping at 64k (164 epochs of 391 steps), pad-4 crops and flips; 8.75% test error.
    "resnet20": Recipe(lambda: optimizers.SGD(PiecewiseConstantDecay([32000, 48000], [0.1, 0.01, 0.001]),
                                              momentum=0.9, l2=1e-4), 128, 164, augment="crop-flip",
                       published=0.9125, notes=["published: 8.75% test error (He et al. 2016, table 6)",
                                                "weight decay as PyTorch's (through the gradient), on every weight"]),
    # Page: batch 512, 24 epochs, Nesterov SGD, one-cycle lr 0 -> 0.4 (epoch 5) -> 0, weight decay
    # 5e-4, crops, flips (and 8x8 cutout, not done here); 94% test accuracy.
    "resnet9": Recipe(lambda: optimizers.SGD(PiecewiseLinearDecay([0, 5 * 98, 24 * 98], [0.0, 0.4, 0.0]),
                                             momentum=0.9, nesterov=True, l2=5e-4), 512, 24, augment="crop-flip",
                      published=0.94, notes=["published: 94% in 24 epochs (DAWNBench, David Page 2018)",
                                             "98 steps per epoch (50,000 images, batch 512) in the schedule",
                                             "no cutout augmentation"]),
    "seed004_vgg16": Recipe(optimizers.Adam, 64, 2, published=None,
                            notes=["ImageNet weights cannot be fetched here: trained from scratch, "
                                   "so its 58.26% (frozen ImageNet base) is not comparable",
                                   "a plain 16-layer network (no batch-norm), Glorot-initialised: the tutorial's "
                                   "Adam at 1e-3 was meant for the new head on a pretrained base, and from scratch "
                                   "it may not leave chance level in 2 epochs"]),
}


def build(name):
    """(uncompiled model, Recipe) for a zoo name, or a ValueError listing the names."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; the zoo has: {', '.join(sorted(MODELS))}")
    return MODELS[name](), RECIPES[name]
