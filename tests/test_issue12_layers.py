"""Issue 12's layers beyond the oracle comparisons (tests/oracle/test_issue12_layers_oracle.py):
float64 finite-difference checks of every new backward, the exactness of interpolate's
backward (it is the adjoint of the forward), Dropout2d's channel-wise semantics and warnings,
the modules' reprs and parameters against PyTorch's, argument errors, and the docstring
examples.
"""

from __future__ import annotations

import doctest
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as tF

import corrnet
from corrnet import nn
from corrnet.nn import _layer_ops, activation, dropout, normalization, pixelshuffle, upsampling
from corrnet.nn import functional as F

EPS = 1e-6


def _finite_difference_check(op, *arrays, seed=0, rtol=1e-5, atol=1e-6):
    """corrnet's backward of ``sum(op(*tensors) * G)`` against central differences of its
    forward (float64), for every input."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    tensors = [corrnet.tensor(a.copy(), requires_grad=True) for a in arrays]
    out = op(*tensors)
    upstream = np.random.default_rng(seed).standard_normal(tuple(out.shape))
    out.backward(corrnet.tensor(upstream))

    def phi(values):
        with corrnet.no_grad():
            result = op(*[corrnet.tensor(v) for v in values])
        return float(np.sum(result.numpy() * upstream))

    for i, a in enumerate(arrays):
        numeric = np.zeros_like(a)
        for index in np.ndindex(a.shape):
            plus = [v.copy() for v in arrays]
            minus = [v.copy() for v in arrays]
            plus[i][index] += EPS
            minus[i][index] -= EPS
            numeric[index] = (phi(plus) - phi(minus)) / (2 * EPS)
        np.testing.assert_allclose(tensors[i].grad.numpy(), numeric, rtol=rtol, atol=atol,
                                   err_msg=f"input {i}")


def _away_from(values, kinks, margin=0.05):
    """Values moved at least `margin` away from each kink (finite differences need smooth
    neighbourhoods)."""
    values = values.copy()
    for kink in kinks:
        near = np.abs(values - kink) < margin
        values[near] = kink + margin * 2
    return values


RNG = np.random.default_rng(12)
X = _away_from(RNG.standard_normal((2, 3, 4)) * 3, (0.0, 3.0, -3.0))

ACTIVATION_CASES = [
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.2)),
    ("leaky_relu negative slope", lambda x: F.leaky_relu(x, -1.5)),
    ("elu", lambda x: F.elu(x, 1.7)),
    ("gelu", F.gelu),
    ("gelu tanh", lambda x: F.gelu(x, approximate="tanh")),
    ("silu", F.silu),
    ("mish", F.mish),
    ("hardswish", F.hardswish),
    ("softplus", lambda x: F.softplus(x, beta=2.0, threshold=5.0)),
    ("expm1", _layer_ops.Expm1.apply),
    ("erf", _layer_ops.Erf.apply),
    ("log1p", lambda x: _layer_ops.Log1p.apply(x.abs())),
]


@pytest.mark.parametrize("name,op", ACTIVATION_CASES, ids=[c[0] for c in ACTIVATION_CASES])
def test_issue12_activation_gradients_match_finite_differences(name, op):
    x = X if name != "softplus" else _away_from(X, (2.5,))  # beta * x = threshold
    _finite_difference_check(op, x)


def test_issue12_prelu_gradients_match_finite_differences():
    weight = np.array([0.3, -0.5, 1.2])
    _finite_difference_check(F.prelu, X, weight)
    _finite_difference_check(F.prelu, X, np.array([0.7]))


NORM_CASES = [
    ("layer_norm", lambda x, w, b: F.layer_norm(x, (3, 4), w.reshape(3, 4), b.reshape(3, 4)),
     12),
    ("layer_norm last dim", lambda x, w, b: F.layer_norm(x, (4,), w[:4], b[:4]), 12),
    ("group_norm", lambda x, w, b: F.group_norm(x.reshape(2, 6, 2), 3, w[:6], b[:6]), 12),
    ("instance_norm", lambda x, w, b: F.instance_norm(x, weight=w[:3], bias=b[:3]), 12),
    ("local_response_norm",
     lambda x, w, b: F.local_response_norm(x * w[0] + b[0], 3, 0.5, 0.75, 1.5), 12),
]


@pytest.mark.parametrize("name,op,size", NORM_CASES, ids=[c[0] for c in NORM_CASES])
def test_issue12_normalization_gradients_match_finite_differences(name, op, size):
    rng = np.random.default_rng(3)
    _finite_difference_check(op, X, rng.uniform(0.5, 1.5, size), rng.uniform(-1, 1, size))


def test_issue12_pixel_shuffle_gradients_match_finite_differences():
    x = RNG.standard_normal((1, 8, 2, 3))
    _finite_difference_check(lambda t: F.pixel_shuffle(t, 2), x)
    _finite_difference_check(lambda t: F.pixel_unshuffle(t, 2), x.reshape(1, 2, 4, 6))


INTERPOLATE_CASES = [
    {"size": (5, 7), "mode": "nearest"},
    {"scale_factor": 1.5, "mode": "nearest-exact"},
    {"size": (5, 2), "mode": "bilinear"},
    {"size": (5, 7), "mode": "bilinear", "align_corners": True},
    {"scale_factor": (0.7, 1.6), "mode": "bicubic"},
    {"size": (2, 2), "mode": "bilinear", "antialias": True},
    {"size": (2, 3), "mode": "bicubic", "antialias": True},
    {"size": (3, 2), "mode": "area"},
]


@pytest.mark.parametrize("kwargs", INTERPOLATE_CASES, ids=str)
def test_issue12_interpolate_gradients_match_finite_differences(kwargs):
    x = RNG.standard_normal((1, 2, 4, 5))
    _finite_difference_check(lambda t: F.interpolate(t, **kwargs), x)


@pytest.mark.parametrize("kwargs", INTERPOLATE_CASES, ids=str)
def test_issue12_interpolate_backward_is_the_exact_adjoint(kwargs):
    """<A x, g> = <x, A^T g>: the backward scatters each output's gradient with the forward's
    weights (float64, to rounding)."""
    rng = np.random.default_rng(5)
    x = corrnet.tensor(rng.standard_normal((2, 3, 6, 9)), requires_grad=True)
    out = F.interpolate(x, **kwargs)
    g = rng.standard_normal(tuple(out.shape))
    out.backward(corrnet.tensor(g))
    forward_side = float(np.sum(out.detach().numpy() * g))
    backward_side = float(np.sum(x.detach().numpy() * x.grad.numpy()))
    assert forward_side == pytest.approx(backward_side, rel=1e-12, abs=1e-12)


def test_issue12_antialias_axis_kept_by_a_scale_factor_has_the_identity_gradient():
    """A scale factor that keeps an axis's size (2 * 1.3 -> 2): the antialiased forward leaves
    the axis as it is (as PyTorch's), so its gradient is the upstream one. (PyTorch 2.13's
    backward applies the filter there all the same: its gradient is not that of its forward.)"""
    x = corrnet.tensor([[[[1.0, 5.0]]]], requires_grad=True)
    out = F.interpolate(x, scale_factor=1.3, mode="bilinear", antialias=True)
    expected = tF.interpolate(torch.tensor([[[[1.0, 5.0]]]]), scale_factor=1.3,
                              mode="bilinear", antialias=True)
    np.testing.assert_array_equal(out.detach().numpy(), expected.numpy())
    np.testing.assert_array_equal(out.detach().numpy(), x.detach().numpy())
    out.backward(corrnet.tensor([[[[0.25, -0.5]]]]))
    np.testing.assert_array_equal(x.grad.numpy(), [[[[0.25, -0.5]]]])


def test_issue12_antialias_of_a_one_pixel_wide_image_is_that_of_a_wider_one():
    """Resizing (3, 1) to (2, 1) with antialias gives the column of the (3, 2) -> (2, 2)
    resize. (PyTorch 2.13 repeats the first output row when the output is 1 pixel wide:
    [1.375, 1.375].)"""
    column = np.array([1.0, 2.0, 4.0]).reshape(1, 1, 3, 1)
    ours = F.interpolate(corrnet.tensor(column), size=(2, 1), mode="bilinear", antialias=True)
    wide = tF.interpolate(torch.tensor(np.repeat(column, 2, axis=3)), size=(2, 2),
                          mode="bilinear", antialias=True)
    np.testing.assert_allclose(ours.numpy()[..., 0], wide.numpy()[..., 0], rtol=1e-12)
    np.testing.assert_allclose(ours.numpy().reshape(-1), [1.375, 3.25])


def test_issue12_interpolate_keeps_a_nonfinite_value_local_as_torch():
    x = np.zeros((1, 1, 6, 6))
    x[0, 0, 2, 3] = np.inf
    for kwargs in ({"size": (9, 11), "mode": "bilinear"}, {"scale_factor": 2, "mode": "nearest"},
                   {"size": (3, 3), "mode": "bilinear", "antialias": True}):
        ours = F.interpolate(corrnet.tensor(x), **kwargs).numpy()
        theirs = tF.interpolate(torch.tensor(x), **kwargs).numpy()
        np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs), err_msg=str(kwargs))


def test_issue12_interpolate_of_a_long_image_to_96_is_the_book_resize():
    x = corrnet.tensor(np.random.default_rng(96).random((2, 1, 28, 28), dtype=np.float32))
    out = F.interpolate(x, size=(96, 96), mode="bilinear", antialias=True)
    # against PyTorch in float64: its float32 result is off by up to 2e-6 itself
    expected = tF.interpolate(torch.tensor(x.numpy(), dtype=torch.float64), size=(96, 96),
                              mode="bilinear", antialias=True)
    assert out.shape == (2, 1, 96, 96) and out.dtype == corrnet.float32
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- Dropout2d


def test_issue12_dropout2d_zeroes_whole_channels_and_scales_the_rest():
    corrnet.manual_seed(0)
    x = corrnet.ones(64, 32, 3, 3, requires_grad=True)
    out = F.dropout2d(x, p=0.25)
    values = out.detach().numpy()
    per_channel = values.reshape(64, 32, 9)
    assert np.all(per_channel == per_channel[:, :, :1])  # a channel is kept or dropped whole
    assert set(np.unique(values)) <= {0.0, np.float32(1 / 0.75)}
    dropped = np.mean(per_channel[:, :, 0] == 0)
    assert 0.2 < dropped < 0.3  # 2048 channels, p = 0.25
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), values)  # the gradient is the mask


def test_issue12_dropout2d_module_train_eval_and_edge_probabilities():
    x = corrnet.randn(2, 3, 4, 4)
    layer = nn.Dropout2d(0.5)
    assert repr(layer) == repr(torch.nn.Dropout2d(0.5)) == "Dropout2d(p=0.5, inplace=False)"
    layer.eval()
    assert layer(x) is x
    layer.train()
    assert not np.any(F.dropout2d(x, p=1.0).numpy())
    assert F.dropout2d(x, p=0.0) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout2d(1.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout2d(x, p=-0.1)


def test_issue12_dropout2d_inplace_writes_into_the_input():
    corrnet.manual_seed(1)
    x = corrnet.ones(4, 8, 2, 2)
    out = F.dropout2d(x, p=0.5, inplace=True)
    np.testing.assert_array_equal(x.numpy(), out.numpy())
    assert np.any(x.numpy() == 0) and np.any(x.numpy() == 2)


@pytest.mark.parametrize("shape", [(4, 6, 5), (4, 6), (2, 3, 4, 4, 4)])
def test_issue12_dropout2d_warns_as_torch_for_other_ranks(shape):
    """3-D input is taken as (N, C, L) (one mask per (n, c)), other ranks are deprecated:
    the same warnings as PyTorch's."""
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        tF.dropout2d(torch.ones(shape), 0.5)
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        corrnet.manual_seed(2)
        out = F.dropout2d(corrnet.ones(*shape), 0.5).numpy()
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
    assert all(w.filename == __file__ for w in ours)  # attributed to the caller
    flat = out.reshape(shape[0], shape[1], -1)
    assert np.all(flat == flat[:, :, :1])


