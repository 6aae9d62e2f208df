"""The L1, smooth L1, Huber and mean squared error losses, hardtanh/relu6 and one_hot, against
PyTorch (corrnet.nn.functional and their modules). mse_loss joined the elementwise losses'
battery when it was written: it differed from PyTorch on integer operands (refused by
PyTorch), a bool target (taken, cast) and a 0-d operand beside a dimensioned one of another
float dtype (PyTorch broadcasts first).

Random operands of every floating and integer dtype (halves, so that differences land
exactly on beta, delta and the hardtanh limits, with NaN, infinities and -0.0 among them),
shapes that broadcast or not (PyTorch's warning then), empty ones, every reduction, a
weight: both libraries raise, or both return equal values of the same dtype and shape, and
in float64 equal gradients, the kinks included.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import corrnet

from torch_compare import assert_grad, assert_same

try:  # as a package module, or with pytest's rootdir/prepend import mode
    from .test_torch_names import arrays, outcome
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from test_torch_names import arrays, outcome

NUMBERS = ["float16", "float32", "float64", "int32", "int64", "uint8", "bool"]
REDUCTIONS = ["mean", "sum", "none"]


def F(lib):
    return lib.nn.functional


def assert_as_torch(call, what=""):
    """call(lib) in both libraries: both raise, or both return equal tensors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = outcome(corrnet, call), outcome(torch, call)
    assert ours[0] == theirs[0], f"{what}: corrnet {ours}, torch {theirs}"
    if ours[0] == "ok":
        assert_same(ours[1], theirs[1], what)
    return ours[0]


def assert_gradients_as_torch(call, sources, what=""):
    """The float64 leaves' gradients of call(lib, *leaves).sum() in both libraries."""
    grads = []
    for lib in (corrnet, torch):
        leaves = [lib.tensor(s, requires_grad=True) for s in sources]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call(lib, *leaves).sum().backward()
        grads.append([leaf.grad for leaf in leaves])
    for i, (got, expected) in enumerate(zip(*grads, strict=True)):
        assert_grad(got, expected, f"{what} grad {i}")


def _pair(draw, dtypes):
    """Two operands whose shapes are equal, broadcast, or (rarely) clash."""
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    other = draw(st.sampled_from(["same", "same", "broadcast", "any"]))
    if other == "same":
        second = shape
    elif other == "broadcast":
        second = tuple(1 if draw(st.booleans()) else s for s in shape)[
            draw(st.integers(0, len(shape))):]
    else:
        second = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    return draw(arrays(shape, dtypes)), draw(arrays(second, dtypes))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), reduction=st.sampled_from(REDUCTIONS),
       op=st.sampled_from(["l1_loss", "smooth_l1_loss", "huber_loss", "mse_loss"]),
       size=st.sampled_from([0.0, 0.5, 1.0, 2.0, -1.0]), weighted=st.booleans())
def test_elementwise_losses_match_torch(data, reduction, op, size, weighted):
    a, b = _pair(data.draw, NUMBERS)
    weight = data.draw(arrays(a.shape, ["float32", "float64"])) if weighted else None
    kwargs = {"reduction": reduction}
    if op == "smooth_l1_loss":
        kwargs["beta"] = size
    elif op == "huber_loss":
        kwargs["delta"] = size
    if op != "smooth_l1_loss" and weighted:
        kwargs_of = lambda lib: {**kwargs, "weight": lib.tensor(weight)}  # noqa: E731
    else:
        kwargs_of = lambda lib: kwargs  # noqa: E731
    what = f"{op}({a.dtype}{a.shape}, {b.dtype}{b.shape}, {kwargs}, weighted={weighted})"
    verdict = assert_as_torch(
        lambda lib: getattr(F(lib), op)(lib.tensor(a), lib.tensor(b), **kwargs_of(lib)), what)
    if verdict == "ok" and a.shape == b.shape and a.dtype.kind == "f" and b.dtype.kind == "f":
        # float64 gradients of both operands (and of the weight), the kinks included
        sources = [a.astype(np.float64), b.astype(np.float64)]
        if weighted and op != "smooth_l1_loss":
            sources.append(weight.astype(np.float64))

            def call(lib, x, y, w):
                return getattr(F(lib), op)(x, y, **{**kwargs, "weight": w})
        else:
            def call(lib, x, y):
                return getattr(F(lib), op)(x, y, **kwargs)
        assert_gradients_as_torch(call, sources, what)


