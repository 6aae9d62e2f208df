"""`corrnet.summary`: the layer table.

LeNet's numbers are checked by hand; parameter counts, output shapes and MACs of other
networks against the same network built in PyTorch; receptive fields and jumps against a
brute force in PyTorch (back-propagate a one-hot output gradient and measure the nonzero
extent of the input gradient).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch as tt

import corrnet
from corrnet import models, nn
from corrnet.nn import functional as F
from corrnet.summary import Summary

# -- LeNet by hand --------------------------------------------------------------------------

LENET = [  # name, type, output shape, params, MACs, rf, jump, start
    ("0", "Conv2d", (1, 6, 28, 28), 156, 6 * 28 * 28 * 25, (5, 5), (1, 1), (-2, -2)),
    ("1", "Sigmoid", (1, 6, 28, 28), 0, 0, (5, 5), (1, 1), (-2, -2)),
    ("2", "AvgPool2d", (1, 6, 14, 14), 0, 0, (6, 6), (2, 2), (-2, -2)),
    ("3", "Conv2d", (1, 16, 10, 10), 2416, 16 * 10 * 10 * 150, (14, 14), (2, 2), (-2, -2)),
    ("4", "Sigmoid", (1, 16, 10, 10), 0, 0, (14, 14), (2, 2), (-2, -2)),
    ("5", "AvgPool2d", (1, 16, 5, 5), 0, 0, (16, 16), (4, 4), (-2, -2)),
    ("6", "Flatten", (1, 400), 0, 0, (16, 16), (None, None), (-2, -2)),
    ("7", "Linear", (1, 120), 48120, 48000, (28, 28), (None, None), (None, None)),
    ("8", "Sigmoid", (1, 120), 0, 0, (28, 28), (None, None), (None, None)),
    ("9", "Linear", (1, 84), 10164, 10080, (28, 28), (None, None), (None, None)),
    ("10", "Sigmoid", (1, 84), 0, 0, (28, 28), (None, None), (None, None)),
    ("11", "Linear", (1, 10), 850, 840, (28, 28), (None, None), (None, None)),
]


def test_lenet_rows_by_hand():
    s = corrnet.summary(models.lenet(), (1, 1, 28, 28))
    assert isinstance(s, Summary) and len(s.rows) == len(LENET)
    for row, (name, kind, shape, params, macs, rf, jump, start) in zip(s.rows, LENET,
                                                                       strict=True):
        got = (row.name, row.type, row.output_shape, row.params, row.trainable_params,
               row.macs, row.rf, row.jump, row.start)
        assert got == (name, kind, shape, params, params, macs, rf, jump, start), name
        assert not row.rf_bound and not row.rf_assumed
    assert [row.whole for row in s.rows] == [False] * 7 + [True] * 5
    assert s.rows[0].center == (0, 0)        # a padded 5x5 window is centred on its pixel
    assert s.rows[5].center == (Fraction(11, 2), Fraction(11, 2))


def test_lenet_totals_and_table():
    s = corrnet.summary(models.lenet(), (1, 1, 28, 28))
    assert s.total_params == s.trainable_params == 61706 and s.non_trainable_params == 0
    assert s.total_macs == 117600 + 240000 + 48000 + 10080 + 840 == 416520
    assert s.input_size == (1, 1, 28, 28) and s.output_shape == (1, 10)
    assert s.input_bytes == 28 * 28 * 4 and s.output_bytes == 40
    text = str(s)
    assert repr(s) == text
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("Layer (type)"))
    for column in ("Output shape", "Param #", "MACs", "RF", "Jump"):
        assert column in header
    first = next(line for line in lines if line.startswith("0 Conv2d"))
    assert first.split() == ["0", "Conv2d", "[1,", "6,", "28,", "28]", "156", "117,600",
                             "5x5", "1x1"]
    # aligned columns: every cell of a column starts where its header does
    for column, cell in (("Param #", "156"), ("MACs", "117,600"), ("RF", "5x5"),
                         ("Jump", "1x1")):
        assert first.index(cell) == header.index(column)
    assert "28x28 (all)" in text and "16x16" in text
    assert "Total params: 61,706" in text and "Total MACs: 416,520" in text
    assert "Input size: [1, 1, 28, 28]" in text and "Output size: [1, 10]" in text


def test_cli_prints_the_table(capsys):
    from corrnet import cli

    assert cli.main(["summary", "lenet"]) in (0, None)
    out = capsys.readouterr().out
    assert "117,600" in out and "Total params: 61,706" in out


# -- against PyTorch: parameter counts, output shapes, MACs ---------------------------------


def _strided_net(n):
    return n.Sequential(
        n.Conv2d(3, 8, kernel_size=3, stride=2, padding=1, bias=False),
        n.BatchNorm2d(8), n.ReLU(),
        n.Conv2d(8, 16, kernel_size=(3, 5), dilation=(2, 1), groups=4, padding="same"),
        n.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        n.ConvTranspose2d(16, 4, kernel_size=3, stride=2, padding=1, output_padding=1,
                          groups=2),
        n.AdaptiveAvgPool2d((3, 2)),
        n.Flatten(), n.Dropout(0.5), n.Linear(24, 5),
    )


def _sequence_net(n):
    return n.Sequential(
        n.Conv1d(2, 4, kernel_size=5, dilation=2, padding=3), n.Tanh(),
        n.AvgPool1d(2), n.ConvTranspose1d(4, 3, kernel_size=4, stride=3),
        n.MaxPool1d(3, stride=1), n.AdaptiveMaxPool1d(1), n.Flatten(), n.Linear(3, 2),
    )


def _lenet_torch():
    n = tt.nn
    return n.Sequential(
        n.Conv2d(1, 6, kernel_size=5, padding=2), n.Sigmoid(), n.AvgPool2d(2, 2),
        n.Conv2d(6, 16, kernel_size=5), n.Sigmoid(), n.AvgPool2d(2, 2), n.Flatten(),
        n.Linear(400, 120), n.Sigmoid(), n.Linear(120, 84), n.Sigmoid(), n.Linear(84, 10))


def _torch_rows(net, input_size):
    """(name, params, output shape, MACs) per leaf call, measured in PyTorch."""
    rows, names = [], {module: name for name, module in net.named_modules()}

    def hook(module, inputs, output):
        x = inputs[0]
        if isinstance(module, tt.nn.modules.conv._ConvTransposeNd):
            macs = x.numel() * module.weight[0].numel()
        elif isinstance(module, tt.nn.modules.conv._ConvNd):
            macs = output.numel() * module.weight[0].numel()
        elif isinstance(module, tt.nn.Linear):
            macs = output.numel() * module.in_features
        else:
            macs = 0
        rows.append((names[module], sum(p.numel() for p in module.parameters()),
                     tuple(output.shape), macs))

    handles = [m.register_forward_hook(hook) for m in net.modules()
               if not list(m.children())]
    with tt.no_grad():
        net.eval()(tt.zeros(input_size))
    for handle in handles:
        handle.remove()
    return rows, sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("build, torch_build, input_size", [
    (lambda: models.lenet(), _lenet_torch, (1, 1, 28, 28)),
    (lambda: models.lenet(), _lenet_torch, (3, 1, 28, 28)),
    (lambda: _strided_net(nn), lambda: _strided_net(tt.nn), (2, 3, 23, 18)),
    (lambda: _sequence_net(nn), lambda: _sequence_net(tt.nn), (2, 2, 41)),
])
def test_against_torch(build, torch_build, input_size):
    s = corrnet.summary(build(), input_size)
    expected, total = _torch_rows(torch_build(), input_size)
    assert [(r.name, r.params, r.output_shape, r.macs) for r in s.rows] == expected
    assert s.total_params == total and s.output_shape == expected[-1][2]
    assert s.total_macs == sum(row[3] for row in expected)


# -- receptive field and jump against a brute force in PyTorch ------------------------------


def _extents(net, input_size):
    """For each output position of channel 0 (batch 0): per spatial axis the [first, last]
    input index whose gradient is nonzero, when only that output's gradient is one (outputs
    that see nothing, in zero padding, are left out). The
    network's weights are made positive so that nothing cancels."""
    with tt.no_grad():
        for param in net.parameters():
            param.copy_(param.abs() + 0.1)
    net = net.double().eval()
    x = tt.zeros(input_size, dtype=tt.float64, requires_grad=True)
    out = net(x)
    extents = {}
    for position in np.ndindex(*out.shape[2:]):
        (grad,) = tt.autograd.grad(out[(0, 0, *position)], x, retain_graph=True)
        nonzero = np.nonzero(grad[0].abs().sum(0).numpy())
        if nonzero[0].size:  # outputs in zero padding see nothing
            extents[position] = [(int(idx.min()), int(idx.max())) for idx in nonzero]
    return extents


