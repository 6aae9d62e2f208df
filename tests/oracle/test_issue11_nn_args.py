"""Issue 11, fuzz classes 7 and 11: corrnet.nn and corrnet.optim with hostile or corner
arguments, each against PyTorch 2.13 — `F.linear` with zero features and odd bias shapes,
losses' `ignore_index` / `label_smoothing` / `weight`, `batch_norm`'s parsed arguments,
`dropout`, ReLU's gradient at NaN, layers called on non-tensors, `nn.init` ranges and
Adam's betas. Wherever PyTorch returns, values and gradients are compared; wherever it
raises, corrnet must raise a clear error of the same family.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch as tt
import torch.nn.functional as tF
from hypothesis import assume, given
from hypothesis import strategies as st

import corrnet as ct
from corrnet import nn as cnn
from corrnet.nn import functional as cF

try:  # works both as a package module and with pytest's rootdir/prepend import mode
    from .helpers import check_op, oracle_settings, random_array, to_numpy
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from helpers import check_op, oracle_settings, random_array, to_numpy

CLEAR = (TypeError, ValueError, RuntimeError, IndexError, NotImplementedError)


def _both(call):
    """``call(lib)`` with torch and corrnet: both raise (corrnet clearly, same family as
    torch's TypeError/other) or both return; returns the two results (or errors)."""
    results = []
    for lib in (tt, ct):
        try:
            results.append(("ok", call(lib)))
        except CLEAR as exc:
            results.append(("raised", exc))
    (t_kind, t_value), (c_kind, c_value) = results
    assert t_kind == c_kind, f"torch {t_kind} {t_value!r}, corrnet {c_kind} {c_value!r}"
    if t_kind == "raised" and isinstance(t_value, TypeError):
        assert isinstance(c_value, TypeError), f"torch {t_value!r}, corrnet {c_value!r}"
    return t_value, c_value


# ---------------------------------------------------------------------------------- linear


@pytest.mark.parametrize("x_shape, w_shape, b_shape", [
    ((1, 0), (1, 0), (1,)), ((3, 3, 0), (0, 0), None), ((4, 0), (1, 0), None),
    ((3, 4), (0, 4), (0,)), ((0, 4), (2, 4), (2,)), ((2, 0, 0), (0, 0), None),
    ((0,), (3, 0), (3,)), ((2, 0, 3), (2, 3), (2,)),
])
def test_issue11_linear_zero_features_as_torch(x_shape, w_shape, b_shape):
    """``nn.Linear(0, 1)`` / ``F.linear`` with a zero-size feature or batch dimension raised
    NumPy's 'cannot reshape array of size 0 into shape (0)' in the backward."""
    rng = np.random.default_rng(0)
    arrays = [random_array(rng, s) for s in (x_shape, w_shape)]
    arrays.append(None if b_shape is None else random_array(rng, b_shape))
    res = check_op(cF.linear, tF.linear, arrays, name="linear")
    assert not res.rejected


@pytest.mark.parametrize("in_features, out_features, bias", [
    (0, 1, True), (0, 0, False), (3, 0, True), (0, 3, False), (True, 2, True)])
def test_issue11_linear_module_zero_features_as_torch(in_features, out_features, bias):
    """nn.Linear with 0 in/out features: values and every gradient as torch (a bool
    in_features is an int to PyTorch too)."""
    rng = np.random.default_rng(1)
    x = random_array(rng, (2, int(in_features)))
    grads = []
    for lib in (tt, ct):
        layer = lib.nn.Linear(in_features, out_features, bias=bias, dtype=lib.float64)
        for k, p in enumerate(layer.parameters()):
            p.data = lib.tensor(random_array(np.random.default_rng(k), tuple(p.shape)))
        xin = lib.tensor(x, requires_grad=True)
        out = layer(xin)
        out.backward(lib.tensor(np.ones(tuple(out.shape))))
        grads.append([to_numpy(out), to_numpy(xin.grad)]
                     + [to_numpy(p.grad) for p in layer.parameters()])
    for theirs, ours in zip(*grads, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
        assert ours.shape == theirs.shape


@pytest.mark.parametrize("bias", [True, False])
def test_issue11_linear_bool_out_features_refused_as_torch(bias):
    """``nn.Linear(3, True)``: PyTorch refuses a bool out_features (the first size of the
    weight), though it takes a bool in_features."""
    _both(lambda lib: lib.nn.Linear(3, True, bias=bias))


@pytest.mark.parametrize("x_shape, w_shape, b_shape", [
    ((1, 4), (4,), (1,)), ((2, 3, 4), (4,), (3,)), ((4,), (4,), (1,)), ((4,), (4,), ()),
    ((2, 2, 4), (4,), ()), ((3, 4), (2, 4), (3, 2)), ((3, 4), (2, 4), (3, 1)),
    ((3, 4), (2, 4), (4, 2)), ((3, 4), (2, 4), (1, 3, 2)), ((3, 4), (2, 4), ()),
    ((4,), (3, 4), (2, 3)), ((4,), (3, 4), (3,)), ((2, 2, 2, 4), (3, 4), (2, 2, 2, 3)),
    ((2, 4), (4,), ()),
])
def test_issue11_linear_weight_and_bias_shapes_as_torch(x_shape, w_shape, b_shape):
    """A 1-D weight with a bias of one or more dimensions was accepted (PyTorch: 'mat2 must
    be a matrix, got 1-D tensor'); a bias that broadcasts into the output was refused."""
    rng = np.random.default_rng(2)
    arrays = [random_array(rng, s) for s in (x_shape, w_shape, b_shape)]
    check_op(cF.linear, tF.linear, arrays, name="linear")


@oracle_settings(40)
@given(lead=st.lists(st.integers(0, 3), max_size=2), n_in=st.integers(0, 4),
       n_out=st.integers(0, 4), weight_1d=st.booleans(),
       bias=st.sampled_from(["none", "1d", "0d", "one", "rows"]), seed=st.integers(0, 99))
def test_linear_shapes_and_biases_match_torch(lead, n_in, n_out, weight_1d, bias, seed):
    """The widened strategy for class 7: zero sizes anywhere, 1-D weights, biases of every
    broadcastable (and a few non-broadcastable) shapes."""
    # PyTorch folds a 3-D input into rows for one addmm in some cases only (seen: a bias of
    # 2+ dims with out_features == 1, where the bias must then broadcast to (rows, 1)), and
    # broadcasts into the 3-D output in the others; corrnet always broadcasts
    assume(not (len(lead) == 2 and bias == "rows" and n_out == 1 and not weight_1d))
    rng = np.random.default_rng(seed)
    w_shape = (n_in,) if weight_1d else (n_out, n_in)
    out_last = () if weight_1d else (n_out,)
    b_shape = {"none": None, "1d": out_last or (1,), "0d": (), "one": (1,),
               "rows": tuple(lead[-1:]) + out_last}[bias]
    arrays = [random_array(rng, (*lead, n_in)), random_array(rng, w_shape),
              None if b_shape is None else random_array(rng, b_shape)]
    check_op(cF.linear, tF.linear, arrays, name="linear", seed=seed)


# ------------------------------------------------------------------------------ activations


@pytest.mark.parametrize("inplace", [False, True])
def test_issue11_relu_gradient_at_nan_as_torch(inplace):
    """ReLU's backward gave 0 at a NaN input; PyTorch's threshold_backward passes the
    gradient on (and gives 0, not NaN, for an inf gradient at 0)."""
    values = np.array([np.nan, 0.0, -1.0, 2.0, np.inf, -np.inf, 1e30], dtype=np.float32)
    upstream = np.array([3.0, np.inf, 5.0, 7.0, 11.0, 13.0, -2.0], dtype=np.float32)
    grads = []
    for lib in (tt, ct):
        x = lib.tensor(values, requires_grad=True)
        y = x * 1
        out = lib.nn.functional.relu(y, inplace=inplace)
        out.backward(lib.tensor(upstream))
        grads.append(to_numpy(x.grad))
    np.testing.assert_array_equal(grads[1], grads[0])


def test_issue11_sequential_conv_relu_pool_nan_gradients_as_torch():
    """Fuzz case 158: Conv2d -> ReLU -> MaxPool2d with NaN/inf inputs: the conv's bias
    gradient differed at every channel (ReLU dropped the gradient at NaN)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 9, 9)).astype(np.float32)
    x[rng.random(x.shape) < 0.15] = np.nan
    weight = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    grads = []
    for lib in (tt, ct):
        conv = lib.nn.Conv2d(2, 4, 3, padding=1)
        conv.weight.data, conv.bias.data = lib.tensor(weight), lib.tensor(bias)
        net = lib.nn.Sequential(conv, lib.nn.ReLU(), lib.nn.MaxPool2d(2), lib.nn.Flatten())
        out = net(lib.tensor(x))
        out.backward(lib.tensor(np.ones(tuple(out.shape), dtype=np.float32)))
        grads.append(to_numpy(conv.bias.grad))
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-4, equal_nan=True)


HOSTILE_INPUTS = [None, 2.5, "2", [1.0], (1, 2)]


@pytest.mark.parametrize("layer", ["ReLU", "Sigmoid", "Tanh", "Flatten"])
@pytest.mark.parametrize("value", HOSTILE_INPUTS)
def test_issue11_activation_layers_refuse_non_tensors(layer, value):
    """``nn.Tanh()(2.5)`` raised AttributeError ('float' object has no attribute 'tanh')."""
    with pytest.raises((TypeError, AttributeError)):
        getattr(tt.nn, layer)()(value)
    with pytest.raises(TypeError, match="Tensor"):
        getattr(cnn, layer)()(value)


@pytest.mark.parametrize("args", [(True,), (0, True), (1,), (0, -1), (-1, 0)])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3, 4)])
def test_issue11_flatten_dims_as_torch(args, shape):
    """``nn.Flatten()`` of a 0-d tensor returned shape (1,) where PyTorch's start_dim=1 is out
    of range; bool dims were accepted."""
    theirs, ours = _both(lambda lib: lib.nn.Flatten(*args)(lib.ones(shape)))
    if not isinstance(theirs, Exception):
        assert tuple(ours.shape) == tuple(theirs.shape)


@pytest.mark.parametrize("kwargs", [
    dict(p=0.0, training=None), dict(p=0.0, training=1), dict(p=0.5, training="yes"),
    dict(p=None), dict(p="0.5"), dict(p=(0.5,)), dict(p=1.5), dict(p=float("nan")),
    dict(p=np.float64(0.0)), dict(p=True, training=False), dict(p=np.bool_(False)),
])
def test_issue11_dropout_arguments_as_torch(kwargs):
    """``F.dropout(x, training=2.5)`` was accepted; PyTorch parses `train` as a bool and `p` as
    a float."""
    theirs, ours = _both(lambda lib: lib.nn.functional.dropout(lib.ones(4), **kwargs))
    if not isinstance(theirs, Exception):
        assert tuple(ours.shape) == tuple(theirs.shape)


# ------------------------------------------------------------------------------ batch norm


@pytest.mark.parametrize("name, value", [
    ("eps", (1, 2, 3)), ("eps", "1e-5"), ("eps", None), ("momentum", "2"), ("momentum", None),
    ("momentum", [0.1]), ("training", 1), ("training", 2.5), ("training", None),
    ("eps", True), ("momentum", np.float32(0.3)),
])
def test_issue11_batch_norm_parses_arguments_as_torch(name, value):
    """``nn.BatchNorm1d(3, eps=(1, 2, 3))`` raised a TypeError from a comparison inside
    corrnet ('<' not supported between 'tuple' and 'int'); momentum='2' was accepted."""
    x = np.arange(12.0).reshape(4, 3)
    kwargs = dict(training=True, momentum=0.1, eps=1e-5)
    kwargs[name] = value
    theirs, ours = _both(lambda lib: lib.nn.functional.batch_norm(
        lib.tensor(x), lib.zeros(3, dtype=lib.float64), lib.ones(3, dtype=lib.float64),
        **kwargs))
    if not isinstance(theirs, Exception):
        np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), rtol=1e-10)


@pytest.mark.parametrize("momentum", ["2", (1, 2)])
@pytest.mark.parametrize("train", [True, False])
def test_issue11_batch_norm_module_hostile_momentum_refused(momentum, train):
    def call(lib):
        layer = lib.nn.BatchNorm1d(3, momentum=momentum)
        layer.train(train)
        return layer(lib.ones(4, 3))

    _both(call)


@pytest.mark.parametrize("shapes", [((1, 3), (3,)), ((3, 1), (3,)), ((3,), (1, 3))])
def test_issue11_batch_norm_parameter_shapes_as_torch(shapes):
    """PyTorch takes a weight/bias of any shape with C elements, but 1-D running stats."""
    weight_shape, stats_shape = shapes
    x = np.random.default_rng(4).standard_normal((4, 3))

    def call(lib):
        return lib.nn.functional.batch_norm(
            lib.tensor(x), lib.zeros(stats_shape, dtype=lib.float64),
            lib.ones(stats_shape, dtype=lib.float64),
            weight=lib.ones(weight_shape, dtype=lib.float64), training=False)

    theirs, ours = _both(call)
    if not isinstance(theirs, Exception):
        np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), rtol=1e-10)


@pytest.mark.parametrize("num_features", [0, True, 3])
def test_issue11_batch_norm_num_features_as_torch(num_features):
    _both(lambda lib: tuple(lib.nn.BatchNorm1d(num_features).weight.shape))


# ---------------------------------------------------------------------------------- losses


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("ignore_index", [None, 2.5, "1", True, float("nan"), [1], [[1]],
                                          2**63, np.int64(1), -100, 0])
def test_issue11_loss_ignore_index_is_an_int_as_torch(loss, ignore_index):
    """``F.nll_loss(x, t, ignore_index=float('inf'))`` was accepted (PyTorch: must be int);
    ``ignore_index=[[1]]`` raised NumPy's ValueError."""
    x = np.random.default_rng(5).standard_normal((4, 3))
    theirs, ours = _both(lambda lib: getattr(lib.nn.functional, loss)(
        lib.tensor(x), lib.tensor([0, 1, 2, 0]), ignore_index=ignore_index))
    if not isinstance(theirs, Exception):
        np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), rtol=1e-10)


