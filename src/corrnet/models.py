"""Ready-made networks: the LeNet of Dive into Deep Learning (chapter 7.6) and the networks
of its chapter "Modern Convolutional Neural Networks" in the book's Fashion-MNIST sizes.

>>> net = corrnet.models.lenet()
>>> net(corrnet.zeros(1, 1, 28, 28)).shape
torch.Size([1, 10])
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import nn
from .tensor import cat


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


# ---------------------------------------------------------------------------------------------
# Modern CNNs (D2L chapter 8 in the 1.0 edition, 7 in the classic one), in the book's
# Fashion-MNIST sizes: one input channel, ten classes, the book's input side in INPUT_SIZES.
# ---------------------------------------------------------------------------------------------


def alexnet(num_classes: int = 10) -> nn.Sequential:
    """AlexNet for 1x224x224 images (D2L 8.1): five convolutions, three dense layers.

    >>> corrnet.models.alexnet()[0]
    Conv2d(1, 96, kernel_size=(11, 11), stride=(4, 4), padding=(1, 1))
    """
    return nn.Sequential(
        nn.Conv2d(1, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Flatten(),
        nn.Linear(6400, 4096), nn.ReLU(), nn.Dropout(p=0.5),  # 6400 = 256 * 5 * 5
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(4096, num_classes),
    )


def vgg_block(num_convs: int, in_channels: int, out_channels: int) -> nn.Sequential:
    """`num_convs` 3x3 convolutions (padding 1) with ReLU, then a 2x2 max pool that halves
    height and width (D2L 8.2)."""
    layers = []
    for _ in range(num_convs):
        layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU()]
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


VGG11_ARCH = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
"""VGG-11's blocks: (number of convolutions, output channels)."""


def vgg11(ratio: int = 1, num_classes: int = 10) -> nn.Sequential:
    """VGG-11 for 1x224x224 images (D2L 8.2); ``ratio=4`` divides every block's channels by
    4, the smaller network the book trains.

    >>> len(corrnet.models.vgg11(ratio=4))  # five blocks, Flatten, three dense layers
    13
    """
    if not isinstance(ratio, int) or ratio < 1 or 64 % ratio:
        raise ValueError(f"vgg11: ratio must be a positive divisor of 64, got {ratio!r}")
    blocks, in_channels = [], 1
    for num_convs, out_channels in VGG11_ARCH:
        blocks.append(vgg_block(num_convs, in_channels, out_channels // ratio))
        in_channels = out_channels // ratio
    return nn.Sequential(
        *blocks, nn.Flatten(),
        nn.Linear(in_channels * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, num_classes),
    )


def nin_block(in_channels: int, out_channels: int, kernel_size, stride, padding):
    """A convolution followed by two 1x1 convolutions, each with ReLU (D2L 8.3)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
    )


def nin(num_classes: int = 10) -> nn.Sequential:
    """Network in Network for 1x224x224 images (D2L 8.3): no dense layer, global average
    pooling over `num_classes` channels."""
    return nn.Sequential(
        nin_block(1, 96, kernel_size=11, stride=4, padding=0),
        nn.MaxPool2d(3, stride=2),
        nin_block(96, 256, kernel_size=5, stride=1, padding=2),
        nn.MaxPool2d(3, stride=2),
        nin_block(256, 384, kernel_size=3, stride=1, padding=1),
        nn.MaxPool2d(3, stride=2),
        nn.Dropout(0.5),
        nin_block(384, num_classes, kernel_size=3, stride=1, padding=1),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
    )


class Inception(nn.Module):
    """GoogLeNet's block (D2L 8.4): four parallel paths concatenated along channels.

    c1: a 1x1 convolution; c2 = (a, b): 1x1 to a channels, then 3x3 to b; c3 = (a, b): 1x1
    to a, then 5x5 to b; c4: 3x3 max pool (stride 1), then 1x1. Output channels
    c1 + c2[1] + c3[1] + c4, height and width kept.

    >>> Inception(192, 64, (96, 128), (16, 32), 32)(corrnet.zeros(1, 192, 4, 4)).shape
    torch.Size([1, 256, 4, 4])
    """

    def __init__(self, in_channels: int, c1: int, c2, c3, c4: int):
        super().__init__()
        self.p1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        self.p2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.p2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        self.p3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.p3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        self.p4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.p4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)

    def forward(self, x):
        relu = nn.functional.relu
        p1 = relu(self.p1_1(x))
        p2 = relu(self.p2_2(relu(self.p2_1(x))))
        p3 = relu(self.p3_2(relu(self.p3_1(x))))
        p4 = relu(self.p4_2(self.p4_1(x)))
        return cat((p1, p2, p3, p4), dim=1)


def googlenet(num_classes: int = 10) -> nn.Sequential:
    """GoogLeNet for 1x96x96 images (D2L 8.4): a stem, nine Inception blocks in three
    stages, global average pooling and one dense layer."""
    b1 = nn.Sequential(nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b2 = nn.Sequential(nn.Conv2d(64, 64, kernel_size=1), nn.ReLU(),
                       nn.Conv2d(64, 192, kernel_size=3, padding=1), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b3 = nn.Sequential(Inception(192, 64, (96, 128), (16, 32), 32),
                       Inception(256, 128, (128, 192), (32, 96), 64),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b4 = nn.Sequential(Inception(480, 192, (96, 208), (16, 48), 64),
                       Inception(512, 160, (112, 224), (24, 64), 64),
                       Inception(512, 128, (128, 256), (24, 64), 64),
                       Inception(512, 112, (144, 288), (32, 64), 64),
                       Inception(528, 256, (160, 320), (32, 128), 128),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b5 = nn.Sequential(Inception(832, 256, (160, 320), (32, 128), 128),
                       Inception(832, 384, (192, 384), (48, 128), 128),
                       nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
    return nn.Sequential(b1, b2, b3, b4, b5, nn.Linear(1024, num_classes))


def lenet_bn(num_classes: int = 10) -> nn.Sequential:
    """LeNet with batch normalization after every convolution and hidden dense layer, for
    1x28x28 images (D2L 8.5, the concise version with nn.BatchNorm2d / BatchNorm1d)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5), nn.BatchNorm2d(6), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.BatchNorm2d(16), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
        nn.Linear(256, 120), nn.BatchNorm1d(120), nn.Sigmoid(),  # 256 = 16 * 4 * 4
        nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Sigmoid(),
        nn.Linear(84, num_classes),
    )


