"""The optimizers' updates on a GPU: every parameter of a step in a few kernel launches.

optimizers/sgd.py, adam.py, rmsprop.py and adagrad.py write each rule as array code for one parameter at a time;
read them first. On a GPU that array code is one kernel per operation: four launches per
parameter for SGD with momentum, twelve for Adam, two more for an L2 penalty and two for
decoupled weight decay. A small network's whole step is under a hundred launches, each
costing the host microseconds whatever its size, so here one kernel updates up to
TENSORS_PER_LAUNCH parameters at once, as PyTorch's "foreach" optimizers and Apex's
multi-tensor apply do:

* the launch has one thread per element of all its parameters, end to end; ``end{k}``
  is where parameter k's elements end, so thread i works on parameter k where
  end{k-1} <= i < end{k}, at element j = i - end{k-1} of it;
* each parameter has its own learning rate (parameter groups' lr_scale), decoupled decay
  and L2 factor, so one launch serves every group;
* the arithmetic is the array code's, in its order: the L2 term joins the gradient, the
  decoupled decay shrinks w, then the rule (tests compare the two).

Each kernel is built once, at import, for exactly TENSORS_PER_LAUNCH parameters, which is
what lets the tests build it with nvcc and run its body as C++; a launch with fewer fills
the other places with one-element spare arrays no thread reaches (their end is the last
real end). Each array is passed as one kernel argument (a pointer, its size, shape and
strides: at most 80 bytes for a 4-D array), so a full Adam launch needs at most about
5.5 kB of arguments, and centered RMSprop with momentum (three slots) about 7 kB: above the
classic 4 kB, within the 32 kB that CUDA 12.1 and later allow on Volta and newer GPUs (the
H100 and H200 run CUDA 13).

A max-norm constraint (constraints.MaxNorm), applied after the update, is here too: its
array code is eight launches per constrained weight, max_norm_ two or three.
"""
import cupy

from .fast_gpu_sums import channel_sums_of_squares

TENSORS_PER_LAUNCH = 16
_INDEX = "long long"


def _update_kernel(name, shared, slots, rule, rates=("rate",)):
    """An ElementwiseKernel updating TENSORS_PER_LAUNCH parameters. Inputs: the ``shared``
    scalars of the rule, then per parameter k its gradient g{k}, its ``rates`` ({rate}{k}:
    the learning rate, or Adam's step size; Nadam has two), decay{k}, l2{k} and end{k};
    outputs: per parameter w{k} and its optimizer ``slots`` ({slot}{k}). ``rule`` is C for
    one element, in w, g, the rates and the slots (each a reference to the element)."""
    count = range(TENSORS_PER_LAUNCH)
    inputs = [shared] if shared else []
    inputs += [f"raw T g{k}, {', '.join(f'T {r}{k}' for r in rates)}, T decay{k}, T l2{k}, int64 end{k}"
               for k in count]
    outputs = [", ".join(f"raw T {array}{k}" for array in ("w", *slots)) for k in count]
    blocks = []
    for k in count:
        start = f"end{k - 1}" if k else "0"
        slot_refs = " ".join(f"T& {slot} = {slot}{k}[j];" for slot in slots)
        blocks.append(f"""if (i < end{k}) {{
            const {_INDEX} j = i - {start};
            T& w = w{k}[j]; {slot_refs}
            T g = g{k}[j];
            if (l2{k} != (T)0) g += l2{k} * w;          // the L2 penalty's gradient, l2 * w
            if (decay{k} != (T)0) w -= decay{k} * w;    // decoupled weight decay, before the rule
            {" ".join(f"const T {r} = {r}{k};" for r in rates)}
            {rule}
        }}""")
    return cupy.ElementwiseKernel(", ".join(inputs), ", ".join(outputs), " else ".join(blocks), name)


sgd_kernel = _update_kernel("minicnn_sgd_many", "", (), "w -= rate * g;")

sgd_momentum_kernel = _update_kernel(  # Keras's SGD, v the velocity
    "minicnn_sgd_momentum_many", "T mu, bool nesterov", ("v",),
    "v = mu * v - rate * g; w += nesterov ? (T)(mu * v - rate * g) : v;")  # (T): one type for ?: (float16)

