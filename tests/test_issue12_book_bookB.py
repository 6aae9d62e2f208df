"""Issue 12: facts from the book's modern-CNN sections (batch normalization, ResNet, DenseNet,
CNN design) that corrnet got wrong, each compared with PyTorch."""

from __future__ import annotations

import torch

import corrnet


def _residual_like(lib):
    """A block shaped as the classic ResNet section's: two convs, an optional 1x1 conv, then
    two BatchNorms registered after the convs, and a ReLU."""
    block = lib.nn.Module()
    block.conv1 = lib.nn.Conv2d(3, 6, kernel_size=3, padding=1, stride=2)
    block.conv2 = lib.nn.Conv2d(6, 6, kernel_size=3, padding=1)
    block.conv3 = lib.nn.Conv2d(3, 6, kernel_size=1, stride=2)
    block.bn1 = lib.nn.BatchNorm2d(6)
    block.bn2 = lib.nn.BatchNorm2d(6)
    block.relu = lib.nn.ReLU()
    return block


def test_issue12_book_state_dict_order_is_per_module():
    # PyTorch lists each module's parameters, then its buffers, then its children's: bn1's
    # running statistics come before bn2's weight
    ours = list(_residual_like(corrnet).state_dict())
    theirs = list(_residual_like(torch).state_dict())
    assert ours == theirs
    assert ours.index("bn1.num_batches_tracked") < ours.index("bn2.weight")
    loaded = _residual_like(corrnet)
    loaded.load_state_dict(_residual_like(corrnet).state_dict())