class Residual(nn.Module):
    """ResNet's residual block (D2L 8.6): two 3x3 convolutions with batch normalization,
    added to the input (through a 1x1 convolution when ``use_1x1conv``, needed when the
    channels or the stride change), then ReLU.

    >>> Residual(3, 6, use_1x1conv=True, strides=2)(corrnet.zeros(4, 3, 6, 6)).shape
    torch.Size([4, 6, 3, 3])
    """

    def __init__(self, input_channels: int, num_channels: int, use_1x1conv: bool = False,
                 strides: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1,
                               stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        self.conv3 = (nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides)
                      if use_1x1conv else None)
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, X):
        relu = nn.functional.relu
        Y = relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        return relu(Y + X)


def resnet_block(input_channels: int, num_channels: int, num_residuals: int,
                 first_block: bool = False) -> list:
    """`num_residuals` residual blocks; the first halves height and width and changes the
    channels (unless `first_block`: the stem's max pool already halved them)."""
    blocks = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blocks.append(Residual(input_channels, num_channels, use_1x1conv=True, strides=2))
        else:
            blocks.append(Residual(num_channels, num_channels))
    return blocks


def _stem() -> nn.Sequential:
    """ResNet's and DenseNet's first stage: 7x7 stride-2 convolution, BN, ReLU, 3x3 max
    pool with stride 2 (a quarter of the input's height and width)."""
    return nn.Sequential(nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3),
                         nn.BatchNorm2d(64), nn.ReLU(),
                         nn.MaxPool2d(kernel_size=3, stride=2, padding=1))


def resnet18(num_classes: int = 10) -> nn.Sequential:
    """ResNet-18 for 1x96x96 images (D2L 8.6): the stem, four stages of two residual
    blocks (64, 128, 256, 512 channels), global average pooling, one dense layer."""
    return nn.Sequential(
        _stem(),
        nn.Sequential(*resnet_block(64, 64, 2, first_block=True)),
        nn.Sequential(*resnet_block(64, 128, 2)),
        nn.Sequential(*resnet_block(128, 256, 2)),
        nn.Sequential(*resnet_block(256, 512, 2)),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, num_classes),
    )