def _check_geometry(row, extents, tight=True):
    """No output sees more than rf elements, and (rows that are exact, or the first upper
    bound after exact rows) the widest see exactly rf: clipping by the input's border only
    narrows an extent. Exact rows: every one that sees rf elements starts at input index
    start + i*jump."""
    for axis in range(len(row.rf)):
        widths = {pos: hi - lo + 1 for pos, ext in extents.items() for lo, hi in [ext[axis]]}
        widest = max(widths.values())
        assert widest <= row.rf[axis] and (widest == row.rf[axis] or not tight), (
            row.name, axis, widest)
        if row.rf_bound or row.start[axis] is None:
            continue
        for position, width in widths.items():
            if width == row.rf[axis]:
                lo = extents[position][axis][0]
                assert lo == row.start[axis] + position[axis] * row.jump[axis], (
                    row.name, position, axis)


def _rf_cases():
    def stack(n):
        return n.Sequential(
            n.Conv2d(1, 2, kernel_size=3, stride=2, dilation=2, padding=1), n.Sigmoid(),
            n.Conv2d(2, 2, kernel_size=(3, 2), stride=(1, 2), dilation=(3, 1)),
            n.AvgPool2d(3, stride=2, padding=1),
            n.Conv2d(2, 2, kernel_size=2, dilation=2))

    def padded(n):
        return n.Sequential(n.ZeroPad2d((3, 0, 1, 2)), n.Conv2d(1, 1, 3, stride=2),
                            n.ConstantPad2d((1, 2, 0, 1), 0.0), n.Conv2d(1, 1, 2, stride=(2, 1)))

    def lenet_features(n):
        return n.Sequential(n.Conv2d(1, 6, 5, padding=2), n.Sigmoid(), n.AvgPool2d(2, 2),
                            n.Conv2d(6, 16, 5), n.Sigmoid(), n.AvgPool2d(2, 2))

    def transposed(n):
        return n.Sequential(n.Conv2d(1, 2, 3, stride=2), n.ConvTranspose2d(2, 2, 3, stride=2),
                            n.ConvTranspose2d(2, 1, (2, 4), stride=(1, 3), dilation=(2, 1)),
                            n.Conv2d(1, 1, 3))

    def adaptive(n):
        return n.Sequential(n.Conv2d(1, 1, 2), n.AdaptiveAvgPool2d((3, 4)))

    def sequence(n):
        return n.Sequential(n.Conv1d(1, 2, 3, dilation=3, padding=2), n.AvgPool1d(2),
                            n.Conv1d(2, 1, 4, stride=3, padding="valid"))

    return [(stack, (1, 1, 40, 36)), (padded, (1, 1, 21, 19)), (lenet_features, (1, 1, 28, 28)),
            (transposed, (1, 1, 13, 11)), (adaptive, (1, 1, 8, 11)), (sequence, (1, 1, 60))]