# ------------------------------------------------------------------ modules against torch

MODULES = [
    ("LeakyReLU", ()), ("LeakyReLU", (0.2, True)), ("ELU", ()), ("ELU", (2.0, True)),
    ("GELU", ()), ("GELU", ("tanh",)), ("SiLU", ()), ("SiLU", (True,)), ("Mish", ()),
    ("PReLU", ()), ("PReLU", (3, 0.1)), ("Hardswish", ()), ("Softplus", (2.0, 10.0)),
    ("Dropout2d", (0.3,)), ("LayerNorm", (10,)), ("LayerNorm", ([2, 3], 1e-3, False)),
    ("LayerNorm", (4, 1e-5, True, False)), ("GroupNorm", (2, 6)),
    ("GroupNorm", (3, 6, 1e-3, False)), ("InstanceNorm1d", (3,)), ("InstanceNorm2d", (3,)),
    ("InstanceNorm2d", (3, 1e-5, 0.1, True, True)),
    ("LocalResponseNorm", (2,)), ("LocalResponseNorm", (5, 1e-3, 0.5, 2.0)),
    ("PixelShuffle", (2,)), ("PixelUnshuffle", (3,)), ("Upsample", (None, 2)),
    ("Upsample", ((3, 4), None, "bilinear", True)), ("Upsample", (5,)),
    ("UpsamplingNearest2d", (None, 2)), ("UpsamplingBilinear2d", (3,)),
]