adam_kernel = _update_kernel(  # a1 = 1 - beta_1, a2 = 1 - beta_2; rate = adam.py's step size
    "minicnn_adam_many", "T a1, T a2, T eps", ("m", "v"),
    "m += a1 * (g - m); v += a2 * (g * g - v); w -= rate * m / (sqrt(v) + eps);")


nadam_kernel = _update_kernel(  # adam.py's Nadam: rate = its m_share, g_rate its g_share, per parameter
    "minicnn_nadam_many", "T a1, T a2, T eps, T unbias_v", ("m", "v"),
    "m += a1 * (g - m); v += a2 * (g * g - v); w -= (rate * m + g_rate * g) / (sqrt(v * unbias_v) + eps);",
    rates=("rate", "g_rate"))

adamax_kernel = _update_kernel(  # adam.py's Adamax, rate its step lr / (1 - beta_1^t); u = max(b2 u, |g|), NaN kept
    "minicnn_adamax_many", "T a1, T b2, T eps", ("m", "u"),
    "m += a1 * (g - m); "
    "const T size = g < (T)0 ? (T)((T)0 - g) : g; const T decayed = u * b2; "
    "u = (decayed > size || decayed != decayed) ? decayed : size; "
    "w -= rate * m / (u + eps);")

adagrad_kernel = _update_kernel(  # adagrad.py's Adagrad, acc its accumulator
    "minicnn_adagrad_many", "T eps", ("acc",),
    "acc += g * g; w -= rate * g / sqrt(acc + eps);")

adadelta_kernel = _update_kernel(  # adagrad.py's Adadelta: G, D its accumulated gradient and delta; a = 1 - rho
    "minicnn_adadelta_many", "T rho, T a, T eps", ("G", "D"),
    "G *= rho; G += a * (g * g); const T delta = sqrt(D + eps) / sqrt(G + eps) * g; "
    "D *= rho; D += a * (delta * delta); w -= rate * delta;")


def _rmsprop_rule(momentum, centered):
    """rmsprop.py's update of one element, in its order; a = 1 - rho, rate = lr. The slots
    are velocity v, then momentum m and average gradient ag where used."""
    square = "v - ag * ag + eps" if centered else "v + eps"
    rule = "v = v * rho; v += a * (g * g); "
    if centered:
        rule += "ag = ag * rho; ag += a * g; "
    step = f"rate * g / sqrt({square})"
    return rule + (f"m = m * mu; m += {step}; w -= m;" if momentum else f"w -= {step};")


rmsprop_kernels = {  # (momentum, centered) -> the kernel; slots in RMSprop.slot_names's order
    (momentum, centered): _update_kernel(
        f"minicnn_rmsprop{'_momentum' * momentum}{'_centered' * centered}_many",
        "T rho, T a, T eps" + (", T mu" if momentum else ""),
        ("v",) + (("m",) if momentum else ()) + (("ag",) if centered else ()),
        _rmsprop_rule(momentum, centered))
    for momentum in (False, True) for centered in (False, True)}


def _unscale_kernel():
    """An ElementwiseKernel multiplying TENSORS_PER_LAUNCH gradients g{k} in place by
    inverse_scale and setting found[0] to 1 where a result is not finite (loss scaling:
    optimizers/loss_scale.py). Many threads may write the 1 at once: any of them will do."""
    count = range(TENSORS_PER_LAUNCH)
    inputs = ["T inverse_scale"] + [f"int64 end{k}" for k in count]
    outputs = [f"raw T g{k}" for k in count] + ["raw int32 found"]
    blocks = []
    for k in count:
        start = f"end{k - 1}" if k else "0"
        blocks.append(f"""if (i < end{k}) {{
            T& g = g{k}[i - {start}];
            g = g * inverse_scale;
            const T nan_unless_finite = g - g;    // inf - inf and NaN - NaN are NaN, else 0
            if (nan_unless_finite != nan_unless_finite) found[0] = 1;
        }}""")
    return cupy.ElementwiseKernel(", ".join(inputs), ", ".join(outputs), " else ".join(blocks),
                                  "minicnn_unscale_many")


unscale_kernel = _unscale_kernel()