@pytest.mark.parametrize("probabilities", [False, True])
@pytest.mark.parametrize("smoothing", [object(), None, "0.1", -1, -0.5, float("nan"), 0.0,
                                       0.3, 1.0, 1.5, float("-inf"), np.float32(0.2)])
def test_issue11_label_smoothing_as_torch(smoothing, probabilities):
    """``label_smoothing=object()`` raised a TypeError from a comparison inside corrnet; a
    negative or NaN smoothing was refused where PyTorch computes the loss unsmoothed."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 3))
    target = rng.random((4, 3)) if probabilities else np.array([0, 1, 2, 0])
    target = target / target.sum(1, keepdims=True) if probabilities else target
    results = []
    for lib in (tt, ct):
        xin = lib.tensor(x, requires_grad=True)
        try:
            loss = lib.nn.functional.cross_entropy(xin, lib.tensor(target),
                                                   label_smoothing=smoothing)
        except CLEAR as exc:
            results.append(exc)
            continue
        loss.backward()
        results.append((to_numpy(loss), to_numpy(xin.grad)))
    theirs, ours = results
    assert isinstance(ours, Exception) == isinstance(theirs, Exception), (theirs, ours)
    if not isinstance(theirs, Exception):
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_issue11_mse_loss_weighted_mean_as_torch(reduction):
    """A weighted 'mean' divided by the element count; PyTorch divides by sum(weight)."""
    rng = np.random.default_rng(7)
    x, y, w = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.random((4, 3))
    results = []
    for lib in (tt, ct):
        xin = lib.tensor(x, requires_grad=True)
        loss = lib.nn.functional.mse_loss(xin, lib.tensor(y), reduction=reduction,
                                          weight=lib.tensor(w))
        loss.backward(lib.tensor(np.ones(tuple(loss.shape))))
        results.append((to_numpy(loss), to_numpy(xin.grad)))
    for a, b in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10)


@pytest.mark.parametrize("weight", [2.5, 0, True, "w", "shape"])
def test_issue11_mse_loss_weight_must_be_a_tensor_of_the_input_shape(weight):
    def call(lib):
        w = lib.ones(3) if weight == "shape" else weight
        return lib.nn.functional.mse_loss(lib.ones(4, 3), lib.zeros(4, 3), weight=w)

    with pytest.raises((AttributeError, ValueError)):
        call(tt)
    with pytest.raises((TypeError, ValueError), match="weight|Weights"):
        call(ct)


# -------------------------------------------------------------------------- init and optim


@pytest.mark.parametrize("fill", [
    lambda w: w.uniform_(2.0, 1.0), lambda w: w.uniform_(float("nan"), 1.0),
    lambda w: w.uniform_(0.0, float("inf")), lambda w: w.uniform_(0.0, 1e39),
    lambda w: w.uniform_(None, 1.0), lambda w: w.uniform_("0", 1.0),
    lambda w: w.uniform_([0.0], 1.0), lambda w: w.uniform_(0.0, (1.0,)),
    lambda w: w.normal_(0.0, -1.0), lambda w: w.normal_(0.0, float("nan")),
    lambda w: w.normal_(None, 1.0), lambda w: w.normal_(0.0, [1.0]),
    lambda w: w.uniform_(0.0, 1.0), lambda w: w.normal_(1.0, 0.0),
    lambda w: w.uniform_(1.0, 1.0),
])
@pytest.mark.parametrize("via_init", [False, True])
def test_issue11_random_fills_check_their_bounds_as_torch(fill, via_init):
    """``nn.init.uniform_(w, 2.0, 1.0)`` raised NumPy's 'high - low < 0', NaN bounds an
    OverflowError, lists were accepted; ``normal_(std=-1)`` NumPy's 'scale < 0'."""
    def call(lib):
        w = lib.ones(3, 4)
        if not via_init:
            return tuple(fill(w).shape)
        init = lib.nn.init
        shim = type("Shim", (), {
            "uniform_": lambda self, a, b: init.uniform_(w, a, b),
            "normal_": lambda self, m, s: init.normal_(w, m, s)})()
        return tuple(fill(shim).shape)

    theirs, ours = _both(call)
    if not isinstance(theirs, Exception):
        assert ours == theirs