@pytest.mark.parametrize("build, input_size", _rf_cases(),
                         ids=[case[0].__name__ for case in _rf_cases()])
def test_receptive_field_by_brute_force(build, input_size):
    """Every prefix of the network: its last row against the brute force."""
    s = corrnet.summary(build(nn), input_size)
    torch_net = build(tt.nn)
    exact_before = True
    for end, row in enumerate(s.rows, start=1):
        if not isinstance(torch_net[end - 1], tt.nn.Sigmoid):
            _check_geometry(row, _extents(torch_net[:end], input_size), tight=exact_before)
        exact_before = not row.rf_bound


def test_marks_of_bounds():
    s = corrnet.summary(nn.Sequential(nn.Conv2d(1, 1, 3, stride=2),
                                      nn.ConvTranspose2d(1, 1, 3, stride=2),
                                      nn.AdaptiveAvgPool2d((3, 3))), (1, 1, 15, 15))
    assert s.rows[1].jump == (1, 1) and s.rows[1].rf_bound and s.rows[1].rf_text == "<=5x5"
    assert not corrnet.summary(nn.ConvTranspose2d(1, 1, 3), (1, 1, 5, 5)).rows[0].rf_bound
    jump = corrnet.summary(nn.ConvTranspose2d(1, 1, 4, stride=2), (1, 1, 5, 5)).rows[0].jump
    assert jump == (Fraction(1, 2), Fraction(1, 2))
    adaptive = corrnet.summary(nn.AdaptiveAvgPool2d((4, 3)), (1, 1, 15, 10)).rows[0]
    assert adaptive.jump_text == "3.75x10/3" and adaptive.rf_text == "<=5x4"
    assert "<= upper bound" in str(s)
    divisible = corrnet.summary(nn.AdaptiveMaxPool2d((2, 4)), (1, 1, 6, 8)).rows[0]
    assert (divisible.rf, divisible.jump, divisible.rf_bound) == ((3, 2), (3, 2), False)


