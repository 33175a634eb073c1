"""Watch a gradient check catch a bug: plant one in a copy of a layer's backward.

    python examples/gradcheck_demo.py [--bug batchnorm|maxpool|conv|all]

For each bug, the demo copies the real backward function's source, changes one
line (shown as a diff), and runs ``minicnn.gradcheck`` in float64 twice: with the
real backward (it passes) and with the planted copy (it fails, naming the worst
element, its index, and the analytic and numeric values there). The library itself
is never modified. Exit status 0 when every real backward passes and every
planted bug is caught.
"""
import argparse
import difflib
import inspect
import os
import sys
import textwrap

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # before numpy loads OpenBLAS: see minicnn/__init__.py
import numpy

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))  # run from a checkout too

from minicnn import gradcheck  # noqa: E402
from minicnn.autograd import Tensor, apply  # noqa: E402
from minicnn.backend import fast_kernels  # noqa: E402
from minicnn.functions import conv, normalization, pooling  # noqa: E402


class Bug:
    """One planted bug: ``original`` -> ``planted`` inside ``function``'s source."""

    def __init__(self, name, function, original, planted, story):
        self.name, self.function, self.original, self.planted = name, function, original, planted
        self.story = story

    def source(self):
        return textwrap.dedent(inspect.getsource(self.function))

    def buggy_source(self):
        source = self.source()
        if self.original not in source:  # the library changed under the demo: say so plainly
            raise RuntimeError(f"{self.function.__module__}.{self.function.__name__} no longer "
                               f"contains the line to plant the bug in: {self.original!r}")
        return source.replace(self.original, self.planted, 1)

    def buggy_copy(self):
        """The planted function, compiled in the real one's module namespace (so its
        helpers resolve), without touching the module itself."""
        namespace = dict(self.function.__globals__)
        exec(compile(self.buggy_source(), f"<planted bug: {self.name}>", "exec"), namespace)
        return namespace[self.function.__name__]

    def diff(self):
        lines = difflib.unified_diff(self.source().splitlines(), self.buggy_source().splitlines(),
                                     f"{self.function.__module__} (real)", "planted copy", n=1,
                                     lineterm="")
        return "\n".join(lines)


def float64(rng, *shape):
    return rng.standard_normal(shape)


def check_batchnorm(backward, rng):
    """Batch-norm over 6 samples of 4 features; checks x, gamma and beta."""
    x = Tensor(float64(rng, 6, 4), requires_grad=True, name="x")
    gamma = Tensor(1 + 0.1 * float64(rng, 4), requires_grad=True, name="gamma")
    beta = Tensor(float64(rng, 4), requires_grad=True, name="beta")
    forward = normalization.batch_norm_train_forward
    return gradcheck(lambda x_: apply(forward, backward, x_, gamma, beta), [x], params=[gamma, beta],
                     raise_exception=False)


def check_maxpool(backward, rng):
    """2x2 max-pooling of a (2, 4, 4, 3) input."""
    x = Tensor(float64(rng, 2, 4, 4, 3), requires_grad=True, name="x")
    forward = pooling.max_pool2d_forward
    return gradcheck(lambda x_: apply(forward, backward, x_, pool_size=2), [x], raise_exception=False)


def check_conv(backward, rng):
    """3x3 'same' convolution of a (2, 5, 5, 3) input with 4 filters; checks x, kernel, bias."""
    x = Tensor(float64(rng, 2, 5, 5, 3), requires_grad=True, name="x")
    kernel = Tensor(0.5 * float64(rng, 3, 3, 3, 4), requires_grad=True, name="kernel")
    bias = Tensor(float64(rng, 4), requires_grad=True, name="bias")
    forward = conv.conv2d_forward
    return gradcheck(lambda x_: apply(forward, backward, x_, kernel, bias, padding="same"), [x],
                     params=[kernel, bias], raise_exception=False)


BUGS = {
    "batchnorm": (Bug(
        "batchnorm", normalization.batch_norm_train_backward,
        "(m * gy - gbeta - x_hat * ggamma)", "(m * gy - x_hat * ggamma)",
        "Forgets that the batch mean depends on every sample: the '- gbeta' term, the "
        "gradient that flows through the mean, is dropped."), check_batchnorm),
    "maxpool": (Bug(
        "maxpool", pooling.max_pool2d_backward,
        "xp.where(winner == k, gy, zero)", "gy / (ph * pw)",
        "Spreads each window's gradient evenly over its 4 pixels, as average-pooling "
        "would, instead of sending it all to the maximum."), check_maxpool),
    "conv": (Bug(
        "conv", conv.conv2d_backward,
        "gb = accurate_sum(gy2, axis=0)", "gb = gy2.mean(axis=0)",
        "Averages the bias gradient over the output positions instead of summing it: "
        "the bias is added at every position, so each position contributes."), check_conv),
}


def run(name, out=print):
    """Check the real and the planted backward of one bug; True if the demo came out
    as it should (real passes, planted fails)."""
    bug, check = BUGS[name]
    out(f"=== {name}: {bug.function.__module__}.{bug.function.__name__}")
    out(textwrap.fill(bug.story, 88))
    out(bug.diff())
    # the reference kernels: the planted copies are of the plain code paths
    with fast_kernels(False):
        real = check(bug.function, numpy.random.default_rng(0))
        planted = check(bug.buggy_copy(), numpy.random.default_rng(0))
    out(f"real backward:    {real}")
    out(f"planted backward: {planted}")
    if not planted.ok:
        out(f"  -> caught: worst element is {planted.tensor} at index {planted.index}, "
            f"analytic {planted.analytic:.6g} vs numeric {planted.numeric:.6g}")
    out("")
    return real.ok and not planted.ok


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bug", choices=[*BUGS, "all"], default="all")
    args = p.parse_args(argv)
    names = list(BUGS) if args.bug == "all" else [args.bug]
    results = [run(name) for name in names]
    caught = sum(results)
    print(f"{caught} of {len(names)} planted bugs caught, with the real backward passing")
    return 0 if caught == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
