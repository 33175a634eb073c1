"""fit, evaluate and predict on batches from a generator or another source of them
(batch_stream.py), as Keras's fit(generator, steps_per_epoch=...): the same training as
the arrays they cut, one-shot generators read on across epochs and re-iterables from
the start, weights and validation batches, and clear refusals."""
import numpy
import pytest

import minicnn
from minicnn import backend
from minicnn.layers import Conv2D, Dense, Flatten
from minicnn.models import Sequential

N, B = 40, 10


def data():
    rng = numpy.random.default_rng(0)
    return rng.random((N, 8, 8, 3)).astype(numpy.float32), numpy.arange(N) % 3, rng.uniform(0, 2, N).astype(
        numpy.float32)


def fresh(device):
    minicnn.set_seed(0)
    with minicnn.device(device):
        model = Sequential([Conv2D(4, 3, activation="relu", input_shape=(8, 8, 3)), Flatten(),
                            Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def forever(*arrays):
    """Keras's kind of generator: the arrays' batches in order, round and round."""
    while True:
        for start in range(0, N, B):
            yield tuple(a[start:start + B] for a in arrays)


class Batches:
    """A Keras-style Sequence: __len__ and __getitem__; counts what is read."""

    def __init__(self, *arrays):
        self.arrays, self.reads = arrays, []

    def __len__(self):
        return N // B

    def __getitem__(self, i):
        self.reads.append(i)
        return tuple(a[i * B:(i + 1) * B] for a in self.arrays)


def assert_same_weights(a, b):
    for u, v in zip(a.get_weights(), b.get_weights()):
        numpy.testing.assert_array_equal(u, v)


def test_a_generator_trains_as_the_arrays_it_cuts(device):
    x, y, w = data()
    arrays = fresh(device)
    expected = arrays.fit(x, y, batch_size=B, epochs=2, shuffle=False, verbose=0, validation_data=(x, y)).history
    streamed = fresh(device)
    got = streamed.fit(forever(x, y), steps_per_epoch=N // B, epochs=2, verbose=0,
                       validation_data=forever(x, y), validation_steps=N // B).history
    assert_same_weights(arrays, streamed)
    assert got == expected
    assert streamed.evaluate(forever(x, y), steps=N // B, verbose=0) == arrays.evaluate(x, y, verbose=0)
    numpy.testing.assert_array_equal(streamed.predict(forever(x), steps=N // B), arrays.predict(x, batch_size=B))
    sequence = fresh(device)
    sequence.fit(Batches(x, y), epochs=2, verbose=0)  # a length of its own: an epoch is all of it
    assert_same_weights(arrays, sequence)
    weighted, by_array = fresh(device), fresh(device)
    weighted.fit(forever(x, y, w), steps_per_epoch=N // B, epochs=1, verbose=0)
    by_array.fit(x, y, sample_weight=w, batch_size=B, epochs=1, shuffle=False, verbose=0)
    assert_same_weights(weighted, by_array)


def test_one_shot_sources_read_on_and_re_iterables_start_again(device):
    """A generator's second epoch takes the batches after the first's (Keras's rule); a
    Sequence is read from batch 0 every epoch (its first batch once more, to check it)."""
    x, y, _ = data()
    taken = []

    def numbered():
        for i in range(100):
            taken.append(i)
            yield x[:B], y[:B]
    model = fresh(device)
    model.fit(numbered(), steps_per_epoch=3, epochs=2, verbose=0)
    assert taken == [0, 1, 2, 3, 4, 5]  # the first, read ahead to check it, is trained on, not read twice
    source = Batches(x, y)
    model.fit(source, steps_per_epoch=2, epochs=2, verbose=0)
    assert source.reads == [0, 0, 1, 0, 1]


def test_a_source_of_batches_refuses_what_it_cannot_do(device):
    x, y, _ = data()
    model = fresh(device)
    cases = [
        (lambda: model.fit(forever(x, y), verbose=0), ValueError, "an epoch has no end of its own: give steps_per_epoch"),
        (lambda: model.fit(forever(x, y), y, steps_per_epoch=2, verbose=0), ValueError, "leave y out"),
        (lambda: model.fit(forever(x, y), batch_size=8, steps_per_epoch=2, verbose=0), ValueError,
         "leave batch_size out"),
        (lambda: model.fit([(x[:B], y[:B])], verbose=0), TypeError, "x is a list of batches; pass iter"),
        (lambda: model.fit(x, y, steps_per_epoch=3, verbose=0), ValueError, "with arrays or a Loader every batch"),
        (lambda: model.fit(iter([x[:B]]), steps_per_epoch=1, verbose=0), ValueError, "expected \\(x_batch, y_batch\\)"),
        (lambda: model.fit(iter([(x[:B], y[:B] + 3)]), steps_per_epoch=1, verbose=0), ValueError,
         "labels out of range"),  # the first batch is checked as arrays are
        (lambda: model.fit(iter([(x[:B].tolist(), y[:B])]), steps_per_epoch=1, verbose=0), TypeError,
         r"x must be a NumPy or CuPy array \(or a list of them, one per input\), got a list of 10, the first a list"),
        (lambda: model.fit(forever(x, y), steps_per_epoch=0, verbose=0), ValueError, "must be a positive int"),
        (lambda: model.fit(forever(x, y), steps_per_epoch=2, validation_split=0.2, verbose=0), ValueError,
         "validation_split needs arrays"),
        (lambda: model.fit(x, y, validation_data=(x, y), validation_steps=2, verbose=0), ValueError,
         "validation_steps counts the batches"),
    ]
    before = model.get_weights()
    for make, error, message in cases:
        with pytest.raises(error, match=message):
            make()
    for a, b in zip(before, model.get_weights()):
        numpy.testing.assert_array_equal(a, b)  # nothing above took a step
    # found only when the batch comes, after the steps before it: the error says where
    with pytest.raises(ValueError, match="batch 2 of epoch 1: the source ran out after 1 batches, but an epoch is 3"):
        model.fit(iter([(x[:B], y[:B])]), steps_per_epoch=3, verbose=0)
    with pytest.raises(ValueError, match=r"batch 2 of epoch 1: x has shape \(10, 4, 8, 3\)"):
        model.fit(iter([(x[:B], y[:B]), (x[:B, :4], y[:B])]), steps_per_epoch=2, verbose=0)
    assert backend.to_numpy(model.predict(iter([x[:B]]), steps=1)).shape == (B, 3)


def test_a_model_of_several_inputs_trains_and_predicts_on_batches_of_lists(device):
    """([x_image, x_extra], y) batches train as the two arrays do; predict takes
    ([x_image, x_extra],) batches; an input missing from a later batch is refused by shape."""
    from minicnn.layers import Concatenate, Input
    from minicnn.models import Model
    x, y, _ = data()
    extra = numpy.random.default_rng(1).random((N, 4)).astype(numpy.float32)

    def two_inputs():
        minicnn.set_seed(0)
        with minicnn.device(device):
            image, meta = Input((8, 8, 3)), Input((4,))
            joined = Concatenate()([Flatten()(Conv2D(2, 3, activation="relu")(image)), Dense(3)(meta)])
            model = Model([image, meta], Dense(3, activation="softmax")(joined))
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model
    arrays, streamed = two_inputs(), two_inputs()
    expected = arrays.fit([x, extra], y, batch_size=B, epochs=2, shuffle=False, verbose=0).history
    batches = (([a, b], c) for a, b, c in forever(x, extra, y))
    got = streamed.fit(batches, steps_per_epoch=N // B, epochs=2, verbose=0).history
    numpy.testing.assert_allclose(got["loss"], expected["loss"], rtol=1e-6)
    assert_same_weights(arrays, streamed)
    numpy.testing.assert_allclose(streamed.predict(iter([([x[:B], extra[:B]],), ([x[B:], extra[B:]],)]), steps=2),
                                  arrays.predict([x, extra]), rtol=1e-6)
    odd = iter([([x[:B], extra[:B]], y[:B]), ([x[:B], extra[:B, :2]], y[:B])])
    with pytest.raises(ValueError, match=r"batch 2 of epoch 1: x has shape \[\(10, 8, 8, 3\), \(10, 2\)\]"):
        streamed.fit(odd, steps_per_epoch=2, verbose=0)