def conv_block(input_channels: int, num_channels: int) -> nn.Sequential:
    """DenseNet's pre-activation convolution: BN, ReLU, 3x3 convolution (D2L 8.7)."""
    return nn.Sequential(nn.BatchNorm2d(input_channels), nn.ReLU(),
                         nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1))


class DenseBlock(nn.Module):
    """`num_convs` conv_blocks, each seeing the concatenation of the block's input and every
    earlier output: the output has input_channels + num_convs * num_channels channels.

    >>> DenseBlock(2, 3, 10)(corrnet.zeros(4, 3, 8, 8)).shape
    torch.Size([4, 23, 8, 8])
    """

    def __init__(self, num_convs: int, input_channels: int, num_channels: int):
        super().__init__()
        self.net = nn.Sequential(*[conv_block(num_channels * i + input_channels, num_channels)
                                   for i in range(num_convs)])

    def forward(self, X):
        for block in self.net:
            X = cat((X, block(X)), dim=1)
        return X


def transition_block(input_channels: int, num_channels: int) -> nn.Sequential:
    """BN, ReLU, a 1x1 convolution to `num_channels`, 2x2 average pool (D2L 8.7)."""
    return nn.Sequential(nn.BatchNorm2d(input_channels), nn.ReLU(),
                         nn.Conv2d(input_channels, num_channels, kernel_size=1),
                         nn.AvgPool2d(kernel_size=2, stride=2))


