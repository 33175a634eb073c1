"""What fit prints: a live bar on a terminal or in Jupyter, and in a redirected log, lines
that are there (flushed) while the run goes on."""
import os
import subprocess
import sys
import textwrap
import time

import numpy

from minicnn import progress
from minicnn.layers import Dense, Flatten
from minicnn.models import Sequential

ROOT = os.path.join(os.path.dirname(__file__), "..")


def tiny():
    model = Sequential([Flatten(input_shape=(4, 4, 1)), Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data():
    rng = numpy.random.default_rng(0)
    return rng.random((40, 4, 4, 1), dtype=numpy.float32), rng.integers(0, 3, 40)


def test_a_redirected_log_holds_each_finished_epoch_while_the_run_goes_on(tmp_path):
    """The run pauses 1.5 s after each epoch; while it is paused after epoch 1, the log
    file (stdout redirected, not a terminal) must already hold epoch 1's line."""
    script = textwrap.dedent("""
        import sys, time
        import numpy
        sys.path.insert(0, sys.argv[1])
        from minicnn.callbacks import Callback
        from minicnn.layers import Dense, Flatten
        from minicnn.models import Sequential

        class Pause(Callback):
            def on_epoch_end(self, epoch, logs=None):
                time.sleep(1.5)
        model = Sequential([Flatten(input_shape=(4, 4, 1)), Dense(3, activation="softmax")])
        model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
        x = numpy.random.default_rng(0).random((40, 4, 4, 1), dtype=numpy.float32)
        model.fit(x, numpy.arange(40) % 3, epochs=3, verbose=1, callbacks=[Pause()])
    """)
    log = tmp_path / "log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-c", script, ROOT], stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 120
            while "2/2 - " not in log.read_text() and time.time() < deadline and process.poll() is None:
                time.sleep(0.05)
            text = log.read_text()
            still_running = process.poll() is None
        finally:
            process.wait(timeout=120)
    assert still_running, "the run ended before its first epoch's line could be checked"
    assert "Epoch 1/3" in text and "2/2 - " in text and "loss: " in text and "Epoch 3/3" not in text


def test_a_long_epoch_in_a_log_gets_a_line_every_period(monkeypatch, capsys):
    monkeypatch.setattr(progress, "PERIOD", 0.0)  # a line after every batch
    x, y = data()
    tiny().fit(x, y, batch_size=10, epochs=1, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/1"
    assert [line.split(" - ")[0] for line in lines[1:4]] == ["1/4", "2/4", "3/4"]
    assert lines[4].startswith("4/4 - ") and "ms/step" in lines[4] and len(lines) == 5


def test_jupyter_gets_the_live_bar(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ipykernel", type(sys)("ipykernel"))
    monkeypatch.setattr(progress, "REFRESH", 0.0)
    x, y = data()
    tiny().fit(x, y, batch_size=10, epochs=1, verbose=1)
    out = capsys.readouterr().out
    assert "\r" in out and "[" in out and "] - " in out  # the bar, redrawn in place


def test_verbose_2_prints_one_line_per_epoch_and_0_nothing(capsys):
    x, y = data()
    tiny().fit(x, y, epochs=2, verbose=2)
    assert capsys.readouterr().out.count("ms/step") == 2
    tiny().fit(x, y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""
