"""What fit prints while it trains: Keras's progress bar, and lines a log file can use.

Three ways to show an epoch, chosen by where the output goes:
  * a terminal or a Jupyter notebook (verbose=1): a live bar, redrawn in place at most
    twice a second (a notebook understands the carriage return as a terminal does);
  * anything else, e.g. ``nohup python train.py > log`` (verbose=1): a line every
    PERIOD seconds within a long epoch, and one line when it ends;
  * verbose=2: only the line at the end of each epoch.
Every line is flushed as it is written, so a redirected log is current while the run
goes on. Reading the running loss makes a GPU wait for its queued work, so it is read
only when something is about to be shown, never every batch.
"""
import sys
import time

PERIOD = 30.0  # seconds between progress lines in a log file
REFRESH = 0.5  # seconds between redraws of a live bar


def shown(name, value):
    """'loss: 0.4321'; a learning rate to 4 significant digits; a figure of several numbers
    (a score per class, per threshold) as '[0.8123 0.7741 ...]', each to 4 places."""
    if isinstance(value, (list, tuple)):
        return f"{name}: [{' '.join(f'{v:.4f}' for v in value)}]"
    return f"{name}: {value:.4g}" if name == "learning_rate" else f"{name}: {value:.4f}"


def interactive(stream):
    """A terminal, or a Jupyter kernel's output (which redraws a line on '\\r')."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) or "ipykernel" in sys.modules


class Progress:
    """Progress of one epoch of ``steps`` batches. ``update`` takes the running sums
    (device scalars); ``finish`` prints the epoch's line with its logs."""

    def __init__(self, epoch, epochs, steps, verbose, stream=None):
        self.stream = stream or sys.stdout
        self.steps, self.verbose = steps, verbose
        self.live = verbose == 1 and interactive(self.stream)
        self.periodic = verbose == 1 and not self.live
        self.start = self.last = time.perf_counter()
        self.train_seconds, self.seen = None, 0
        if verbose:
            self._write(f"Epoch {epoch + 1}/{epochs}\n")

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()

    def update(self, step, seen, running):
        """After batch ``step`` (from 1): ``running()`` gives {name: mean so far}, read
        only if a line is due now."""
        if not (self.live or self.periodic):
            return
        now = time.perf_counter()
        due = REFRESH if self.live else PERIOD
        if now - self.last < due or (step == self.steps and not self.live):
            return
        self.last = now
        values = " - ".join(shown(k, v) for k, v in running().items())
        rate = seen / max(now - self.start, 1e-9)
        if self.live:
            filled = 30 * step // self.steps
            bar = "=" * filled + (">" if filled < 30 else "") + "." * (29 - filled)
            self._write(f"\r{step}/{self.steps} [{bar}] - {rate:.0f} img/s - {values}")
        else:
            self._write(f"{step}/{self.steps} - {now - self.start:.0f}s - {rate:.0f} img/s - {values}\n")

    def training_done(self, seen):
        """Stop the clock before validation, so ms/step and img/s count training only."""
        self.train_seconds, self.seen = time.perf_counter() - self.start, seen

    def finish(self, logs):
        if not self.verbose:
            return
        elapsed = time.perf_counter() - self.start
        train = self.train_seconds if self.train_seconds is not None else elapsed
        metrics = " - ".join(shown(k, v) for k, v in logs.items())
        prefix = "\r" if self.live else ""
        self._write(f"{prefix}{self.steps}/{self.steps} - {elapsed:.0f}s {1000 * train / self.steps:.0f}ms/step "
                    f"- {self.seen / max(train, 1e-9):.0f} img/s - {metrics}\n")

    def abandon(self):
        """End a live bar's line when the epoch stops early (a diverged run)."""
        if self.live:
            self._write("\n")
