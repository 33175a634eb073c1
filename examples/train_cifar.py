"""Train a seed-tutorial model on CIFAR-10 and report test accuracy.

    python examples/train_cifar.py --device cpu --data DIR [--model seed004_base]
        [--epochs 2] [--batch-size 128] [--optimizer adam] [--lr 0.001] [--limit N] [--seed 0]

DIR holds ``cifar-10-batches-py`` (or is it). Images are scaled to [0, 1] as in the
tutorials. At the end: test accuracy, accuracy per class, and the confusion matrix.
"""
import argparse
import os
import sys
import time

import numpy

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))  # run from a checkout too

import minicnn  # noqa: E402
from minicnn import optimizers, zoo  # noqa: E402
from minicnn.datasets import cifar10  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--model", choices=sorted(zoo.MODELS), default="seed004_base")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--lr", type=float, default=None, help="default: the optimizer's Keras default")
    p.add_argument("--data", default=None, help="folder with cifar-10-batches-py")
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        p.error("--epochs, --batch-size and --limit must be positive")
    return args


def confusion_matrix(truth, predicted, classes=10):
    matrix = numpy.zeros((classes, classes), dtype=int)
    numpy.add.at(matrix, (truth, predicted), 1)
    return matrix


def main(argv=None):
    args = parse_args(argv)
    minicnn.set_device(args.device)
    minicnn.set_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = cifar10.load_data(args.data)
    names = cifar10.load_class_names(args.data)
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    x_train = x_train.astype(numpy.float32) / 255
    x_test = x_test.astype(numpy.float32) / 255

    model = zoo.MODELS[args.model]()
    model.summary()
    optimizer = optimizers.get(args.optimizer)
    if args.lr is not None:
        optimizer.learning_rate = args.lr
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
              validation_data=(x_test, y_test), seed=args.seed)
    seconds = time.perf_counter() - start

    predicted = model.predict(x_test, batch_size=500).argmax(axis=1)
    truth = y_test[:, 0]
    matrix = confusion_matrix(truth, predicted)
    print(f"\nTest accuracy: {(predicted == truth).mean():.4f}  "
          f"({args.model}, {args.epochs} epochs, {args.device}, {seconds / args.epochs:.1f} s/epoch)")
    for i, name in enumerate(names):
        print(f"  {name:<11}{matrix[i, i] / matrix[i].sum():.3f}")
    print("Confusion matrix (rows: true class, columns: predicted):")
    print(matrix)


if __name__ == "__main__":
    main()