def test_elementwise_losses_at_their_kinks():
    """Differences of exactly 0, +-beta/delta and beyond, in float64: values and gradients."""
    x = np.array([0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -3.0, 1e-300])
    y = np.zeros_like(x)
    for op, kwargs in [("l1_loss", {}), ("smooth_l1_loss", {"beta": 1.0}),
                       ("smooth_l1_loss", {"beta": 0.5}), ("smooth_l1_loss", {"beta": 0.0}),
                       ("huber_loss", {"delta": 1.0}), ("huber_loss", {"delta": 0.5})]:
        for reduction in REDUCTIONS:
            args = {**kwargs, "reduction": reduction}
            assert_as_torch(lambda lib, op=op, args=args: getattr(F(lib), op)(
                lib.tensor(x), lib.tensor(y), **args), f"{op} {args}")
            assert_gradients_as_torch(lambda lib, a, b, op=op, args=args: getattr(F(lib), op)(
                a, b, **args), [x, y], f"{op} {args}")


def test_elementwise_loss_modules_and_refusals():
    x, y = np.array([[0.5, -2.0], [3.0, 0.0]]), np.array([[0.0, 1.0], [1.0, 0.0]])
    for make in [lambda nn: nn.L1Loss(), lambda nn: nn.L1Loss(reduction="sum"),
                 lambda nn: nn.SmoothL1Loss(beta=0.5), lambda nn: nn.SmoothL1Loss(reduction="none"),
                 lambda nn: nn.HuberLoss(delta=2.0), lambda nn: nn.HuberLoss(reduction="sum")]:
        assert_as_torch(lambda lib, make=make: make(lib.nn)(lib.tensor(x), lib.tensor(y)))
        assert repr(make(corrnet.nn)) == repr(make(torch.nn))
    # refusals: a negative beta, a delta of 0, a weight of another shape, a bad reduction
    for call in [lambda lib: F(lib).smooth_l1_loss(lib.tensor(x), lib.tensor(y), beta=-0.5),
                 lambda lib: F(lib).huber_loss(lib.tensor(x), lib.tensor(y), delta=0.0),
                 lambda lib: F(lib).l1_loss(lib.tensor(x), lib.tensor(y),
                                            weight=lib.tensor([1.0, 2.0])),
                 lambda lib: F(lib).l1_loss(lib.tensor(x), lib.tensor(y), reduction="avg")]:
        assert assert_as_torch(call) == "raised"
    with pytest.raises(RuntimeError, match="beta"):
        corrnet.nn.functional.smooth_l1_loss(corrnet.tensor(x), corrnet.tensor(y), beta=-0.5)
    with pytest.raises(ValueError, match=r"weight of shape \(2,\), input of shape \(2, 2\)"):
        corrnet.nn.functional.l1_loss(corrnet.tensor(x), corrnet.tensor(y),
                                      weight=corrnet.tensor([1.0, 2.0]))
    # shapes that differ warn, in both
    for lib in (corrnet, torch):
        with pytest.warns(UserWarning, match="different to the input size"):
            F(lib).l1_loss(lib.tensor(x), lib.tensor(y[0]))


@settings(max_examples=120, deadline=None)
@given(source=arrays(dtypes=NUMBERS),
       limits=st.sampled_from([(-1.0, 1.0), (0.0, 6.0), (-0.5, 0.5), (1.0, 1.0), (2.0, 1.0),
                               (-2.5, 3.5), (0.5, 1.5)]),
       relu6=st.booleans())
