"""benchmarks/accuracy.py: README.md's accuracy table is exactly what the committed run
records give (it cannot drift from what was measured), and the rows it derives."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import accuracy  # noqa: E402


def test_the_readme_table_is_generated_from_the_committed_records():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert accuracy.readme_with_table(readme, accuracy.records()) == readme, \
        "README.md's accuracy table differs from the records: run python benchmarks/accuracy.py report"


def record(model, epochs, **extra):
    history = {"epoch": list(range(1, epochs + 1)), "loss": [1.0] * epochs,
               "accuracy": [0.5 + 0.01 * e for e in range(epochs)],
               "val_loss": [1.0] * epochs, "val_accuracy": [0.4 + 0.005 * e for e in range(epochs)]}
    return {"engine": "minicnn", "model": model, "epochs": epochs, "seed": 0, "device": "cpu",
            "machine": "test", "history": history, "test_accuracy": history["val_accuracy"][-1],
            "seconds_per_epoch": 12.3, "command": "python examples/train_cifar.py ...", **extra}


def test_rows_give_each_published_point():
    four = accuracy.rows([record("seed003_4layer", 50)])
    assert [(r[1], r[4], r[5]) for r in four] == [("10", "44.50%", "71.30%"), ("20", "49.50%", "74.60%"),
                                                 ("50", "64.50%", "75.32%")]
    one = accuracy.rows([record("seed001_model0", 10)])
    assert one[0][4] == "44.50% (train 59.00%)" and one[0][5] == "79.55%"
    held = accuracy.rows([record("seed002_cnn", 27, test_accuracy=0.61)])
    assert held[0][4] == "61.00% (held-out train 53.00%)" and held[0][5] == "-"
    assert "| model | epochs |" in accuracy.table([record("seed004_base", 2)])


def test_notes_explain_gaps_and_models_without_a_comparable_figure():
    """A model over 2 points from its figure gets a note with PyTorch beside it (or says none
    ran); one within 2 points gets none; one with no comparable figure gets a note, which
    says so when it stayed at chance level."""
    close = record("seed004_base", 2, test_accuracy=0.655)
    far = record("seed003_6layer", 10, test_accuracy=0.70)
    chance = record("seed004_vgg16", 2, test_accuracy=0.10)
    chance["history"]["loss"] = [2.3028, 2.3027]
    torch_far = dict(record("seed003_6layer", 10, test_accuracy=0.72), engine="torch")
    text = "\n".join(accuracy.gap_notes([close, far, chance]))
    assert "`seed004_base`" not in text
    assert "`seed003_6layer`: best minicnn figure 70.00% against 75.61% published (-5.61 points); " \
           "no PyTorch run beside it yet." in text
    assert "`seed004_vgg16`: no comparable published figure; best minicnn figure 10.00%, chance level: " \
           "the training loss ended at 2.3027 (ln 10 = 2.3026 is guessing)" in text
    assert "PyTorch, same recipe and data: 72.00%" in "\n".join(accuracy.gap_notes([far, torch_far]))


def test_torch_reference_holds_out_the_last_training_images_and_tests_at_the_end(tmp_path, monkeypatch):
    """seed002_cnn's recipe (--val-split 0.2) in PyTorch: trained on the first 80% of the
    training images, validated on the last 20%, the test set evaluated once after the last
    epoch, and accuracy.py's record takes the test set's figure, not the held-out one."""
    pytest.importorskip("torch")
    from conftest import write_fake_cifar
    write_fake_cifar(tmp_path, per_batch=10)  # 50 training images, 10 test images
    monkeypatch.setattr(accuracy, "WORK", str(tmp_path / "work"))  # its checkpoint and log
    done = subprocess.run([sys.executable, "benchmarks/torch_reference.py", "--model", "seed004_base",
                           "--epochs", "2", "--data", str(tmp_path), "--val-split", "0.2"],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [(r["images"], r["val_images"]) for r in rows] == [(40, 10), (40, 10)]
    assert "test_accuracy" not in rows[0] and 0 <= rows[-1]["test_accuracy"] <= 1
    result = accuracy.run_torch("seed004_base", 2, 0, ["--val-split", "0.2"], "cpu", str(tmp_path))
    assert result["test_accuracy"] == rows[-1]["test_accuracy"]  # the same seed: the same run
    assert result["history"]["val_accuracy"][-1] == rows[-1]["val_accuracy"]
    assert result["command"].endswith("--val-split 0.2")
    with pytest.raises(ValueError, match="does not take"):
        accuracy.run_torch("seed004_base", 1, 0, ["--augment", "none"], "cpu", str(tmp_path))


def _torch_reference(data, *argv):
    done = subprocess.run([sys.executable, "benchmarks/torch_reference.py", "--model", "seed004_base",
                           "--data", str(data), *argv], cwd=ROOT, capture_output=True, text=True)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    for row in rows:
        del row["train_seconds"]
    return done, rows


def test_torch_reference_continues_from_its_checkpoint_to_the_same_end(tmp_path):
    """A run stopped after epoch 1 and run again with its --checkpoint prints every epoch and
    ends exactly where a straight run ends (weights, optimizer, schedule, shuffling and
    dropout streams all restored); a checkpoint of another run is refused by name."""
    pytest.importorskip("torch")
    from conftest import write_fake_cifar
    write_fake_cifar(tmp_path, per_batch=10)
    _, straight = _torch_reference(tmp_path, "--epochs", "3")
    checkpoint = str(tmp_path / "run.pt")
    _, first = _torch_reference(tmp_path, "--epochs", "1", "--checkpoint", checkpoint)
    _, continued = _torch_reference(tmp_path, "--epochs", "3", "--checkpoint", checkpoint)
    assert len(straight) == 3 and first == straight[:1]
    assert continued == straight
    done, _ = _torch_reference(tmp_path, "--epochs", "3", "--seed", "1", "--checkpoint", checkpoint)
    assert done.returncode != 0 and "run.pt was saved by another run" in done.stderr


@pytest.mark.gpu
def test_torch_reference_trains_on_the_gpu(tmp_path):
    """--device gpu (what `accuracy.py run --device gpu --engine torch` passes) trains on
    CUDA: the GPU machine's accuracy runs must not fall back to its CPU."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this PyTorch sees no CUDA GPU")
    from conftest import write_fake_cifar
    write_fake_cifar(tmp_path, per_batch=10)
    done, rows = _torch_reference(tmp_path, "--epochs", "2", "--device", "gpu", "--checkpoint", str(tmp_path / "g.pt"))
    assert done.returncode == 0, done.stderr
    assert [r["device"] for r in rows] == ["cuda", "cuda"] and 0 <= rows[-1]["val_accuracy"] <= 1


