"""`corrnet.summary` on networks that are not a plain Sequential (issue 16): skip connections
joined by concatenation or a sum in a `forward`, and upsampling.

The oracle is a brute-force probe in PyTorch, never the summary itself: the same
architecture built in PyTorch, with positive weights and a positive input (so that nothing
cancels and every ReLU passes), and for each output pixel the input pixels whose change
changes it (the nonzero pattern of the Jacobian, by autograd). Every output's extent must
lie in the interval the summary states for it (`span` shifted by o * jump), no output may
see more than `rf` pixels, and rows the summary calls exact must be exact.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch as tt

import corrnet
from corrnet import nn


def _skip_net(n, cat, mode="nearest", join="cat", depth=1):
    """A U-Net-like block: encoder conv, `depth` levels of pool + conv, upsampling back,
    the skip joined by concatenation (or a sum), a decoder conv."""

    class Net(n.Module):
        def __init__(self):
            super().__init__()
            self.enc = n.Sequential(n.Conv2d(1, 2, 3, padding=1), n.ReLU())
            self.down = n.Sequential(*[layer for _ in range(depth) for layer in (
                n.AvgPool2d(2), n.Conv2d(2, 2, 3, padding=1, dilation=1))])
            kwargs = {} if mode.startswith("nearest") else {"align_corners": False}
            self.up = n.Upsample(scale_factor=2 ** depth, mode=mode, **kwargs)
            self.dec = n.Conv2d(4 if join == "cat" else 2, 1, (3, 1), padding=(1, 0))

        def forward(self, x):
            skip = self.enc(x)
            deep = self.up(self.down(skip))
            joined = cat([skip, deep], 1) if join == "cat" else skip + deep
            return self.dec(joined)

    return Net()


def _output_join(n, cat):
    """The output itself is computed outside any layer: a concatenation of two branches
    of different receptive fields."""

    class Net(n.Module):
        def __init__(self):
            super().__init__()
            self.a = n.Conv2d(1, 1, 3, padding=1)
            self.b = n.Sequential(n.Conv2d(1, 1, 5, padding=4, dilation=2), n.AvgPool2d(3, 1, 1))

        def forward(self, x):
            return cat([self.a(x), (self.b(x) * 0.5).relu()], 1)

    return Net()


def _jacobian_extents(net, shape):
    """{output position: [(lo, hi) per axis]} from the Jacobian of batch 0's output (any
    channel: the geometry is the feature map's)."""
    with tt.no_grad():
        for param in net.parameters():
            param.copy_(param.abs() + 0.1)
    net = net.double().eval()
    x = tt.rand(shape, dtype=tt.float64, generator=tt.Generator().manual_seed(0)) + 0.5
    jac = tt.autograd.functional.jacobian(lambda v: net(v)[0], x)  # (Co, Ho, Wo, N, C, H, W)
    pattern = (jac != 0).any(dim=(0, 3, 4)).numpy()                # (Ho, Wo, H, W)
    extents = {}
    for position in np.ndindex(*pattern.shape[:2]):
        rows, cols = np.nonzero(pattern[position])
        if rows.size:
            extents[position] = [(int(rows.min()), int(rows.max())),
                                 (int(cols.min()), int(cols.max()))]
    return extents


def _check(row, extents, sizes):
    assert row.span is not None and all(j is not None for j in row.jump), row
    widest = [0, 0]
    for position, extent in extents.items():
        for axis, (lo, hi) in enumerate(extent):
            first, last = row.span[axis]
            shift = position[axis] * row.jump[axis]
            assert first + shift <= lo and hi <= last + shift, (row.label, position, axis)
            widest[axis] = max(widest[axis], hi - lo + 1)
            if not row.rf_bound:  # exact: the full-width extents start at start + o * jump
                if hi - lo + 1 == row.rf[axis]:
                    assert lo == row.start[axis] + shift
    for axis in range(2):
        assert widest[axis] <= row.rf[axis]
        if not row.rf_bound:
            assert widest[axis] == row.rf[axis], (row.label, axis, widest)
        else:  # a bound, but not a loose one: within one step of the deepest layer
            assert widest[axis] >= min(row.rf[axis] - 2 ** 3, sizes[axis]), (row.label, axis)