def test_hardtanh_and_relu6_match_torch(source, limits, relu6):
    what = f"{'relu6' if relu6 else 'hardtanh'}({source.dtype}{source.shape}, {limits})"
    if relu6:
        call = lambda lib: F(lib).relu6(lib.tensor(source))  # noqa: E731
    else:
        call = lambda lib: F(lib).hardtanh(lib.tensor(source), *limits)  # noqa: E731
    verdict = assert_as_torch(call, what)
    if verdict == "ok" and source.dtype.kind == "f":
        # (PyTorch's gradient at NaN depends on where the NaN lies: 1 in its scalar loop, 0
        # in its vector one; corrnet's is 1. The gradients are compared without NaN.)
        numbers = np.nan_to_num(source.astype(np.float64), nan=0.25, posinf=np.inf,
                                neginf=-np.inf)
        if relu6:
            assert_gradients_as_torch(lambda lib, x: F(lib).relu6(x), [numbers], what)
        else:
            assert_gradients_as_torch(lambda lib, x: F(lib).hardtanh(x, *limits), [numbers],
                                      what)
    # in place, and as modules
    if verdict == "ok" and not relu6:
        assert_as_torch(lambda lib: F(lib).hardtanh(lib.tensor(source), *limits, inplace=True),
                        what + " in place")
    if limits[0] <= limits[1]:
        assert_as_torch(lambda lib: (lib.nn.ReLU6() if relu6 else lib.nn.Hardtanh(*limits))(
            lib.tensor(source)), what + " module")


def test_hardtanh_gradient_at_its_limits_and_reprs():
    x = np.array([-1.0, -0.5, 0.0, 1.0, 6.0, 7.0, -7.0])
    assert_gradients_as_torch(lambda lib, t: F(lib).hardtanh(t), [x], "hardtanh")
    assert_gradients_as_torch(lambda lib, t: F(lib).relu6(t), [x], "relu6")
    assert_gradients_as_torch(lambda lib, t: F(lib).hardtanh(t * 1, -0.5, 0.5, inplace=True),
                              [x], "hardtanh in place")
    for make in [lambda nn: nn.ReLU6(), lambda nn: nn.ReLU6(inplace=True),
                 lambda nn: nn.Hardtanh(), lambda nn: nn.Hardtanh(-2, 3, inplace=True)]:
        assert repr(make(corrnet.nn)) == repr(make(torch.nn))
    assert assert_as_torch(lambda lib: lib.nn.Hardtanh(2.0, 1.0)) == "raised"


@settings(max_examples=120, deadline=None)
@given(shape=st.lists(st.integers(0, 4), max_size=3),
       dtype=st.sampled_from(["int64", "int64", "int32", "float32", "bool"]),
       num_classes=st.sampled_from([-1, -1, 0, 1, 3, 7, -2]), seed=st.integers(0, 2**32 - 1))
def test_one_hot_matches_torch(shape, dtype, num_classes, seed):
    rng = np.random.default_rng(seed)
    source = rng.integers(-1 if rng.random() < 0.1 else 0, 7, shape).astype(dtype)
    assert_as_torch(lambda lib: F(lib).one_hot(lib.tensor(source), num_classes),
                    f"one_hot({source.dtype}{source.shape}, {num_classes})")


def test_one_hot_refusals_name_what_is_wrong():
    functional = corrnet.nn.functional
    with pytest.raises(RuntimeError, match="int64"):
        functional.one_hot(corrnet.tensor([0, 1], dtype=corrnet.int32))
    with pytest.raises(RuntimeError, match="empty"):
        functional.one_hot(corrnet.zeros(0, dtype=corrnet.int64))
    with pytest.raises(RuntimeError, match="num_classes=2"):
        functional.one_hot(corrnet.tensor([0, 2]), 2)
    with pytest.raises(TypeError, match="num_classes"):
        functional.one_hot(corrnet.tensor([0, 2]), 2.5)
    assert assert_as_torch(lambda lib: F(lib).one_hot(lib.tensor([0, 2]), 2.5)) == "raised"
    assert not functional.one_hot(corrnet.tensor([1, 0]), 3).requires_grad
