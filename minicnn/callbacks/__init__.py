"""Callbacks: code that ``fit`` calls at set points of training, with Keras's names,
arguments and call order.

    base.py           Callback (the hooks), History, and CallbackList (how fit calls them)
    checkpoint.py     ModelCheckpoint: save the model (or the best one) after an epoch
    backup.py         BackupAndRestore: a killed fit, run again, continues where it stopped
    stopping.py       EarlyStopping, TerminateOnNaN
    learning_rate.py  LearningRateScheduler, ReduceLROnPlateau
    csv_logger.py     CSVLogger: one row of logs per epoch
    lambda_callback.py  LambdaCallback: plain functions as hooks
    swap_ema.py       SwapEMAWeights: validate with the optimizer's averaged weights (use_ema)
    tensorboard.py    TensorBoard: the logs, weight histograms and the graph as TensorBoard event files

fit calls, in this order: set_model, set_params, on_train_begin; for each epoch
on_epoch_begin, then for each batch on_train_batch_begin and on_train_batch_end, then
on_test_begin / on_test_batch_begin / on_test_batch_end / on_test_end around the
validation, then on_epoch_end, whose logs hold loss, accuracy, val_loss, val_accuracy
and learning_rate; finally on_train_end. A callback that sets ``model.stop_training =
True`` ends training after the current batch or epoch.
"""
from .backup import BackupAndRestore
from .base import Callback, CallbackList, History
from .checkpoint import ModelCheckpoint
from .csv_logger import CSVLogger
from .lambda_callback import LambdaCallback
from .learning_rate import LearningRateScheduler, ReduceLROnPlateau
from .stopping import EarlyStopping, TerminateOnNaN
from .swap_ema import SwapEMAWeights
from .tensorboard import TensorBoard

__all__ = ["Callback", "CallbackList", "History", "BackupAndRestore", "ModelCheckpoint", "CSVLogger", "LambdaCallback",
           "LearningRateScheduler", "ReduceLROnPlateau", "EarlyStopping", "TerminateOnNaN", "SwapEMAWeights",
           "TensorBoard"]
