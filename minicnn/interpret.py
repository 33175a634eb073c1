"""Looking inside a trained CNN: the feature maps its convolutions compute, and
saliency maps, which input pixels the class score is most sensitive to.

Both run the model in inference mode (dropout off, batch-norm on its moving
averages) and take and return arrays on the model's device.
"""
from . import backend
from .autograd import Tensor, no_grad
from .layers import Conv2D, NestedModel


def feature_maps(model, x, layer_type=Conv2D):
    """x (N, H, W, C) -> [(layer, maps)] for every layer of ``layer_type``, where maps is
    that layer's output (N, oh, ow, F) after its activation: one map per filter. A model
    nested as a layer is looked inside, its maps in their place in the order."""
    from .models import Sequential
    if not isinstance(model, Sequential):  # a graph: each node's output, in the order they run
        with no_grad():
            values = model._run(Tensor(x), False)
        found = []
        for node in model.nodes:
            if isinstance(node.layer, NestedModel):  # run again inside, from the node's input
                found += feature_maps(node.layer.model, values[id(node.inputs[0])].data, layer_type)
            if isinstance(node.layer, layer_type):
                found.append((node.layer, values[id(node)].data))
        return found
    found = []
    with no_grad():
        out = Tensor(x)
        for layer in model.layers:
            if isinstance(layer, NestedModel):
                found += feature_maps(layer.model, out.data, layer_type)
            out = layer(out, training=False)
            if isinstance(layer, layer_type):
                found.append((layer, out.data))
    return found


def class_score_gradient(model, x, classes):
    """d score[n, classes[n]] / d x[n] for every image n: x (N, H, W, C), classes (N,)
    ints -> (N, H, W, C).

    The score is the class's logit (the input of a final softmax), as Simonyan et al.
    (2014) do: the softmax probability can rise just because other classes' scores fall.
    Images are independent in inference mode, so the gradient of the sum of the chosen
    scores gives every image's own gradient in one backward pass.
    """
    xp = backend.get_array_module(x)
    image = Tensor(x, requires_grad=True)
    scores = model.class_scores(image, training=False)  # (N, K)
    chosen = (xp.asarray(classes)[:, None] == xp.arange(scores.shape[1])).astype(scores.dtype)
    # The backward also fills the weights' .grad: put back whatever was there (a training
    # loop may be accumulating gradients), so looking never changes the model's state.
    kept = [(weight, weight.grad) for weight in model.weights]
    for weight, _ in kept:
        weight.grad = None
    try:
        (scores * chosen).sum().backward()
    finally:
        for weight, grad in kept:
            weight.grad = grad
    return image.grad


def saliency_maps(model, x, classes):
    """x (N, H, W, C), classes (N,) -> (N, H, W): the largest |gradient| over the colour
    channels at each pixel, i.e. how much the class score can change per unit change of
    that pixel."""
    return abs(class_score_gradient(model, x, classes)).max(axis=-1)
