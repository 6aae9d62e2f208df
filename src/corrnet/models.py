"""Ready-made networks: the LeNet of Dive into Deep Learning, chapter 7.6.

>>> net = corrnet.models.lenet()
>>> net(corrnet.zeros(1, 1, 28, 28)).shape
torch.Size([1, 10])
"""

from __future__ import annotations

from . import nn


def init_xavier(module) -> None:
    """D2L's weight initialization: Xavier-uniform weights for Linear and Conv2d layers
    (biases keep their default initialization). Use as ``net.apply(init_xavier)``."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(module.weight)


def lenet(activation: str = "sigmoid", num_classes: int = 10) -> nn.Sequential:
    """LeNet-5 for 1x28x28 images, as D2L builds it.

    activation 'sigmoid' gives the book's network (sigmoid + average pooling);
    'relu' gives the modern variant (ReLU + max pooling). Xavier-uniform weights.
    """
    if activation == "sigmoid":
        act, pool = nn.Sigmoid, nn.AvgPool2d
    elif activation == "relu":
        act, pool = nn.ReLU, nn.MaxPool2d
    else:
        raise ValueError(f"lenet: activation must be 'sigmoid' or 'relu', got {activation!r}")
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), act(),
        pool(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), act(),
        pool(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), act(),
        nn.Linear(120, 84), act(),
        nn.Linear(84, num_classes),
    )
    net.apply(init_xavier)
    return net


MODELS = {
    "lenet": lambda: lenet("sigmoid"),
    "lenet-relu": lambda: lenet("relu"),
}
"""The networks the command line knows, by name."""

INPUT_SIZES = {"lenet": (1, 1, 28, 28), "lenet-relu": (1, 1, 28, 28)}

DEFAULT_LR = {"lenet": 0.9, "lenet-relu": 0.1}
"""SGD learning rates that train each network well: the book's 0.9 for the sigmoid LeNet;
ReLU and max pooling need a smaller step."""