@pytest.mark.parametrize("name", ["uniform_", "normal_", "kaiming_normal_", "xavier_uniform_"])
@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_issue11_random_init_of_integer_tensors_refused(name, dtype):
    """PyTorch has no random float fill for integer or bool tensors (NotImplementedError);
    corrnet filled them with rounded samples."""
    _both(lambda lib: getattr(lib.nn.init, name)(lib.ones(3, 4, dtype=getattr(lib, dtype))))


@pytest.mark.parametrize("betas", [(0, 0.9), (0.9, 0), (0.9, 0.999), (np.float64(0.5), 0.9)])
def test_issue11_adam_betas_both_floats_as_torch(betas):
    """PyTorch refuses int betas ('betas must be either both floats or both Tensors')."""
    _both(lambda lib: lib.optim.Adam([lib.zeros(2, requires_grad=True)], betas=betas))


def test_issue11_calculate_gain_overflow_is_clear():
    with pytest.raises(OverflowError):
        tt.nn.init.calculate_gain("leaky_relu", 1e300)
    with pytest.raises(ValueError, match="negative_slope"):
        cnn.init.calculate_gain("leaky_relu", 1e300)


@pytest.mark.parametrize("shape", [(0, 3, 2, 2), (2, 3, 0, 2), (0, 3)])
def test_issue11_batch_norm_empty_batch_as_torch(shape):
    """An empty batch was refused ('more than 1 value per channel'); PyTorch returns an
    empty output, keeps the running statistics and gives zero parameter gradients."""
    results = []
    for lib in (tt, ct):
        layer = lib.nn.BatchNorm2d(3) if len(shape) == 4 else lib.nn.BatchNorm1d(3)
        x = lib.zeros(shape, requires_grad=True)
        out = layer(x)
        out.sum().backward()
        results.append([tuple(out.shape), to_numpy(layer.running_mean),
                        to_numpy(layer.running_var), to_numpy(layer.weight.grad),
                        tuple(x.grad.shape)])
    theirs, ours = results
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(4, 0), (1, 0, 3)])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_issue11_batch_norm_zero_channels_as_torch(shape, affine, training):
    """PyTorch's kernel refuses a channel-less input with a weight or bias (IndexError, so
    nn.BatchNorm1d(0) fails), and returns it empty without."""
    def call(lib):
        empty = lib.zeros(0)
        return tuple(lib.nn.functional.batch_norm(
            lib.ones(shape), empty, lib.ones(0), weight=empty if affine else None,
            training=training).shape)

    theirs, ours = _both(call)
    if not isinstance(theirs, Exception):
        assert ours == theirs


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("target", [[1], [0], [1, 2], 1])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_issue11_unbatched_loss_with_one_element_target_as_torch(loss, target, reduction):
    """A (C,) input with a (1,) target was refused ('multi-target not supported'); PyTorch
    takes it as the 0-d target and refuses longer ones."""
    x = np.array([0.1, 2.0, -1.0])
    theirs, ours = _both(lambda lib: getattr(lib.nn.functional, loss)(
        lib.tensor(x), lib.tensor(target), reduction=reduction))
    if not isinstance(theirs, Exception):
        assert tuple(ours.shape) == tuple(theirs.shape)
        np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), rtol=1e-12)


