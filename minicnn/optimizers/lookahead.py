"""Lookahead: a running average of the weights that the model is pulled back to."""


class Lookahead:
    """An exponential moving average of *all* of a model's weights, batch-norm moving
    statistics included, that the model is pulled back to (airbench's "lookahead").

    ``update(decay)``: average = decay * average + (1 - decay) * w, then w = average, for
    every weight. decay 0 leaves the model as it is; decay 1 puts the average in place
    unchanged (how airbench ends: the final weights are the average). Call it every few
    optimizer steps; the optimizer's momenta are left alone.
    """

    def __init__(self, weights):
        self.weights = list(weights)
        self.average = [w.data.copy() for w in self.weights]

    def update(self, decay):
        if not 0 <= decay <= 1:
            raise ValueError(f"Lookahead.update: decay must be in [0, 1], got {decay}")
        for w, average in zip(self.weights, self.average):
            average += w.data.dtype.type(1 - decay) * (w.data - average)
            w.data[...] = average