def test_whole_input_and_one_axis():
    s = corrnet.summary(nn.Sequential(nn.Conv1d(1, 4, 7), nn.AdaptiveAvgPool1d(1),
                                      nn.Flatten(), nn.Linear(4, 2)), (1, 1, 50))
    assert [row.rf_text for row in s.rows] == ["7", "50 (all)", "50 (all)", "50 (all)"]
    assert [row.jump_text for row in s.rows] == ["1", "-", "-", "-"]
    mlp = corrnet.summary(nn.Sequential(nn.Linear(784, 10), nn.ReLU()), (5, 784))
    assert [row.rf_text for row in mlp.rows] == ["all", "all"]
    assert mlp.rows[0].macs == 5 * 784 * 10


# -- modules other than a plain Sequential --------------------------------------------------


class _Custom(nn.Module):
    """Nested containers, a functional op between layers, a module called twice and a
    leaf of a type summary does not know."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(4, 4, 3, padding=1))
        self.shared = nn.Conv2d(4, 4, 1)
        self.scale = _Scale()
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 3))

    def forward(self, x):
        x = self.features(x)
        x = F.max_pool2d(F.relu(x), 2)
        x = self.shared(self.shared(x))
        return self.classifier(self.scale(x))


class _Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(corrnet.ones(1))

    def forward(self, x):
        return x * self.weight


def test_custom_module_names_shared_weights_and_unknowns():
    net = _Custom()
    s = corrnet.summary(net, (2, 1, 8, 8))
    assert [row.name for row in s.rows] == ["features.0", "features.1", "features.2",
                                            "shared", "shared", "scale", "classifier.0",
                                            "classifier.1"]
    assert [row.params for row in s.rows] == [40, 0, 148, 20, 0, 1, 0, 195]
    assert s.total_params == sum(row.params for row in s.rows) == 404
    # the max-pool is functional: the shape changed where no layer saw it
    assert s.rows[2].rf == (5, 5) and s.rows[3].rf is None and s.rows[3].rf_text == "?"
    assert s.rows[5].macs is None and "(at least)" in str(s)
    assert s.rows[7].whole and s.rows[7].rf_text == "8x8 (all)"
    assert s.total_macs == 2 * (4 * 64 * 9 + 4 * 64 * 36 + 2 * 4 * 16 * 4 + 64 * 3)


def test_functional_elementwise_op_is_followed():
    """An elementwise op in a forward is followed through the autograd graph: exact."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3)

        def forward(self, x):
            return self.conv2(F.relu(self.conv1(x)) * 2 + 1)

    s = corrnet.summary(Net(), (1, 1, 9, 9))
    assert s.rows[1].rf == (5, 5) and not s.rows[1].rf_assumed and s.rows[1].rf_text == "5x5"


