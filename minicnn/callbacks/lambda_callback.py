"""LambdaCallback: a callback made of plain functions, one per hook, without a class."""
from .base import BATCH_HOOKS, Callback

HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_test_begin", "on_test_end",
         *BATCH_HOOKS)


class LambdaCallback(Callback):
    """Keras's LambdaCallback: ``LambdaCallback(on_epoch_end=lambda epoch, logs: print(logs))``.

    Each keyword names a hook and gives the function fit calls there, with the hook's
    arguments: (logs) for on_train_begin/end and on_test_begin/end, (epoch, logs) for
    on_epoch_begin/end, (batch, logs) for the batch hooks. Only the hooks given are called,
    so one without batch functions costs no per-batch synchronisation.
    """

    def __init__(self, **hooks):
        super().__init__()
        for name, function in hooks.items():
            if name not in HOOKS:
                raise TypeError(f"LambdaCallback: unknown hook {name!r}; the hooks are {', '.join(HOOKS)}")
            if not callable(function):
                raise TypeError(f"LambdaCallback: {name} must be a function, got {type(function).__name__}")
            setattr(self, name, function)  # on the instance: base.defines sees exactly these
