"""Issue 12, the book's *Modern CNNs* sections AlexNet, VGG, NiN and GoogLeNet (both editions).

Every cell of those sections ran on corrnet with only the imports swapped, and printed what
PyTorch prints (layer tables, parameter counts, reprs, state-dict shapes). What the 1.0 edition
adds over the classic one is the way the networks are built: from lazy layers, inside a
``d2l.Classifier`` whose methods may be attached later with ``d2l.add_to_class``, summarized
with ``layer_summary`` and initialized with ``apply_init(batch, d2l.init_cnn)``. These tests
state that as facts: a lazily built NiN and GoogLeNet (written here from their published layer
specifications) materialize into exactly the classic networks of ``issue12_torch_nets``, print
PyTorch's layer table, and compute PyTorch's outputs once given the same weights.
"""

from __future__ import annotations

import issue12_torch_nets as torch_nets
import numpy as np
import torch

import corrnet
from corrnet import d2l, nn
from corrnet.nn import functional as F

from torch_compare import numpy_of

# GoogLeNet's Inception blocks (c1, (c2a, c2b), (c3a, c3b), c4), stage by stage
INCEPTIONS = {
    "b3": [(64, (96, 128), (16, 32), 32), (128, (128, 192), (32, 96), 64)],
    "b4": [(192, (96, 208), (16, 48), 64), (160, (112, 224), (24, 64), 64),
           (128, (128, 256), (24, 64), 64), (112, (144, 288), (32, 64), 64),
           (256, (160, 320), (32, 128), 128)],
    "b5": [(256, (160, 320), (32, 128), 128), (384, (192, 384), (48, 128), 128)],
}


class LazyInception(nn.Module):
    """Four branches of lazy convolutions whose input channels the first batch fixes,
    concatenated along the channels (attribute names as ``issue12_torch_nets.Inception``)."""

    def __init__(self, c1, c2, c3, c4, **kwargs):
        super().__init__(**kwargs)
        self.p1_1 = nn.LazyConv2d(c1, kernel_size=1)
        self.p2_1, self.p2_2 = nn.LazyConv2d(c2[0], 1), nn.LazyConv2d(c2[1], 3, padding=1)
        self.p3_1, self.p3_2 = nn.LazyConv2d(c3[0], 1), nn.LazyConv2d(c3[1], 5, padding=2)
        self.p4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.p4_2 = nn.LazyConv2d(c4, kernel_size=1)

    def forward(self, x):
        return corrnet.cat((F.relu(self.p1_1(x)), F.relu(self.p2_2(F.relu(self.p2_1(x)))),
                            F.relu(self.p3_2(F.relu(self.p3_1(x)))),
                            F.relu(self.p4_2(self.p4_1(x)))), dim=1)


class LazyGoogLeNet(d2l.Classifier):
    """Its stem here; the body and ``__init__`` are attached below with ``add_to_class``."""

    def stem(self):
        return nn.Sequential(nn.LazyConv2d(64, 7, stride=2, padding=3), nn.ReLU(),
                             nn.MaxPool2d(3, stride=2, padding=1))


@d2l.add_to_class(LazyGoogLeNet)
def stage(self, name):
    if name == "b2":
        return nn.Sequential(nn.LazyConv2d(64, 1), nn.ReLU(), nn.LazyConv2d(192, 3, padding=1),
                             nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1))
    blocks = [LazyInception(*spec) for spec in INCEPTIONS[name]]
    tail = ([nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten()] if name == "b5"
            else [nn.MaxPool2d(3, stride=2, padding=1)])
    return nn.Sequential(*blocks, *tail)


@d2l.add_to_class(LazyGoogLeNet)
def __init__(self, lr=0.1, num_classes=10):  # noqa: N807 (attached as the class's __init__)
    super(LazyGoogLeNet, self).__init__()
    self.save_hyperparameters()
    self.net = nn.Sequential(self.stem(), *(self.stage(n) for n in ("b2", "b3", "b4", "b5")),
                             nn.LazyLinear(num_classes))
    self.net.apply(d2l.init_cnn)


class LazyNiN(d2l.Classifier):
    """NiN from lazy layers: (out channels, kernel, stride, padding) per NiN block."""

    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        blocks = [self.block(c, k, s, p) for c, k, s, p in
                  ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1), (num_classes, 3, 1, 1))]
        self.net = nn.Sequential(blocks[0], nn.MaxPool2d(3, stride=2), blocks[1],
                                 nn.MaxPool2d(3, stride=2), blocks[2], nn.MaxPool2d(3, stride=2),
                                 nn.Dropout(0.5), blocks[3], nn.AdaptiveAvgPool2d((1, 1)),
                                 nn.Flatten())
        self.net.apply(d2l.init_cnn)

    @staticmethod
    def block(out_channels, kernel_size, stride, padding):
        return nn.Sequential(nn.LazyConv2d(out_channels, kernel_size, stride, padding), nn.ReLU(),
                             nn.LazyConv2d(out_channels, 1), nn.ReLU(),
                             nn.LazyConv2d(out_channels, 1), nn.ReLU())


def torch_layer_table(net, shape):
    """What the book's ``layer_summary`` prints, computed with PyTorch."""
    x, lines = torch.randn(*shape), []
    with torch.no_grad():
        for layer in net:
            x = layer(x)
            lines.append(f"{layer.__class__.__name__} output shape:\t {x.shape}")
    return lines


def check_against_torch(model, torch_net, shape, capsys):
    model.layer_summary(shape)
    assert capsys.readouterr().out.splitlines() == torch_layer_table(torch_net, shape)
    mine, theirs = model.net.state_dict(), torch_net.state_dict()
    assert [(k, tuple(v.shape)) for k, v in mine.items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.items()]
    layers = {type(m).__name__ for m in model.modules() if type(m).__module__.startswith("corrnet")}
    assert "Conv2d" in layers and not any(name.startswith("Lazy") for name in layers)
    with torch.no_grad():
        for key, value in mine.items():
            theirs[key].copy_(torch.from_numpy(numpy_of(value)))
    model.eval()
    torch_net.eval()
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    with corrnet.no_grad():
        got = numpy_of(model(corrnet.tensor(x)))
    with torch.no_grad():
        want = torch_net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_issue12_book_lazy_googlenet_with_added_methods_is_the_classic_one(capsys):
    corrnet.manual_seed(0)
    model = LazyGoogLeNet(lr=0.01)
    assert model.hparams == {"lr": 0.01, "num_classes": 10}
    model.apply_init([corrnet.rand(1, 1, 96, 96)], d2l.init_cnn)
    check_against_torch(model, torch_nets.googlenet(), (1, 1, 96, 96), capsys)


def test_issue12_book_lazy_nin_is_the_classic_one(capsys):
    corrnet.manual_seed(0)
    model = LazyNiN(lr=0.05)  # its first forward is the summary's, as in the 1.0 edition
    check_against_torch(model, torch_nets.nin(), (1, 1, 224, 224), capsys)