@pytest.mark.parametrize("name,args", MODULES, ids=[f"{n}{a}" for n, a in MODULES])
def test_issue12_modules_print_and_hold_what_torch_does(name, args):
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    for key, value in theirs_state.items():
        np.testing.assert_array_equal(ours_state[key].numpy(), value.numpy(), err_msg=key)
        assert str(ours_state[key].dtype) == str(value.dtype)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


def test_issue12_module_construction_errors_match_torch():
    with pytest.raises(ValueError, match=r"num_channels \(6\) must be divisible by num_groups"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match="expected input's size at dim=1"):
        nn.InstanceNorm2d(4, affine=True)(corrnet.ones(2, 3, 4, 4))
    with pytest.warns(UserWarning, match="does not match num_features"):
        nn.InstanceNorm2d(4)(corrnet.ones(2, 3, 4, 4))
    with pytest.raises(ValueError, match="expected 3D or 4D input"):
        nn.InstanceNorm2d(3)(corrnet.ones(2, 3, 4, 4, 4))


def test_issue12_layers_train_in_a_small_network():
    """The new layers together in one network: a few SGD steps lower the loss."""
    corrnet.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.GELU(), nn.Dropout2d(0.1),
        nn.Conv2d(8, 8, 3, padding=1), nn.InstanceNorm2d(8, affine=True), nn.LeakyReLU(0.1),
        nn.LocalResponseNorm(3), nn.Upsample(scale_factor=0.5, mode="bilinear"),
        nn.PixelUnshuffle(2), nn.Flatten(), nn.LayerNorm(128), nn.PReLU(), nn.Linear(128, 3),
        nn.Mish())
    x, y = corrnet.randn(16, 1, 8, 8), corrnet.randint(0, 3, (16,))
    optimizer = corrnet.optim.SGD(net.parameters(), lr=0.1)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0]