def _average_kernel():
    """An ElementwiseKernel moving TENSORS_PER_LAUNCH averages a{k} toward their weights w{k}
    in place, a = a * m + rest * w (rest = 1 - m), in the array code's order
    (optimizers/ema.py, Keras's use_ema)."""
    count = range(TENSORS_PER_LAUNCH)
    inputs = ["T m, T rest"] + [f"raw T w{k}, int64 end{k}" for k in count]
    outputs = [f"raw T a{k}" for k in count]
    blocks = []
    for k in count:
        start = f"end{k - 1}" if k else "0"
        blocks.append(f"""if (i < end{k}) {{
            const {_INDEX} j = i - {start};
            T& a = a{k}[j];
            a *= m;
            a += rest * w{k}[j];
        }}""")
    return cupy.ElementwiseKernel(", ".join(inputs), ", ".join(outputs), " else ".join(blocks),
                                  "minicnn_average_many")


average_kernel = _average_kernel()


def average_update(pairs, m):
    """pairs: [(w, average)], GPU arrays of one dtype per run; each average in place:
    average = m * average + (1 - m) * w, TENSORS_PER_LAUNCH a launch (the array code takes
    two launches per weight)."""
    for group in _groups(pairs):
        t = group[0][0].dtype.type
        inputs, outputs, end = [t(m), t(1 - m)], [], 0
        for w, average in group:
            end += w.size
            inputs += [w, end]
            outputs.append(average)
        spares = iter(_spares(group[0][0].dtype))
        for _ in range(TENSORS_PER_LAUNCH - len(group)):  # places no thread reaches
            inputs += [next(spares), end]
            outputs.append(next(spares))
        average_kernel(*inputs, *outputs, size=end)


def unscale_and_check(grads, inverse_scale):
    """grads: GPU arrays, each multiplied in place by inverse_scale, TENSORS_PER_LAUNCH a
    launch. Returns found, a device int32 array (1,): 1 if any result is not finite, else 0
    (read it once: the one wait of a loss-scaled step). The array code takes four launches
    per gradient (a multiply, isfinite, all, and)."""
    found = cupy.zeros(1, dtype=cupy.int32)
    for group in _groups([(g,) for g in grads]):
        t = group[0][0].dtype.type
        inputs, outputs, end = [t(inverse_scale)], [], 0
        for (g,) in group:
            end += g.size
            inputs.append(end)
            outputs.append(g)
        spares = iter(_spares(group[0][0].dtype))
        for _ in range(TENSORS_PER_LAUNCH - len(group)):  # places no thread reaches
            inputs.append(end)
            outputs.append(next(spares))
        unscale_kernel(*inputs, *outputs, found, size=end)
    return found


# constraints.MaxNorm's rescale, in place, with its array code's order of operations; norms
# are never negative, so its clip(norm, 0, max_value) is the smaller of the two. Keras's
# epsilon comes from the host, in T, as the array code's does: a (T)1e-7 here would convert
# a double on the GPU for float16.
max_norm_rescale_kernel = cupy.ElementwiseKernel(
    "raw T squares, T max_value, T epsilon, int32 C", "T w",
    """
    const T norm = sqrt(squares[i % C]);
    const T desired = norm < max_value ? norm : max_value;
    w = w * (desired / (norm + epsilon));
    """,
    "minicnn_max_norm_rescale")


def max_norm_(w, max_value):
    """w (..., C), C-contiguous, rescaled in place so that each of its C slices w[..., c] has
    an L2 norm of at most max_value: the squared norms (one kernel, plus CuPy's sum of their
    partial rows for a large w), then the rescale."""
    squares = channel_sums_of_squares(w)
    t = w.dtype.type
    max_norm_rescale_kernel(squares, t(max_value), t(1e-7), w.shape[-1], w)


def sgd_update(tensors):
    """tensors: [(w, g, (), rate, decay, l2)], each w updated in place: w -= rate * g."""
    _launch(sgd_kernel, tensors, lambda t: ())


def sgd_momentum_update(tensors, mu, nesterov):
    """tensors: [(w, g, (v,), rate, decay, l2)], w and v in place: v = mu v - rate g;
    w += v (or, Nesterov, w += mu v - rate g)."""
    _launch(sgd_momentum_kernel, tensors, lambda t: (t(mu), bool(nesterov)))


