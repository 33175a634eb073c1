"""Optimizers with Keras's update rules and names, and learning-rate schedules.

    base.py       Optimizer: the loop every optimizer shares (groups, weight decay, state)
    clipping.py   clipnorm, global_clipnorm, clipvalue: gradients bounded before the update
    sgd.py        SGD: momentum, Nesterov, Keras 2's time-based decay
    adam.py       Adam, AdamW (Adam with decoupled weight decay on), Nadam (Nesterov's momentum),
                  Adamax (the infinity norm)
    rmsprop.py    RMSprop: plain, with momentum, centered
    adagrad.py    Adagrad (every squared gradient summed), Adadelta (a ratio of two running roots)
    lion.py       Lion: steps of the learning rate itself, in the sign of a momentum
    lamb.py       Lamb: Adam's step rescaled to lr * ||w|| per weight array (large batches)
    adafactor.py  Adafactor: the second moment as row and column averages, steps relative to ||w||
    muon.py       Muon: each kernel's momentum orthogonalized (Newton-Schulz), AdamW for the rest
    schedules.py  learning rates that change with the step: ExponentialDecay, InverseTimeDecay,
                  PolynomialDecay, PiecewiseConstantDecay, CosineDecay (warm-up as in Keras 3),
                  CosineDecayRestarts, PiecewiseLinearDecay, and the LearningRateSchedule base class
    lookahead.py  Lookahead: the weights pulled back to their running average
    loss_scale.py LossScaleOptimizer: dynamic loss scaling for float16 training
"""
from . import schedules
from .adafactor import Adafactor
from .adagrad import Adadelta, Adagrad
from .adam import Adam, Adamax, AdamW, Nadam
from .base import Optimizer
from .lamb import Lamb
from .lion import Lion
from .lookahead import Lookahead
from .loss_scale import LossScaleOptimizer
from .muon import Muon
from .rmsprop import RMSprop
from .schedules import LearningRateSchedule
from .sgd import SGD


CLASSES = (SGD, Adam, AdamW, Nadam, Adamax, RMSprop, Adagrad, Adadelta, Lion, Lamb, Adafactor, Muon)


def deserialize(config):
    """An optimizer from its get_config() dict."""
    config = dict(config)
    name = config.pop("name", None)
    if name == "LossScaleOptimizer" and isinstance(config.get("inner_optimizer"), dict):
        return LossScaleOptimizer(deserialize(config.pop("inner_optimizer")), **config)
    classes = {cls.__name__: cls for cls in CLASSES}
    if name not in classes:
        raise ValueError(f"unknown optimizer class {name!r}; known: {sorted(classes)}")
    return classes[name](**config)


def get(identifier):
    """'sgd', 'adam', 'adamw', 'nadam', 'adamax', 'rmsprop', 'adagrad', 'adadelta', 'lion', 'lamb',
    'adafactor', 'muon' (Keras's defaults), an Optimizer or a LossScaleOptimizer."""
    if isinstance(identifier, (Optimizer, LossScaleOptimizer)):
        return identifier
    by_name = {cls.__name__.lower(): cls for cls in CLASSES}
    if isinstance(identifier, str) and identifier.lower() in by_name:
        return by_name[identifier.lower()]()
    raise ValueError(f"unknown optimizer {identifier!r}; use one of {sorted(by_name)} or an Optimizer instance")
