"""The models of the CIFAR-10 tutorials in ../shared/seeds, written line for line.

Each function returns an uncompiled ``Sequential`` built for (32, 32, 3) inputs.
(Training defaults per tutorial — optimizer, batch size, epochs — belong with the
CIFAR-10 tooling.)
"""
from .constraints import max_norm
from .layers import Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from .models import Sequential

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


MODELS = {fn.__name__: fn for fn in (seed000_sequential, seed001_model0, seed001_model1,
                                     seed001_model2, seed003_4layer, seed003_6layer,
                                     seed004_base, seed004_vgg16)}