# ------------------------------------------------------------------------- argument errors

ERRORS = [
    (lambda: F.gelu(corrnet.ones(2), approximate="fast"), RuntimeError, "approximate"),
    (lambda: F.elu(corrnet.ones(2, dtype=corrnet.int64)), RuntimeError, "int64"),
    (lambda: F.leaky_relu(corrnet.ones(2), "0.1"), TypeError, "negative_slope"),
    (lambda: F.prelu(corrnet.ones(2, 3), corrnet.ones(2)), RuntimeError,
     "parameter numbers = 2 and channel size = 3"),
    (lambda: F.layer_norm(corrnet.ones(2, 3), (4,)), RuntimeError, r"\[\*, 4\].*\[2, 3\]"),
    (lambda: F.group_norm(corrnet.ones(2, 6), 4), RuntimeError, "num_groups=4"),
    (lambda: F.local_response_norm(corrnet.ones(2, 3), 2), ValueError, "3D or higher"),
    (lambda: F.pixel_shuffle(corrnet.ones(1, 5, 2, 2), 2), RuntimeError, "divisible"),
    (lambda: F.interpolate(corrnet.ones(1, 1, 4, 4), size=2, mode="linear"),
     NotImplementedError, "linear mode needs 3D"),
    (lambda: F.interpolate(corrnet.ones(1, 1, 4, 4)), ValueError, "either size or"),
    (lambda: F.interpolate(corrnet.ones(1, 1, 4, 4), size=(1, 2, 3)), ValueError,
     "spatial dimensions"),
    (lambda: F.interpolate(corrnet.ones(1, 1, 4, 4), scale_factor=2, mode="bilinear",
                           antialias="yes"), TypeError, "antialias"),
]


@pytest.mark.parametrize("call,error,match", ERRORS, ids=[e[2] for e in ERRORS])
def test_issue12_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ------------------------------------------------------------------------ docstring examples

NEW_FUNCTIONS = ["leaky_relu", "elu", "gelu", "silu", "softplus", "mish", "hardswish", "prelu",
                 "dropout2d", "layer_norm", "group_norm", "instance_norm",
                 "local_response_norm", "pixel_shuffle", "pixel_unshuffle", "interpolate"]


@pytest.mark.parametrize("target", [activation, normalization, dropout, pixelshuffle, upsampling,
                                    *[getattr(F, name) for name in NEW_FUNCTIONS]],
                         ids=lambda t: t.__name__)
def test_issue12_docstring_examples(target):
    globs = {"corrnet": corrnet, "F": F, "nn": nn, "np": np}
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(target, target.__name__, globs=globs) if t.examples]
    assert tests, f"{target.__name__} has no docstring example"
    for test in tests:
        corrnet.manual_seed(0)
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