def test_torch_reference_builds_every_recipes_optimizer():
    """Every recipe of accuracy.py's plan has a PyTorch twin of its optimizer: seed003_4layer's
    Keras SGD(nesterov=True) without momentum (plain SGD in Keras) must not be refused."""
    torch = pytest.importorskip("torch")
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import torch_reference
    net = torch.nn.Linear(2, 2)
    for name, *_ in accuracy.PLAN:
        opt, _ = torch_reference.optimizer_for(name, net)
        if name == "seed003_4layer":
            assert isinstance(opt, torch.optim.SGD) and not opt.defaults["nesterov"] and opt.defaults["momentum"] == 0


def test_torch_reference_on_minicnns_draws_trains_train_cifars_run(tmp_path):
    """issue 17: with --draws minicnn, PyTorch starts from train_cifar.py's initial weights and
    takes its batches and dropout masks, so the two engines train the same run: per-epoch
    losses and accuracies agree to float32 rounding (seed003_6layer: five Dropout layers,
    max-norm, a last batch of 4). PyTorch's own draws give another run, so the agreement is
    the draws', not a loose tolerance."""
    pytest.importorskip("torch")
    from conftest import write_fake_cifar
    write_fake_cifar(tmp_path, per_batch=20, learnable=True)  # 100 training images, 20 test images
    subprocess.run([sys.executable, "examples/train_cifar.py", "--device", "cpu", "--model", "seed003_6layer",
                    "--epochs", "2", "--seed", "3", "--data", str(tmp_path), "--out", str(tmp_path / "run")],
                   cwd=ROOT, capture_output=True, text=True, check=True)
    with open(tmp_path / "run" / "history.json") as f:
        ours = json.load(f)
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    argv = ["--epochs", "2", "--seed", "3", "--data", str(tmp_path)]
    for draws, same in (("minicnn", True), ("torch", False)):
        done = subprocess.run([sys.executable, "benchmarks/torch_reference.py", "--model", "seed003_6layer",
                               *argv, "--draws", draws], cwd=ROOT, capture_output=True, text=True, check=True)
        rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        assert [r["draws"] for r in rows] == [draws, draws]
        alike = all(abs(r[k] - ours[k][e]) <= 1e-5 * max(1.0, abs(ours[k][e]))
                    for e, r in enumerate(rows) for k in keys)
        assert alike == same, (draws, rows, ours)


def _torch_rows(capsys, data, model, draws):
    """torch_reference.py's epoch lines for one run on ``data``, in this process (an import
    of torch per run would cost seconds)."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import torch_reference
    torch_reference.main(["--model", model, "--epochs", "1", "--seed", "3", "--data", str(data), "--draws", draws])
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_torch_reference_takes_one_kind_of_minicnns_draws_at_a_time(tmp_path, capsys):
    """issue 17: --draws init / order / masks takes one of minicnn's draws and leaves PyTorch's
    other streams as they are. On seed001_model0 (no Dropout layer) masks draw nothing, so
    --draws masks is PyTorch's own run and --draws init,order is minicnn's whole run; on
    seed003_6layer (five Dropout layers) each draw alone makes a run unlike both, and the
    three together are --draws minicnn. An unknown draw is refused by name."""
    pytest.importorskip("torch")
    from conftest import write_fake_cifar
    write_fake_cifar(tmp_path, per_batch=20, learnable=True)
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")

    def numbers(rows):
        return [[r[k] for k in keys] for r in rows]

    runs = {d: _torch_rows(capsys, tmp_path, "seed001_model0", d) for d in ("torch", "masks", "minicnn", "init,order")}
    assert numbers(runs["masks"]) == numbers(runs["torch"]) and runs["masks"][0]["draws"] == "masks"
    assert numbers(runs["init,order"]) == numbers(runs["minicnn"])
    assert numbers(runs["minicnn"]) != numbers(runs["torch"])

    runs = {d: _torch_rows(capsys, tmp_path, "seed003_6layer", d) for d in ("torch", "minicnn", "init", "order", "masks")}
    for single in ("init", "order", "masks"):
        assert runs[single][0]["draws"] == single
        assert numbers(runs[single]) != numbers(runs["torch"]) and numbers(runs[single]) != numbers(runs["minicnn"])
    rows = _torch_rows(capsys, tmp_path, "seed003_6layer", "masks,init,order")
    assert rows[0]["draws"] == "minicnn" and numbers(rows) == numbers(runs["minicnn"])

    with pytest.raises(SystemExit) as refused:
        _torch_rows(capsys, tmp_path, "seed003_6layer", "init,shuffle")
    assert refused.value.code == 2 and "unknown draws 'shuffle'" in capsys.readouterr().err
