"""The chapter's networks written in PyTorch from their published layer specifications
(Dive into Deep Learning, "Modern Convolutional Neural Networks"; the architectures are
facts), with the same module nesting as ``corrnet.models`` so that state dicts line up by
name. Shared by the issue-12 model and float32-accuracy tests.

``CASES``: name -> (corrnet builder, torch builder, test input (N, C, H, W), has BatchNorm);
the inputs are the smallest the architectures take (AlexNet and VGG's dense layers fix 224).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import corrnet
from corrnet import models


def alexnet():
    return nn.Sequential(
        nn.Conv2d(1, 96, 11, stride=4, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
        nn.Linear(6400, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 10))


def vgg11(ratio=4):
    blocks, c_in = [], 1
    for num_convs, c_out in ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)):
        layers = []
        for _ in range(num_convs):
            layers += [nn.Conv2d(c_in, c_out // ratio, 3, padding=1), nn.ReLU()]
            c_in = c_out // ratio
        blocks.append(nn.Sequential(*layers, nn.MaxPool2d(2, 2)))
    return nn.Sequential(*blocks, nn.Flatten(), nn.Linear(c_in * 49, 4096), nn.ReLU(),
                         nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(4096, 10))


def _nin_block(c_in, c_out, k, s, p):
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, s, p), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 1), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 1), nn.ReLU())


def nin():
    return nn.Sequential(_nin_block(1, 96, 11, 4, 0), nn.MaxPool2d(3, 2),
                         _nin_block(96, 256, 5, 1, 2), nn.MaxPool2d(3, 2),
                         _nin_block(256, 384, 3, 1, 1), nn.MaxPool2d(3, 2), nn.Dropout(0.5),
                         _nin_block(384, 10, 3, 1, 1), nn.AdaptiveAvgPool2d((1, 1)),
                         nn.Flatten())


class Inception(nn.Module):
    def __init__(self, c_in, c1, c2, c3, c4):
        super().__init__()
        self.p1_1 = nn.Conv2d(c_in, c1, 1)
        self.p2_1 = nn.Conv2d(c_in, c2[0], 1)
        self.p2_2 = nn.Conv2d(c2[0], c2[1], 3, padding=1)
        self.p3_1 = nn.Conv2d(c_in, c3[0], 1)
        self.p3_2 = nn.Conv2d(c3[0], c3[1], 5, padding=2)
        self.p4_1 = nn.MaxPool2d(3, stride=1, padding=1)
        self.p4_2 = nn.Conv2d(c_in, c4, 1)

    def forward(self, x):
        relu = torch.relu
        return torch.cat((relu(self.p1_1(x)), relu(self.p2_2(relu(self.p2_1(x)))),
                          relu(self.p3_2(relu(self.p3_1(x)))), relu(self.p4_2(self.p4_1(x)))),
                         dim=1)


def googlenet():
    pool = lambda: nn.MaxPool2d(3, 2, 1)  # noqa: E731
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 64, 7, 2, 3), nn.ReLU(), pool()),
        nn.Sequential(nn.Conv2d(64, 64, 1), nn.ReLU(), nn.Conv2d(64, 192, 3, padding=1),
                      nn.ReLU(), pool()),
        nn.Sequential(Inception(192, 64, (96, 128), (16, 32), 32),
                      Inception(256, 128, (128, 192), (32, 96), 64), pool()),
        nn.Sequential(Inception(480, 192, (96, 208), (16, 48), 64),
                      Inception(512, 160, (112, 224), (24, 64), 64),
                      Inception(512, 128, (128, 256), (24, 64), 64),
                      Inception(512, 112, (144, 288), (32, 64), 64),
                      Inception(528, 256, (160, 320), (32, 128), 128), pool()),
        nn.Sequential(Inception(832, 256, (160, 320), (32, 128), 128),
                      Inception(832, 384, (192, 384), (48, 128), 128),
                      nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten()),
        nn.Linear(1024, 10))


def lenet_bn():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(256, 120), nn.BatchNorm1d(120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Sigmoid(), nn.Linear(84, 10))


class Residual(nn.Module):
    def __init__(self, c_in, c_out, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.conv3 = nn.Conv2d(c_in, c_out, 1, stride=strides) if use_1x1conv else None
        self.bn1, self.bn2 = nn.BatchNorm2d(c_out), nn.BatchNorm2d(c_out)

    def forward(self, X):
        Y = torch.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        return torch.relu(Y + X)


def _stem():
    return nn.Sequential(nn.Conv2d(1, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU(),
                         nn.MaxPool2d(3, 2, 1))


def resnet18():
    def stage(c_in, c_out, first=False):
        return nn.Sequential(Residual(c_in, c_out, not first, 1 if first else 2),
                             Residual(c_out, c_out))
    return nn.Sequential(_stem(), stage(64, 64, True), stage(64, 128), stage(128, 256),
                         stage(256, 512), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                         nn.Linear(512, 10))


class DenseBlock(nn.Module):
    def __init__(self, num_convs, c_in, growth):
        super().__init__()
        self.net = nn.Sequential(*[
            nn.Sequential(nn.BatchNorm2d(c_in + i * growth), nn.ReLU(),
                          nn.Conv2d(c_in + i * growth, growth, 3, padding=1))
            for i in range(num_convs)])

    def forward(self, X):
        for block in self.net:
            X = torch.cat((X, block(X)), dim=1)
        return X


def densenet():
    blocks, c = [], 64
    for i in range(4):
        blocks.append(DenseBlock(4, c, 32))
        c += 4 * 32
        if i != 3:
            blocks.append(nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1),
                                        nn.AvgPool2d(2, 2)))
            c //= 2
    return nn.Sequential(_stem(), *blocks, nn.BatchNorm2d(c), nn.ReLU(),
                         nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(c, 10))


CASES = {
    "alexnet": (models.alexnet, alexnet, (1, 1, 224, 224), False),
    "vgg11": (lambda: models.vgg11(ratio=4), vgg11, (1, 1, 224, 224), False),
    "nin": (models.nin, nin, (2, 1, 96, 96), False),
    "googlenet": (models.googlenet, googlenet, (2, 1, 32, 32), False),
    "lenet-bn": (models.lenet_bn, lenet_bn, (8, 1, 28, 28), True),
    "resnet18": (models.resnet18, resnet18, (4, 1, 32, 32), True),
    "densenet": (models.densenet, densenet, (4, 1, 32, 32), True),
}


def pair(name: str, dtype: str, seed: int = 0):
    """(corrnet net, torch net with the same parameters and buffers), both in `dtype`, in
    train mode for BatchNorm networks and eval mode (no dropout) for the others."""
    build_cn, build_torch, _, has_bn = CASES[name]
    corrnet.manual_seed(seed)
    cn_net = build_cn()
    if dtype == "float64":
        cn_net = cn_net.double()
    torch_net = build_torch().to(getattr(torch, dtype))
    theirs = torch_net.state_dict()
    mine = cn_net.state_dict()
    assert sorted(mine) == sorted(theirs), "state dict names differ from the specification"
    for key, value in mine.items():
        assert tuple(value.shape) == tuple(theirs[key].shape), key
        theirs[key].copy_(torch.from_numpy(np.array(value.numpy())))
    cn_net.train(has_bn)
    torch_net.train(has_bn)
    return cn_net, torch_net


def inputs(name: str, seed: int = 0, shape=None):
    """(x, upstream gradient of the (N, 10) output) as float64 NumPy arrays; x has the
    case's shape unless `shape` is given."""
    shape = CASES[name][2] if shape is None else shape
    rng = np.random.default_rng(seed)
    return rng.random(shape), rng.standard_normal((shape[0], 10))