def adam_update(tensors, a1, a2, eps):
    """tensors: [(w, g, (m, v), step, decay, l2)], in place: m += a1 (g - m);
    v += a2 (g^2 - v); w -= step m / (sqrt(v) + eps)."""
    _launch(adam_kernel, tensors, lambda t: (t(a1), t(a2), t(eps)))


def rmsprop_update(tensors, rho, momentum, eps, centered):
    """tensors: [(w, g, (v[, m][, ag]), rate, decay, l2)], in place: v = rho v + (1 - rho) g^2
    (and ag = rho ag + (1 - rho) g), then w -= rate g / sqrt(v [- ag^2] + eps), through
    m = momentum m + that step where momentum is set."""
    kernel = rmsprop_kernels[(bool(momentum), bool(centered))]
    _launch(kernel, tensors, lambda t: (t(rho), t(1 - rho), t(eps)) + ((t(momentum),) if momentum else ()))


def nadam_update(tensors, a1, a2, eps, unbias_v):
    """tensors: [(w, g, (m, v), (m_share, g_share), decay, l2)], in place: m, v as Adam's;
    w -= (m_share m + g_share g) / (sqrt(v unbias_v) + eps)."""
    _launch(nadam_kernel, tensors, lambda t: (t(a1), t(a2), t(eps), t(unbias_v)))


def adamax_update(tensors, a1, b2, eps):
    """tensors: [(w, g, (m, u), step, decay, l2)], in place: m += a1 (g - m);
    u = max(b2 u, |g|); w -= step m / (u + eps)."""
    _launch(adamax_kernel, tensors, lambda t: (t(a1), t(b2), t(eps)))


def adagrad_update(tensors, eps):
    """tensors: [(w, g, (accumulator,), rate, decay, l2)], in place: a += g^2;
    w -= rate g / sqrt(a + eps)."""
    _launch(adagrad_kernel, tensors, lambda t: (t(eps),))


def adadelta_update(tensors, rho, eps):
    """tensors: [(w, g, (G, D), rate, decay, l2)], in place: G = rho G + (1 - rho) g^2;
    delta = sqrt(D + eps) / sqrt(G + eps) g; D = rho D + (1 - rho) delta^2; w -= rate delta."""
    _launch(adadelta_kernel, tensors, lambda t: (t(rho), t(1 - rho), t(eps)))


def _launch(kernel, tensors, shared):
    """Run kernel over the tensors, TENSORS_PER_LAUNCH at a time, a launch for each run of
    one dtype (a kernel has one T). A tensor's rate is a number, or a tuple of them for a
    kernel of several rates (Nadam's)."""
    for group in _groups(tensors):
        t = group[0][0].dtype.type
        inputs, outputs, end = list(shared(t)), [], 0
        rates = len(group[0][3]) if isinstance(group[0][3], tuple) else 1
        for w, g, slots, rate, decay, l2 in group:
            end += w.size
            inputs += [g, *(t(r) for r in (rate if isinstance(rate, tuple) else (rate,))), t(decay), t(l2), end]
            outputs += [w, *slots]
        spares = iter(_spares(group[0][0].dtype))
        for _ in range(TENSORS_PER_LAUNCH - len(group)):  # places no thread reaches: i < end always
            inputs += [next(spares), *(t(0),) * rates, t(0), t(0), end]
            outputs += [next(spares) for _ in range(1 + len(group[0][2]))]
        kernel(*inputs, *outputs, size=end)


def _groups(tensors):
    """Consecutive runs of at most TENSORS_PER_LAUNCH tensors of one dtype."""
    group = []
    for tensor in tensors:
        if group and (len(group) == TENSORS_PER_LAUNCH or tensor[0].dtype != group[0][0].dtype):
            yield group
            group = []
        group.append(tensor)
    if group:
        yield group


_spare_arrays = {}


def _spares(dtype):
    """Distinct one-element arrays of dtype, enough for every unused place of a launch (no
    array is passed twice: outputs that alias one another are best avoided). The most a
    place takes is five: a gradient, the weight and three slots (centered RMSprop with
    momentum)."""
    if dtype not in _spare_arrays:
        _spare_arrays[dtype] = [cupy.zeros(1, dtype=dtype) for _ in range(5 * TENSORS_PER_LAUNCH)]
    return _spare_arrays[dtype]