def test_issue11_linear_of_bools_refused_as_torch():
    with pytest.raises(NotImplementedError):
        tF.linear(tt.ones(2, 3, dtype=tt.bool), tt.ones(2, 3, dtype=tt.bool))
    with pytest.raises(NotImplementedError, match="Bool"):
        cF.linear(ct.ones(2, 3, dtype=ct.bool), ct.ones(2, 3, dtype=ct.bool))


@pytest.mark.parametrize("num_features", [[[1]], True, 10**20, 4])
@pytest.mark.parametrize("train", [True, False])
def test_issue11_batch_norm_without_params_ignores_num_features_as_torch(num_features, train):
    """Without affine parameters and running statistics PyTorch never uses num_features
    (``BatchNorm2d(10**20, affine=False, track_running_stats=False)`` normalizes any input);
    corrnet refused it."""
    x = np.random.default_rng(8).standard_normal((2, 4, 3, 3))

    def call(lib):
        layer = lib.nn.BatchNorm2d(num_features, affine=False, track_running_stats=False)
        layer.train(train)
        return layer(lib.tensor(x))

    theirs, ours = _both(call)
    np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", ["int64", "uint8", "bool"])
@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("shape", [(), (3,), (0,)])
def test_issue11_dropout_of_integers_as_torch(dtype, p, shape):
    """p=1 zeroes an integer tensor in PyTorch (corrnet refused it); 0 < p < 1 is refused."""
    theirs, ours = _both(lambda lib: lib.nn.functional.dropout(
        lib.ones(shape, dtype=getattr(lib, dtype)), p=p, training=True))
    if not isinstance(theirs, Exception):
        assert str(ours.dtype) == str(theirs.dtype)
        np.testing.assert_array_equal(to_numpy(ours), to_numpy(theirs))


@pytest.mark.parametrize("shape, dims", [((0, 1), ()), ((0, 0, 3, 2), (1, 2)), ((2, 0), (0,)),
                                         ((3, 0, 2), (1,)), ((), (0, -1))])
def test_issue11_flatten_zero_size_as_torch(shape, dims):
    """``nn.Flatten()`` of a (0, 1) tensor: 'shape [0, -1] is invalid for input of size 0'."""
    theirs, ours = _both(lambda lib: lib.ones(shape).flatten(*dims))
    assert tuple(ours.shape) == tuple(theirs.shape)
    theirs, ours = _both(lambda lib: lib.nn.Flatten()(lib.ones(shape)))
    if not isinstance(theirs, Exception):
        assert tuple(ours.shape) == tuple(theirs.shape)