def densenet(num_classes: int = 10, growth_rate: int = 32,
             arch=(4, 4, 4, 4)) -> nn.Sequential:
    """DenseNet for 1x96x96 images (D2L 8.7): the stem, four dense blocks of 4 convolutions
    (growth rate 32) with transition blocks halving the channels between them, BN, ReLU,
    global average pooling and one dense layer."""
    blocks, channels = [], 64
    for i, num_convs in enumerate(arch):
        blocks.append(DenseBlock(num_convs, channels, growth_rate))
        channels += num_convs * growth_rate
        if i != len(arch) - 1:
            blocks.append(transition_block(channels, channels // 2))
            channels //= 2
    return nn.Sequential(
        _stem(), *blocks, nn.BatchNorm2d(channels), nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(channels, num_classes))


MODELS = {
    "lenet": lambda **kwargs: lenet("sigmoid", **kwargs),
    "lenet-relu": lambda **kwargs: lenet("relu", **kwargs),
    "alexnet": alexnet,
    "vgg11": lambda **kwargs: vgg11(ratio=4, **kwargs),
    "vgg11-full": vgg11,
    "nin": nin,
    "googlenet": googlenet,
    "lenet-bn": lenet_bn,
    "resnet18": resnet18,
    "densenet": densenet,
}
"""The networks the command line knows, by name (``vgg11`` is the book's trained network,
VGG-11 with a quarter of the channels; ``vgg11-full`` the whole one)."""

INPUT_SIZES = {"lenet": (1, 1, 28, 28), "lenet-relu": (1, 1, 28, 28),
               "alexnet": (1, 1, 224, 224), "vgg11": (1, 1, 224, 224),
               "vgg11-full": (1, 1, 224, 224), "nin": (1, 1, 224, 224),
               "googlenet": (1, 1, 96, 96), "lenet-bn": (1, 1, 28, 28),
               "resnet18": (1, 1, 96, 96), "densenet": (1, 1, 96, 96)}
"""The input each network is built for: the book's resize of Fashion-MNIST."""

DEFAULT_LR = {"lenet": 0.9, "lenet-relu": 0.1, "alexnet": 0.01, "vgg11": 0.05,
              "vgg11-full": 0.05, "nin": 0.1, "googlenet": 0.1, "lenet-bn": 1.0,
              "resnet18": 0.05, "densenet": 0.1}
"""SGD learning rates that train each network well: the book's (0.9 for the sigmoid LeNet;
ReLU and max pooling need a smaller step)."""


# ---------------------------------------------------------------------------------------------
# Networks named in checkpoints: `corrnet train` writes `describe(...)` into each checkpoint,
# and `from_checkpoint` rebuilds the network from it without code.
# ---------------------------------------------------------------------------------------------


def describe(name: str, input_size=None, **kwargs) -> dict:
    """What rebuilds a network of `MODELS`: its name, the keyword arguments of its
    constructor and the input size it is trained at (batch dimension first; default
    `INPUT_SIZES`). `corrnet train` stores this as a checkpoint's ``"network"`` entry.

    >>> corrnet.models.describe("lenet", num_classes=10)
    {'name': 'lenet', 'kwargs': {'num_classes': 10}, 'input_size': [1, 1, 28, 28]}
    """
    if name not in MODELS:
        raise ValueError(f"describe: unknown model {name!r}; one of {sorted(MODELS)}")
    size = INPUT_SIZES[name] if input_size is None else input_size
    return {"name": name, "kwargs": dict(kwargs), "input_size": [int(s) for s in size]}


def _network_problem(network) -> str | None:
    """Why a checkpoint's ``"network"`` entry cannot rebuild a network, or None."""
    if not isinstance(network, dict) or set(network) != {"name", "kwargs", "input_size"}:
        return "the entry 'network' is not a dict with 'name', 'kwargs' and 'input_size'"
    if network["name"] not in MODELS:
        return (f"it names the network {network['name']!r}, which is not one of this "
                f"corrnet's models {sorted(MODELS)}")
    kwargs = network["kwargs"]
    if not isinstance(kwargs, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float, str)) for k, v in kwargs.items()):
        return "the entry network['kwargs'] is not a dict of numbers and strings"
    size = network["input_size"]
    if (not isinstance(size, list) or len(size) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        return f"the entry network['input_size'] is not 4 positive ints: {size!r}"
    return None


@dataclass
class CheckpointInfo:
    """What `from_checkpoint` read besides the weights: the model's name, its constructor's
    keyword arguments, the input size it was trained at (N, C, H, W), the epoch the
    checkpoint was written after and the training history (`corrnet.train.History`)."""

    model: str
    kwargs: dict
    input_size: tuple
    epoch: int
    history: object = field(repr=False)


def from_checkpoint(path, model: str | None = None):
    """``(net, info)``: the network a `corrnet train` checkpoint holds, rebuilt from the
    name and arguments it stores, with its weights, in eval mode; `info` is a
    `CheckpointInfo`.

    A checkpoint written before checkpoints named their network needs `model` (the name in
    `MODELS` it was trained with); otherwise the error says so. A `model` that disagrees
    with the checkpoint's own, or weights that do not fit, raise `LoadError` naming the
    file.
    """
    from .serialization import LoadError, load
    from .train import Epoch, History, _check_checkpoint

    state = load(path, map_location="cpu")
    try:
        _check_checkpoint(path, state, None, None, None)
    except LoadError:
        raise
    except RuntimeError as err:  # not a checkpoint at all
        raise LoadError(str(err)) from None
    network = state.get("network")
    if network is None:
        if model is None:
            raise LoadError(
                f"checkpoint {path} does not name its network (it was written by an older "
                f"corrnet): pass the model it was trained with, --model NAME (one of "
                f"{', '.join(sorted(MODELS))})")
        if model not in MODELS:
            raise LoadError(f"unknown model {model!r}; one of {sorted(MODELS)}")
        network = describe(model)
    else:
        problem = _network_problem(network)
        if problem is not None:
            raise LoadError(f"checkpoint {path}: {problem}")
        if model is not None and model != network["name"]:
            raise LoadError(f"checkpoint {path} holds a {network['name']}, not a {model} "
                            "(leave out --model: the checkpoint names its network)")
    net = MODELS[network["name"]](**network["kwargs"])
    try:
        net.load_state_dict(state["model"])
    except (TypeError, RuntimeError, KeyError) as err:
        raise LoadError(f"checkpoint {path}: its weights do not fit a {network['name']}: "
                        f"{err}") from None
    net.eval()
    history = History([Epoch(**e) for e in state["history"]])
    return net, CheckpointInfo(network["name"], dict(network["kwargs"]),
                               tuple(network["input_size"]), int(state["epoch"]), history)
