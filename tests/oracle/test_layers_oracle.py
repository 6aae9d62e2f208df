"""Oracle tests: corrnet's layers, activations and losses against PyTorch.

Functional forms go through `helpers.check_op` (forward values, shapes, dtypes, requires_grad
flags, the gradient of every input for a random upstream gradient, and rejection of whatever
PyTorch rejects). Modules are compared with the same parameters copied into both libraries,
over several training steps where they keep state (BatchNorm's running statistics).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch as tt
import torch.nn.functional as tF
from hypothesis import given
from hypothesis import strategies as st

import corrnet as ct
from corrnet import nn as cnn
from corrnet.nn import functional as cF

try:  # works both as a package module and with pytest's rootdir/prepend import mode
    from .helpers import (
        assert_close,
        check_functional,
        check_op,
        oracle_settings,
        random_array,
        tensor_of,
        to_numpy,
    )
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from helpers import (
        assert_close,
        check_functional,
        check_op,
        oracle_settings,
        random_array,
        tensor_of,
        to_numpy,
    )

SETTINGS = oracle_settings(60)
FLOAT_DTYPES = st.sampled_from([np.float32, np.float64])


def _accepted(res) -> None:
    assert not res.rejected, f"valid configuration rejected by torch: {res.torch_error}"


# ---------------------------------------------------------------------------------- linear


@SETTINGS
@given(lead=st.lists(st.integers(0, 4), min_size=0, max_size=3), n_in=st.integers(0, 6),
       n_out=st.integers(0, 6), bias=st.booleans(), dtype=FLOAT_DTYPES, seed=st.integers(0, 99))
def test_linear(lead, n_in, n_out, bias, dtype, seed):
    """Zero sizes included (issue 11: 0 features crashed the backward with a reshape)."""
    rng = np.random.default_rng(seed)
    x = random_array(rng, (*lead, n_in), dtype)
    w = random_array(rng, (n_out, n_in), dtype)
    b = random_array(rng, (n_out,), dtype) if bias else None
    _accepted(check_functional("linear", x, w, b))


@pytest.mark.parametrize("grads", [(True, False, True), (False, True, False), (False, False, True)])
def test_linear_partial_gradients(grads):
    rng = np.random.default_rng(0)
    arrays = [random_array(rng, s) for s in ((3, 4), (5, 4), (5,))]
    _accepted(check_op(cF.linear, tF.linear, arrays, requires_grad=list(grads)))


@pytest.mark.parametrize("shapes", [((3, 4), (4,), None), ((3, 4), (5, 4), (1,)),
                                    ((3, 4), (5, 4), (5, 1)), ((3, 4), (5, 3), None),
                                    ((4,), (5, 4), (5,))])
def test_linear_shape_corners(shapes):
    rng = np.random.default_rng(1)
    arrays = [None if s is None else random_array(rng, s) for s in shapes]
    check_op(cF.linear, tF.linear, arrays)


def test_linear_dtype_mismatch_rejected():
    rng = np.random.default_rng(2)
    res = check_op(cF.linear, tF.linear, [random_array(rng, (3, 4), np.float32),
                                          random_array(rng, (5, 4), np.float64)])
    assert res.rejected


# ------------------------------------------------------------------------------ activations


@st.composite
def _shape_and_dim(draw, min_dims=1, max_dims=4):
    shape = draw(st.lists(st.integers(1, 5), min_size=min_dims, max_size=max_dims))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    return tuple(shape), dim


@SETTINGS
@given(case=_shape_and_dim(), dtype=FLOAT_DTYPES, scale=st.sampled_from([1.0, 30.0, 300.0]),
       op=st.sampled_from(["softmax", "log_softmax"]), seed=st.integers(0, 99))
def test_softmax_and_log_softmax(case, dtype, scale, op, seed):
    shape, dim = case
    x = random_array(np.random.default_rng(seed), shape, dtype, -scale, scale)
    _accepted(check_functional(op, x, dim=dim))


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_zero_dim_and_dtype_argument(op):
    check_functional(op, np.array(1.5), dim=0)
    x = random_array(np.random.default_rng(0), (3, 4), np.float32)
    _accepted(check_op(lambda t: getattr(cF, op)(t, dim=1, dtype=ct.float64),
                       lambda t: getattr(tF, op)(t, dim=1, dtype=tt.float64), [x]))


@pytest.mark.parametrize("shape, expected_dim", [((5,), 0), ((2, 5), 1), ((2, 3, 4), 0),
                                                 ((2, 3, 4, 5), 1)])
def test_softmax_implicit_dim_warns_and_matches_torch(shape, expected_dim):
    x = random_array(np.random.default_rng(0), shape)
    with pytest.warns(UserWarning, match="Implicit dimension"):
        ours = cF.softmax(ct.tensor(x))
    with pytest.warns(UserWarning):
        theirs = tF.softmax(tt.tensor(x))
    assert_close(to_numpy(ours), to_numpy(theirs), "softmax(dim=None)")


@pytest.mark.parametrize("op", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_activations(op, dtype):
    x = random_array(np.random.default_rng(3), (4, 3, 2), dtype, -5, 5)
    _accepted(check_functional(op, x))


def test_tensor_softmax_methods_with_axis():
    x = random_array(np.random.default_rng(4), (3, 5))
    _accepted(check_op(lambda t: t.softmax(axis=1), lambda t: t.softmax(axis=1), [x]))
    _accepted(check_op(lambda t: t.log_softmax(-1), lambda t: t.log_softmax(-1), [x]))


def test_softmax_integer_input_rejected():
    res = check_op(lambda t: cF.softmax(t, 0), lambda t: tF.softmax(t, 0),
                   [np.arange(4, dtype=np.int64)])
    assert res.rejected


# ------------------------------------------------------------------------------- dropout


@pytest.mark.parametrize("p, training", [(0.0, True), (0.3, False), (1.0, False), (0.0, False)])
def test_dropout_identity_cases(p, training):
    x = random_array(np.random.default_rng(5), (4, 6))
    _accepted(check_functional("dropout", x, p=p, training=training))


def test_dropout_p_one_zeroes_everything():
    x = random_array(np.random.default_rng(6), (4, 6))
    _accepted(check_functional("dropout", x, p=1.0, training=True))


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_bad_probability_rejected(p):
    x = random_array(np.random.default_rng(7), (2, 3))
    assert check_functional("dropout", x, p=p).rejected


# ---------------------------------------------------------------------------- batch_norm


@st.composite
def _batch_norm_case(draw):
    ndim = draw(st.integers(2, 4))
    n = draw(st.integers(1, 4))
    c = draw(st.integers(1, 4))
    spatial = draw(st.lists(st.integers(1, 4), min_size=ndim - 2, max_size=ndim - 2))
    return (n, c, *spatial)


@SETTINGS
@given(shape=_batch_norm_case(), training=st.booleans(), affine=st.sampled_from(
    ["both", "weight", "none"]), running=st.booleans(), momentum=st.sampled_from([0.1, 0.5, 1.0]),
    eps=st.sampled_from([1e-5, 1e-3]), dtype=FLOAT_DTYPES, seed=st.integers(0, 99))
def test_batch_norm_functional(shape, training, affine, running, momentum, eps, dtype, seed):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = random_array(rng, shape, dtype, -2, 3)
    w = random_array(rng, (c,), dtype, 0.5, 1.5) if affine != "none" else None
    b = random_array(rng, (c,), dtype) if affine == "both" else None
    mean0 = random_array(rng, (c,), dtype)
    var0 = random_array(rng, (c,), dtype, 0.5, 2.0)
    stats = {}

    def run(lib, functional, name):
        def fn(x, w, b):
            rm = tensor_of(lib, mean0) if running or not training else None
            rv = tensor_of(lib, var0) if running or not training else None
            out = functional.batch_norm(x, rm, rv, w, b, training=training, momentum=momentum,
                                        eps=eps)
            stats[name] = (rm, rv)
            return out
        return fn

    res = check_op(run(ct, cF, "corrnet"), run(tt, tF, "torch"), [x, w, b],
                   name=f"batch_norm{shape} training={training}")
    if res.rejected:  # one value per channel in training mode
        assert training and np.prod(shape) // c == 1
        assert isinstance(res.corrnet_error, ValueError)
        return
    for ours, theirs in zip(stats["corrnet"], stats["torch"], strict=True):
        if theirs is not None:
            assert_close(to_numpy(ours), to_numpy(theirs), "running statistic")


@pytest.mark.parametrize("kwargs", [dict(weight=np.ones(2)), dict(running_mean=np.zeros(4)),
                                    dict(eps=0.0)])
def test_batch_norm_bad_arguments_rejected(kwargs):
    rng = np.random.default_rng(8)
    x = random_array(rng, (4, 3, 2))
    rm = kwargs.get("running_mean", np.zeros(3))
    w = kwargs.get("weight")
    eps = kwargs.get("eps", 1e-5)

    def run(lib, functional):
        return lambda x, w: functional.batch_norm(x, lib.tensor(rm), lib.tensor(np.ones(3)), w,
                                                  training=True, eps=eps)

    assert check_op(run(ct, cF), run(tt, tF), [x, w]).rejected


# ------------------------------------------------------------------------------- losses


@st.composite
def _class_case(draw):
    c = draw(st.integers(1, 6))
    layout = draw(st.sampled_from(["unbatched", "batched", "spatial1", "spatial2"]))
    n = draw(st.integers(1, 5))
    if layout == "unbatched":
        return (c,), ()
    spatial = {"batched": (), "spatial1": (draw(st.integers(1, 3)),),
               "spatial2": (draw(st.integers(1, 3)), draw(st.integers(1, 3)))}[layout]
    return (n, c, *spatial), (n, *spatial)


@SETTINGS
@given(case=_class_case(), weighted=st.booleans(), ignore=st.sampled_from([None, -100, 0, 2]),
       reduction=st.sampled_from(["mean", "sum", "none"]),
       smoothing=st.sampled_from([0.0, 0.1, 0.5, 1.0]), scale=st.sampled_from([1.0, 50.0]),
       dtype=FLOAT_DTYPES, seed=st.integers(0, 99))
def test_cross_entropy_class_indices(case, weighted, ignore, reduction, smoothing, scale, dtype,
                                     seed):
    rng = np.random.default_rng(seed)
    shape, tshape = case
    c = shape[0] if len(shape) == 1 else shape[1]
    x = random_array(rng, shape, dtype, -scale, scale)
    target = rng.integers(0, c, size=tshape).astype(np.int64)
    kwargs = {"reduction": reduction, "label_smoothing": smoothing}
    if ignore is not None:
        kwargs["ignore_index"] = ignore
        if ignore == -100 and target.size:
            target.reshape(-1)[0] = -100
    w = random_array(rng, (c,), dtype, 0.1, 2.0) if weighted else None
    _accepted(check_functional("cross_entropy", x, target, w, requires_grad=[True, False, False],
                               **kwargs))


@SETTINGS
@given(case=_class_case(), weighted=st.booleans(), ignore=st.sampled_from([None, -100, 1]),
       reduction=st.sampled_from(["mean", "sum", "none"]), dtype=FLOAT_DTYPES,
       seed=st.integers(0, 99))
def test_nll_loss(case, weighted, ignore, reduction, dtype, seed):
    rng = np.random.default_rng(seed)
    shape, tshape = case
    c = shape[0] if len(shape) == 1 else shape[1]
    x = random_array(rng, shape, dtype, -3, 0)
    target = rng.integers(0, c, size=tshape).astype(np.int64)
    kwargs = {"reduction": reduction}
    if ignore is not None:
        kwargs["ignore_index"] = ignore
        if ignore == -100:
            target.reshape(-1)[-1] = -100
    w = random_array(rng, (c,), dtype, 0.1, 2.0) if weighted else None
    _accepted(check_functional("nll_loss", x, target, w, requires_grad=[True, False, False],
                               **kwargs))


@SETTINGS
@given(case=_class_case(), weighted=st.booleans(),
       reduction=st.sampled_from(["mean", "sum", "none"]),
       smoothing=st.sampled_from([0.0, 0.2]), dtype=FLOAT_DTYPES, seed=st.integers(0, 99))
def test_cross_entropy_probability_targets(case, weighted, reduction, smoothing, dtype, seed):
    rng = np.random.default_rng(seed)
    shape, _ = case
    c = shape[0] if len(shape) == 1 else shape[1]
    x = random_array(rng, shape, dtype, -4, 4)
    t = rng.uniform(0, 1, size=shape).astype(dtype)
    t /= t.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)
    w = random_array(rng, (c,), dtype, 0.1, 2.0) if weighted else None
    _accepted(check_functional("cross_entropy", x, t, w, requires_grad=[True, True, False],
                               reduction=reduction, label_smoothing=smoothing))


def test_cross_entropy_all_ignored_and_empty_batch():
    x = random_array(np.random.default_rng(9), (4, 3))
    t = np.full(4, -100, dtype=np.int64)
    for reduction in ("mean", "sum", "none"):
        check_functional("cross_entropy", x, t, reduction=reduction)
        check_functional("nll_loss", x, t, reduction=reduction)
    check_functional("cross_entropy", np.zeros((0, 3)), np.zeros(0, dtype=np.int64))


def test_cross_entropy_minus_infinity_logit():
    x = np.array([[1.0, -np.inf, 0.5]])
    _accepted(check_functional("cross_entropy", x, np.array([0]), grad=False))


@pytest.mark.parametrize("target, weight, kwargs", [
    (np.array([1, 2, 10]), None, {}),  # label out of range
    (np.array([1, -1, 0]), None, {}),  # negative label
    (np.array([1, 2]), None, {}),  # batch size mismatch
    (np.array([[1, 2, 3]]), None, {}),  # 2-D target for 2-D input
    (np.array([1, 2, 3], dtype=np.int32), None, {}),  # int32 labels
    (np.array([1, 2, 3]), np.ones(5), {}),  # weight of the wrong length
    (np.array([1, 2, 3]), None, {"reduction": "avg"}),
    (np.array([1, 2, 3]), None, {"label_smoothing": 1.5}),
    (np.ones((3, 4)), None, {"ignore_index": 1}),  # probabilities with ignore_index
    (np.ones((3, 5)), None, {}),  # probabilities of the wrong shape
])
def test_cross_entropy_rejects_like_torch(target, weight, kwargs):
    x = random_array(np.random.default_rng(10), (3, 10 if target.max() >= 10 else 4))
    if target.dtype.kind == "f":
        x = random_array(np.random.default_rng(10), (3, 4))
    res = check_functional("cross_entropy", x, target, weight, requires_grad=[True, False, False],
                           **kwargs)
    assert res.rejected


def test_cross_entropy_weight_requiring_grad_rejected_like_torch():
    rng = np.random.default_rng(11)
    res = check_functional("cross_entropy", random_array(rng, (3, 4)), np.array([0, 1, 2]),
                           random_array(rng, (4,), np.float64, 0.5, 1.0))
    assert res.rejected


@SETTINGS
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=3),
       reduction=st.sampled_from(["mean", "sum", "none"]), dtype=FLOAT_DTYPES,
       seed=st.integers(0, 99))
def test_mse_loss(shape, reduction, dtype, seed):
    rng = np.random.default_rng(seed)
    x, y = random_array(rng, shape, dtype), random_array(rng, shape, dtype)
    _accepted(check_functional("mse_loss", x, y, reduction=reduction))


def test_mse_loss_broadcast_warns_like_torch():
    rng = np.random.default_rng(12)
    x, y = random_array(rng, (3, 4)), random_array(rng, (4,))
    with pytest.warns(UserWarning, match="target size"):
        _accepted(check_functional("mse_loss", x, y))


@pytest.mark.parametrize("legacy", [dict(size_average=False), dict(reduce=False),
                                    dict(size_average=True, reduce=True)])
def test_loss_legacy_reduction_arguments(legacy):
    rng = np.random.default_rng(13)
    x = random_array(rng, (3, 4))
    with pytest.warns(UserWarning):  # torch warns about the deprecated arguments
        _accepted(check_functional("mse_loss", x, random_array(rng, (3, 4)), **legacy))
    with pytest.warns(UserWarning):
        _accepted(check_functional("cross_entropy", x, np.array([0, 3, 1]), **legacy))


# ------------------------------------------------------------------------------- modules


def _copy_parameters(ours, theirs) -> None:
    """Give a corrnet module the parameters of its PyTorch twin."""
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        param.data = ct.tensor(theirs_params[name].detach().numpy().copy())


@pytest.mark.parametrize("bias", [True, False])
def test_linear_module(bias):
    theirs = tt.nn.Linear(5, 3, bias=bias).double()
    ours = cnn.Linear(5, 3, bias=bias, dtype=ct.float64)
    _copy_parameters(ours, theirs)
    x = random_array(np.random.default_rng(14), (4, 5))
    _accepted(check_op(ours, theirs, [x]))
    assert repr(ours) == repr(theirs)
    for name, param in ours.named_parameters():
        grad = dict(theirs.named_parameters())[name].grad
        assert_close(to_numpy(param.grad), to_numpy(grad), f"Linear {name}.grad")


@pytest.mark.parametrize("module", ["ReLU", "Sigmoid", "Tanh", "Identity", "Flatten"])
def test_parameterless_modules(module):
    x = random_array(np.random.default_rng(15), (2, 3, 4))
    ours, theirs = getattr(cnn, module)(), getattr(tt.nn, module)()
    _accepted(check_op(ours, theirs, [x]))
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("module, kwargs", [("Softmax", {"dim": 1}), ("LogSoftmax", {"dim": -1}),
                                            ("Flatten", {"start_dim": 0, "end_dim": 1}),
                                            ("Dropout", {"p": 0.25}), ("ReLU", {"inplace": True}),
                                            ("CrossEntropyLoss", {}), ("MSELoss", {}),
                                            ("NLLLoss", {})])
def test_module_repr(module, kwargs):
    assert repr(getattr(cnn, module)(**kwargs)) == repr(getattr(tt.nn, module)(**kwargs))


def test_loss_modules():
    rng = np.random.default_rng(16)
    x = random_array(rng, (5, 4))
    t = rng.integers(0, 4, 5)
    w = random_array(rng, (4,), np.float64, 0.5, 1.5)
    for kwargs in (dict(), dict(weight=w), dict(reduction="none", label_smoothing=0.1),
                   dict(ignore_index=2)):
        def make(lib, nn, kwargs=kwargs):
            options = dict(kwargs)
            if "weight" in options:
                options["weight"] = tensor_of(lib, options["weight"])
            return nn.CrossEntropyLoss(**options)

        _accepted(check_op(make(ct, cnn), make(tt, tt.nn), [x, t]))
    _accepted(check_op(cnn.NLLLoss(), tt.nn.NLLLoss(), [x, t]))
    _accepted(check_op(cnn.MSELoss(reduction="sum"), tt.nn.MSELoss(reduction="sum"),
                       [x, random_array(rng, (5, 4))]))


@pytest.mark.parametrize("kind, shape", [("BatchNorm2d", (4, 3, 5, 5)), ("BatchNorm1d", (6, 3)),
                                         ("BatchNorm1d", (4, 3, 7))])
@pytest.mark.parametrize("kwargs", [dict(), dict(momentum=None), dict(momentum=0.5, eps=1e-3),
                                    dict(affine=False), dict(track_running_stats=False),
                                    dict(bias=False)])
def test_batch_norm_module_training_then_eval(kind, shape, kwargs):
    rng = np.random.default_rng(17)
    theirs = getattr(tt.nn, kind)(3, **kwargs).double()
    ours = getattr(cnn, kind)(3, dtype=ct.float64, **kwargs)
    assert repr(ours) == repr(theirs)
    with tt.no_grad():
        for p in theirs.parameters():
            p.copy_(tt.tensor(rng.uniform(0.5, 1.5, p.shape)))
    _copy_parameters(ours, theirs)
    for step in range(4):  # training steps: outputs, gradients and running statistics
        x = random_array(rng, shape, np.float64, -1 + step, 2 + step)
        _accepted(check_op(ours, theirs, [x], seed=step, name=f"{kind} step {step}"))
        for name, buffer in theirs.named_buffers():
            assert_close(to_numpy(dict(ours.named_buffers())[name]), to_numpy(buffer),
                         f"{kind} buffer {name} after step {step}")
        for name, param in theirs.named_parameters():
            assert_close(to_numpy(dict(ours.named_parameters())[name].grad),
                         to_numpy(param.grad), f"{kind} {name}.grad")
            param.grad = None
        ours.zero_grad()
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    ours.eval()
    theirs.eval()
    x = random_array(rng, shape, np.float64, -3, 3)
    _accepted(check_op(ours, theirs, [x], name=f"{kind} eval"))


def test_batch_norm_module_float32_matches_torch():
    rng = np.random.default_rng(18)
    theirs, ours = tt.nn.BatchNorm2d(4), cnn.BatchNorm2d(4)
    for step in range(3):
        _accepted(check_op(ours, theirs, [random_array(rng, (8, 4, 6, 6), np.float32, -2, 5)],
                           seed=step))
    for name, buffer in theirs.named_buffers():
        assert_close(to_numpy(dict(ours.named_buffers())[name]), to_numpy(buffer), name)


@pytest.mark.parametrize("kind, shape", [("BatchNorm2d", (4, 3, 5)), ("BatchNorm2d", (4, 2, 5, 5)),
                                         ("BatchNorm1d", (4, 3, 5, 5)), ("BatchNorm1d", (1, 3))])
def test_batch_norm_module_rejects_like_torch(kind, shape):
    x = random_array(np.random.default_rng(19), shape)
    res = check_op(getattr(cnn, kind)(3, dtype=ct.float64), getattr(tt.nn, kind)(3).double(), [x])
    assert res.rejected
    assert type(res.corrnet_error) is type(res.torch_error)


def test_small_network_training_step_matches_torch():
    """LeNet-like network: same parameters, same batch, same loss, same gradients."""
    rng = np.random.default_rng(20)

    def build(nn):
        return nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.BatchNorm1d(8), nn.ReLU(),
                             nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3))

    theirs = build(tt.nn).double()
    ours = build(cnn).to(ct.float64)
    _copy_parameters(ours, theirs)
    x = random_array(rng, (5, 3, 2, 2))
    y = rng.integers(0, 3, 5)
    t_loss = tF.cross_entropy(theirs(tt.tensor(x)), tt.tensor(y), label_smoothing=0.1)
    c_loss = cF.cross_entropy(ours(ct.tensor(x)), ct.tensor(y), label_smoothing=0.1)
    t_loss.backward()
    c_loss.backward()
    assert_close(to_numpy(c_loss), to_numpy(t_loss), "loss")
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        assert_close(to_numpy(param.grad), to_numpy(theirs_params[name].grad), f"{name}.grad")