def test_functional_op_that_keeps_the_shape_is_marked_assumed():
    """An op the graph cannot follow (a functional pool) that keeps the shape: the geometry
    of the last output of that shape is assumed, and the op is named."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3)

        def forward(self, x):
            return self.conv2(F.avg_pool2d(self.conv1(x), 3, stride=1, padding=1))

    s = corrnet.summary(Net(), (1, 1, 9, 9))
    assert s.rows[1].rf == (5, 5) and s.rows[1].rf_assumed and s.rows[1].rf_text == "~5x5"
    assert "AvgPool2DBackward0" in s.rows[1].why and "~ assumed" in str(s)


def test_single_layer_and_dtype():
    s = corrnet.summary(nn.Conv2d(3, 2, 3, bias=False).double(), [4, 3, 5, 5],
                        dtype=corrnet.float64)
    assert s.rows[0].name == "" and s.rows[0].label == "Conv2d"
    assert s.rows[0].macs == 4 * 2 * 3 * 3 * 27 and s.total_params == 54
    assert s.input_bytes == 4 * 3 * 5 * 5 * 8 and "float64" in str(s)


def test_state_is_restored():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(), nn.Flatten(),
                        nn.Linear(2 * 4 * 4, 1))
    net[4].weight.requires_grad_(False)
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    s = corrnet.summary(net, (1, 1, 6, 6))
    assert all(module.training for module in net.modules())
    assert all("forward" not in module.__dict__ for module in net.modules())
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key])
    assert s.trainable_params == s.total_params - 32 and s.rows[4].trainable_params == 1
    assert s.rows[1].rf == s.rows[2].rf == (3, 3)  # BatchNorm (eval) and Dropout: elementwise
    net.eval()
    corrnet.summary(net, (1, 1, 6, 6))
    assert not any(module.training for module in net.modules())


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("input_size, layer, shape", [
    ((1, 3, 28, 28), "'0' (Conv2d)", "(1, 3, 28, 28)"),     # wrong channels
    ((28, 28), "'0' (Conv2d)", "(28, 28)"),                 # wrong rank
    ((1, 28, 28), "'7' (Linear)", "(16, 25)"),              # read as one unbatched image
    ((1, 1, 32, 32), "'7' (Linear)", "(1, 576)"),           # wrong size
])
def test_failing_layer_is_named(input_size, layer, shape):
    net = models.lenet()
    with pytest.raises((RuntimeError, ValueError)) as info:
        corrnet.summary(net, input_size)
    message = str(info.value)
    assert f"layer {layer}" in message and shape in message, message
    assert info.value.__cause__ is not None
    assert all("forward" not in module.__dict__ for module in net.modules())
    assert all(module.training for module in net.modules())


def test_failure_outside_any_layer_is_located():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return self.conv(x).reshape(7, -1)

    with pytest.raises(RuntimeError, match="after layer 'conv'"):
        corrnet.summary(Net(), (1, 1, 5, 5))


@pytest.mark.parametrize("input_size, error", [
    (28, TypeError), ("1x28x28", TypeError), ((1, 0, 28), ValueError), ((), ValueError),
    ((1, 1.5, 28), ValueError),
])
def test_bad_input_size(input_size, error):
    with pytest.raises(error, match="input_size"):
        corrnet.summary(models.lenet(), input_size)


def test_net_must_be_a_module():
    with pytest.raises(TypeError, match="net must be a corrnet.nn.Module"):
        corrnet.summary(tt.nn.Linear(2, 2), (1, 2))


def test_large_macs_in_millions():
    s = corrnet.summary(nn.Conv2d(3, 64, 3, padding=1), (8, 3, 64, 64))
    assert s.total_macs == 8 * 64 * 64 * 64 * 27
    assert f"({s.total_macs / 1e6:.2f} M)" in str(s)
    assert math.isclose(s.total_macs / 1e6, 56.623104)