CASES = [
    ("cat_nearest", lambda n, cat: _skip_net(n, cat, "nearest")),
    ("cat_bilinear_deep", lambda n, cat: _skip_net(n, cat, "bilinear", depth=2)),
    ("sum_bicubic", lambda n, cat: _skip_net(n, cat, "bicubic", join="sum")),
    ("cat_nearest_exact", lambda n, cat: _skip_net(n, cat, "nearest-exact", depth=2)),
    ("output_join", _output_join),
]


@pytest.mark.parametrize("build", [case[1] for case in CASES], ids=[c[0] for c in CASES])
def test_skip_connections_and_upsampling_against_the_jacobian(build):
    shape = (1, 1, 20, 16)
    s = corrnet.summary(build(nn, corrnet.cat), shape)
    assert s.output_row is not None and not s.output_row.rf_assumed
    assert all(not row.rf_assumed and row.rf is not None for row in s.rows)
    _check(s.output_row, _jacobian_extents(build(tt.nn, tt.cat), shape), shape[2:])


def test_upsample_rows_against_the_jacobian():
    """Each upsampling mode alone, after a strided layer (jump 2): the row's bound holds."""
    for mode in ("nearest", "nearest-exact", "bilinear", "bicubic"):
        kwargs = {} if mode.startswith("nearest") else {"align_corners": False}
        def build(n, mode=mode, kwargs=kwargs):
            return n.Sequential(n.Conv2d(1, 1, 3, stride=2),
                                n.Upsample(scale_factor=4, mode=mode, **kwargs))
        s = corrnet.summary(build(nn), (1, 1, 17, 13))
        row = s.rows[-1]
        assert row.rf_bound and row.jump == (0.5, 0.5), (mode, row)
        _check(row, _jacobian_extents(build(tt.nn), (1, 1, 17, 13)), (17, 13))


def test_output_row_of_a_plain_sequential_is_its_last_row():
    s = corrnet.summary(corrnet.models.lenet(), (1, 1, 28, 28))
    assert s.output_row.rf == s.rows[-1].rf and s.output_row.whole
    s = corrnet.summary(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2)),
                        (1, 1, 8, 8))
    assert (s.output_row.rf, s.output_row.jump, s.output_row.start) == ((4, 4), (2, 2), (-1, -1))
    assert s.output_row.span == ((-1, 2), (-1, 2))


def test_joins_that_cannot_be_followed_are_unknown():
    class Shifted(nn.Module):  # a skip joined after a crop: the shapes differ
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3)

        def forward(self, x):
            return corrnet.cat([self.conv(x), x[:, :, 1:-1, 1:-1]], 1)

    s = corrnet.summary(Shifted(), (1, 1, 9, 9))
    assert s.output_row.rf is None and "outside any layer" in s.output_row.why

    class Strided(nn.Module):  # two branches of the same shape but different jumps
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 1, 1, stride=2)
            self.b = nn.Conv2d(1, 1, 1, stride=3, padding=2)

        def forward(self, x):
            return self.a(x) + self.b(x)

    row = corrnet.summary(Strided(), (1, 1, 8, 8)).output_row
    assert row.rf_assumed and "different jumps" in row.why

    class Cropped(nn.Module):  # an op the graph cannot follow: assumed, and named
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 1, 1, stride=2), nn.AvgPool2d(2)

        def forward(self, x):
            return self.a(x)[:, :, :4, :4] + self.b(x)

    row = corrnet.summary(Cropped(), (1, 1, 8, 8)).output_row
    assert row.rf_assumed and "SliceBackward0 outside any layer" in row.why


def test_a_residual_block_is_followed_exactly():
    """models.Residual applies F.relu and adds the skip in its forward: every row exact."""
    from corrnet import show

    s = corrnet.summary(corrnet.models.Residual(1, 2), (1, 1, 8, 8))
    assert not any(row.rf_assumed or row.rf_bound for row in s.rows)
    assert s.output_row.rf == (5, 5) and not s.output_row.rf_assumed
    field = show.receptive_field(corrnet.models.Residual(1, 2), (1, 1, 8, 8), "conv2")
    assert field is not None
