"""Double backward (issue 12, item 2) against PyTorch: gradients of gradients.

Every case runs the same computation in corrnet and in PyTorch (float64, copied inputs):

    out = fn(*inputs)
    firsts = autograd.grad(out, inputs, grad_outputs=u, create_graph=True)
    z = sum((first * probe).sum())
    seconds = autograd.grad(z, inputs + [u])

and compares the first gradients, then the second ones (with respect to the inputs and to
the upstream gradient `u`, which requires grad so that z always depends on something: the
gradient of z with respect to u is the forward derivative of the op). A second gradient that
PyTorch leaves undefined (None: z does not depend on that input) must be zero or None in
corrnet. Convolution and pooling run over hypothesis configurations; the elementwise ops,
activations, reductions, shape ops, losses and batch norm are a table. Then a gradient
penalty on a small CNN and a Hessian-vector product on an MLP, both identical to torch's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import corrnet

try:
    from .helpers import oracle_settings
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from helpers import oracle_settings

from torch_compare import assert_scaled_close

RTOL = 1e-9


def _second_order(lib, fn, arrays, seed: int):
    """(out, firsts, seconds) of `fn` on `arrays` in `lib` (corrnet or torch), float64."""
    rng = np.random.default_rng(seed)
    inputs = [lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in arrays]
    out = fn(lib, *inputs)
    upstream = lib.tensor(rng.standard_normal(tuple(out.shape)), dtype=lib.float64,
                          requires_grad=True)
    firsts = lib.autograd.grad(out, inputs, grad_outputs=upstream, create_graph=True,
                               allow_unused=True)
    z = 0
    for first in firsts:
        if first is not None:
            z = z + (first * lib.tensor(rng.standard_normal(tuple(first.shape)),
                                        dtype=lib.float64)).sum()
    seconds = lib.autograd.grad(z, [*inputs, upstream], allow_unused=True)
    return out, firsts, seconds


def _values(t, shape):
    return np.zeros(shape) if t is None else np.array(t.detach().numpy(), copy=True)


def assert_double_backward(fn, *arrays, seed: int = 0, what: str = "") -> None:
    """corrnet's first and second gradients of `fn` equal PyTorch's."""
    out_c, firsts_c, seconds_c = _second_order(corrnet, fn, arrays, seed)
    out_t, firsts_t, seconds_t = _second_order(torch, fn, arrays, seed)
    assert_scaled_close(_values(out_c, None), _values(out_t, None), RTOL, RTOL,
                        f"{what}: forward")
    for i, (got, expected) in enumerate(zip(firsts_c, firsts_t, strict=True)):
        assert (got is None) == (expected is None), f"{what}: first gradient {i}"
        if got is not None:
            assert got.requires_grad or not expected.requires_grad, (
                f"{what}: first gradient {i} was detached")
            assert_scaled_close(_values(got, None), _values(expected, None), RTOL, RTOL,
                                f"{what}: first gradient {i}")
    shapes = [np.shape(a) for a in arrays] + [tuple(out_t.shape)]
    for i, (got, expected, shape) in enumerate(zip(seconds_c, seconds_t, shapes, strict=True)):
        assert_scaled_close(_values(got, shape), _values(expected, shape), RTOL, RTOL,
                            f"{what}: second gradient {i}")


def _functional(lib):
    return corrnet.nn.functional if lib is corrnet else torch.nn.functional


# ------------------------------------------------------------------ convolution and pooling
@st.composite
def conv_configs(draw):
    groups = draw(st.sampled_from([1, 2]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(dilation[0] * (kh - 1) + 1, 7))
    w = draw(st.integers(dilation[1] * (kw - 1) + 1, 7))
    return dict(n=draw(st.integers(1, 2)), c_in=c_in, c_out=c_out, kernel=(kh, kw), h=h, w=w,
                stride=stride, padding=padding, dilation=dilation, groups=groups,
                bias=draw(st.booleans()), seed=draw(st.integers(0, 2**31)))


@oracle_settings(max_examples=30)
@given(conv_configs())
def test_issue12_conv2d_double_backward_matches_torch(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["n"], cfg["c_in"], cfg["h"], cfg["w"]))
    weight = rng.standard_normal((cfg["c_out"], cfg["c_in"] // cfg["groups"], *cfg["kernel"]))
    bias = rng.standard_normal(cfg["c_out"])
    options = {k: cfg[k] for k in ("stride", "padding", "dilation", "groups")}

    def fn(lib, x, weight, bias):  # squared: the second derivative reaches x and weight
        y = _functional(lib).conv2d(x, weight, bias if cfg["bias"] else None, **options)
        return y * y

    assert_double_backward(fn, x, weight, bias, seed=cfg["seed"], what=f"conv2d {cfg}")


@oracle_settings(max_examples=20)
@given(conv_configs(), st.integers(0, 1))
def test_issue12_conv_transpose2d_double_backward_matches_torch(cfg, output_padding):
    assume(output_padding < max(cfg["stride"][0], cfg["dilation"][0])
           and output_padding < max(cfg["stride"][1], cfg["dilation"][1]))
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["n"], cfg["c_in"], cfg["h"] // 2 + 1, cfg["w"] // 2 + 1))
    weight = rng.standard_normal((cfg["c_in"], cfg["c_out"] // cfg["groups"], *cfg["kernel"]))
    bias = rng.standard_normal(cfg["c_out"])
    options = {k: cfg[k] for k in ("stride", "padding", "dilation", "groups")}
    try:  # only configurations with a non-empty output
        out = torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(weight),
                                                   output_padding=output_padding, **options)
    except RuntimeError:
        assume(False)
    assume(out.numel() > 0)

    def fn(lib, x, weight, bias):
        y = _functional(lib).conv_transpose2d(x, weight, bias if cfg["bias"] else None,
                                              output_padding=output_padding, **options)
        return y * y

    assert_double_backward(fn, x, weight, bias, seed=cfg["seed"], what=f"conv_t {cfg}")


@st.composite
def pool_configs(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return dict(kernel=(kh, kw), stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                padding=(draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))),
                ceil_mode=draw(st.booleans()), h=draw(st.integers(kh, 7)),
                w=draw(st.integers(kw, 7)), seed=draw(st.integers(0, 2**31)))


@oracle_settings(max_examples=25)
@given(pool_configs(), st.integers(1, 2), st.booleans())
def test_issue12_max_pool2d_double_backward_matches_torch(cfg, dilation, count_include_pad):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.permutation(2 * cfg["h"] * cfg["w"]).reshape(1, 2, cfg["h"], cfg["w"]) / 7.0
    assume(all(dilation * (k - 1) + 1 <= size + 2 * p for k, size, p in
               zip(cfg["kernel"], (cfg["h"], cfg["w"]), cfg["padding"], strict=True)))
    options = dict(kernel_size=cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                   ceil_mode=cfg["ceil_mode"])

    def max_pool(lib, x):  # distinct values: no ties
        y = _functional(lib).max_pool2d(x, dilation=dilation, **options)
        return y * y

    def avg_pool(lib, x):
        y = _functional(lib).avg_pool2d(x, count_include_pad=count_include_pad, **options)
        return y * y

    assert_double_backward(max_pool, x, seed=cfg["seed"], what=f"max_pool2d {cfg}")
    assert_double_backward(avg_pool, x, seed=cfg["seed"], what=f"avg_pool2d {cfg}")


@oracle_settings(max_examples=20)
@given(st.integers(1, 7), st.integers(1, 7), st.integers(1, 4), st.integers(1, 4),
       st.integers(0, 2**31))
def test_issue12_adaptive_pool_double_backward_matches_torch(h, w, out_h, out_w, seed):
    rng = np.random.default_rng(seed)
    x = rng.permutation(2 * h * w).reshape(1, 2, h, w) / 5.0

    def adaptive_avg(lib, x):
        y = _functional(lib).adaptive_avg_pool2d(x, (out_h, out_w))
        return y * y

    def adaptive_max(lib, x):
        y = _functional(lib).adaptive_max_pool2d(x, (out_h, out_w))
        return y * y

    assert_double_backward(adaptive_avg, x, seed=seed, what="adaptive_avg_pool2d")
    assert_double_backward(adaptive_max, x, seed=seed, what="adaptive_max_pool2d")


# ------------------------------------------------------------------------ the table of ops
def _positive(shape):
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def _normal(shape):
    return lambda rng: rng.standard_normal(shape)


def _batch_norm(lib, x, weight, bias, training):
    running_mean = lib.tensor(np.linspace(-0.5, 0.5, x.shape[1]), dtype=lib.float64)
    running_var = lib.tensor(np.linspace(0.5, 2.0, x.shape[1]), dtype=lib.float64)
    return _functional(lib).batch_norm(x, running_mean, running_var, weight, bias,
                                       training=training)


def _targets(lib):
    return lib.tensor([0, 2, 1, 2])


TABLE = {
    # elementwise arithmetic
    "add": (lambda lib, a, b: a + b, [_normal((3, 4)), _normal((4,))]),
    "sub": (lambda lib, a, b: a - b * 2, [_normal((3, 4)), _normal((3, 1))]),
    "mul": (lambda lib, a, b: a * b, [_normal((3, 4)), _normal((3, 4))]),
    "mul_self": (lambda lib, a: a * a * a, [_normal((3, 4))]),
    "div": (lambda lib, a, b: a / b, [_normal((3, 4)), _positive((3, 4))]),
    "rdiv": (lambda lib, a: 2 / a, [_positive((5,))]),
    "pow_scalar": (lambda lib, a: a ** 3, [_normal((3, 4))]),
    "pow_tensor": (lambda lib, a, b: a ** b, [_positive((3, 4)), _normal((3, 4))]),
    "rpow": (lambda lib, a: 2 ** a, [_normal((5,))]),
    "neg": (lambda lib, a: -a * a, [_normal((5,))]),
    "abs": (lambda lib, a: a.abs() * a, [_normal((5,))]),
    "exp": (lambda lib, a: a.exp(), [_normal((3, 4))]),
    "log": (lambda lib, a: a.log(), [_positive((3, 4))]),
    "sqrt": (lambda lib, a: a.sqrt(), [_positive((3, 4))]),
    "maximum": (lambda lib, a, b: lib.maximum(a, b) * a, [_normal((6,)), _normal((6,))]),
    "clamp": (lambda lib, a: a.clamp(-0.5, 0.5) * a, [_normal((3, 4))]),
    "where": (lambda lib, a, b: lib.where(a > 0, a * b, b * b), [_normal((3, 4)),
                                                                  _normal((3, 4))]),
    # activations
    "relu": (lambda lib, a: _functional(lib).relu(a) * a, [_normal((3, 4))]),
    "sigmoid": (lambda lib, a: _functional(lib).sigmoid(a), [_normal((3, 4))]),
    "tanh": (lambda lib, a: _functional(lib).tanh(a), [_normal((3, 4))]),
    "softmax": (lambda lib, a: _functional(lib).softmax(a, dim=1), [_normal((3, 4))]),
    "log_softmax": (lambda lib, a: _functional(lib).log_softmax(a, dim=0), [_normal((3, 4))]),
    "dropout_eval": (lambda lib, a: _functional(lib).dropout(a * a, training=False),
                     [_normal((3, 4))]),
    # reductions
    "sum": (lambda lib, a: (a * a).sum(), [_normal((3, 4))]),
    "sum_dim": (lambda lib, a: (a * a).sum(1, keepdim=True), [_normal((3, 4))]),
    "mean_dim": (lambda lib, a: (a * a).mean(0), [_normal((3, 4))]),
    "max_dim": (lambda lib, a: (a * a).max(1)[0], [_normal((3, 4))]),
    "max_all": (lambda lib, a: (a * a).max(), [_normal((3, 4))]),
    "amax": (lambda lib, a: (a * a).amax(0), [_normal((3, 4))]),
    "norm": (lambda lib, a: a.norm(), [_normal((3, 4))]),
    "norm_dim": (lambda lib, a: a.norm(dim=1), [_normal((3, 4))]),
    "std": (lambda lib, a: a.std(1), [_normal((3, 4))]),
    "var": (lambda lib, a: a.var(), [_normal((3, 4))]),
    # matrix products
    "matmul": (lambda lib, a, b: a @ b, [_normal((3, 4)), _normal((4, 2))]),
    "matmul_batched": (lambda lib, a, b: a @ b, [_normal((2, 3, 4)), _normal((4, 2))]),
    "matmul_vector": (lambda lib, a, b: a @ b, [_normal((3, 4)), _normal((4,))]),
    "dot": (lambda lib, a, b: a @ b, [_normal((4,)), _normal((4,))]),
    "linear": (lambda lib, x, w, b: _functional(lib).linear(x * x, w, b),
               [_normal((3, 4)), _normal((5, 4)), _normal((5,))]),
    "linear_3d": (lambda lib, x, w: _functional(lib).linear(x * x, w),
                  [_normal((2, 3, 4)), _normal((5, 4))]),
    # shape ops and indexing
    "reshape": (lambda lib, a: (a * a).reshape(2, 6), [_normal((3, 4))]),
    "permute": (lambda lib, a: (a * a).permute(2, 0, 1), [_normal((2, 3, 4))]),
    "transpose": (lambda lib, a: (a * a).t(), [_normal((3, 4))]),
    "expand": (lambda lib, a: (a * a).expand(2, 3, 4), [_normal((3, 1))]),
    "index": (lambda lib, a: (a * a)[1:, ::2], [_normal((3, 4))]),
    "index_select": (lambda lib, a: (a * a)[0], [_normal((3, 4))]),
    "index_array": (lambda lib, a: (a * a)[lib.tensor([0, 2, 0])], [_normal((3, 4))]),
    "cat": (lambda lib, a, b: lib.cat([a * a, b * b], dim=1), [_normal((3, 4)), _normal((3, 2))]),
    "stack": (lambda lib, a, b: lib.stack([a * b, b]), [_normal((3, 4)), _normal((3, 4))]),
    "flatten": (lambda lib, a: (a * a).flatten(1), [_normal((2, 3, 4))]),
    "unsqueeze": (lambda lib, a: (a * a).unsqueeze(1).squeeze(), [_normal((3, 4))]),
    "pad": (lambda lib, a: _functional(lib).pad(a * a, (1, 2, 0, 1)), [_normal((1, 2, 3, 4))]),
    # networks' layers
    "conv1d": (lambda lib, x, w: _functional(lib).conv1d(x, w, padding=1) ** 2,
               [_normal((2, 3, 6)), _normal((4, 3, 3))]),
    "max_pool1d": (lambda lib, x: _functional(lib).max_pool1d(x * x, 2), [_normal((2, 3, 6))]),
    "avg_pool1d": (lambda lib, x: _functional(lib).avg_pool1d(x * x, 3, 1),
                   [_normal((2, 3, 6))]),
    "unfold": (lambda lib, x: _functional(lib).unfold(x * x, 2), [_normal((1, 2, 3, 4))]),
    "fold": (lambda lib, x: _functional(lib).fold(x * x, (3, 3), 2), [_normal((1, 8, 4))]),
    "max_unpool2d": (lambda lib, x: _functional(lib).max_unpool2d(
        *_functional(lib).max_pool2d(x * x, 2, return_indices=True), 2),
        [_normal((1, 2, 4, 4))]),
    "batch_norm_train": (lambda lib, x, w, b: _batch_norm(lib, x, w, b, True),
                         [_normal((4, 3, 2, 2)), _positive((3,)), _normal((3,))]),
    "batch_norm_eval": (lambda lib, x, w, b: _batch_norm(lib, x * x, w, b, False),
                        [_normal((4, 3, 2)), _positive((3,)), _normal((3,))]),
    "batch_norm_plain": (lambda lib, x: _batch_norm(lib, x, None, None, True),
                         [_normal((5, 2))]),
    # losses
    "cross_entropy": (lambda lib, x: _functional(lib).cross_entropy(x, _targets(lib)),
                      [_normal((4, 3))]),
    "cross_entropy_weighted": (
        lambda lib, x, w: _functional(lib).cross_entropy(x, _targets(lib), weight=w.detach(),
                                                         label_smoothing=0.2),
        [_normal((4, 3)), _positive((3,))]),
    "cross_entropy_ignore_index": (
        lambda lib, x: _functional(lib).cross_entropy(x, _targets(lib), ignore_index=2),
        [_normal((4, 3))]),
    "cross_entropy_sum_2d": (
        lambda lib, x: _functional(lib).cross_entropy(x, lib.tensor([[0, 1], [2, 2]]),
                                                      reduction="sum"),
        [_normal((2, 3, 2))]),
    "cross_entropy_probabilities": (
        lambda lib, x: _functional(lib).cross_entropy(
            x, lib.tensor([[0.2, 0.8, 0.0], [0.5, 0.25, 0.25]], dtype=lib.float64)),
        [_normal((2, 3))]),
    "nll_loss": (lambda lib, x: _functional(lib).nll_loss(
        _functional(lib).log_softmax(x, dim=1), _targets(lib)), [_normal((4, 3))]),
    "mse_loss": (lambda lib, x, y: _functional(lib).mse_loss(x * x, y),
                 [_normal((3, 4)), _normal((3, 4))]),
    # the tensor ops of issue 12 (each squared or multiplied, so the second gradient is not 0)
    "sort": (lambda lib, a: a.sort(dim=1, descending=True).values * a, [_normal((3, 4))]),
    "topk": (lambda lib, a: a.topk(2, dim=0).values ** 2, [_normal((3, 4))]),
    "gather": (lambda lib, a: a.gather(1, lib.tensor([[0, 0, 3], [2, 1, 0], [1, 1, 1]])) ** 2,
               [_normal((3, 4))]),
    "index_select_op": (lambda lib, a: a.index_select(0, lib.tensor([2, 0, 2])) ** 3,
                     [_normal((3, 4))]),
    "masked_fill": (lambda lib, a, v: a.masked_fill(a > 0, v) * a,
                    [_normal((3, 4)), lambda rng: rng.standard_normal(())]),
    "roll": (lambda lib, a: a.roll((1, -2), (0, 1)) * a, [_normal((3, 4))]),
    "flip": (lambda lib, a: a.flip(1) * a, [_normal((3, 4))]),
    "tril": (lambda lib, a: a.tril(1) ** 2, [_normal((3, 4))]),
    "triu": (lambda lib, a: a.triu(-1) * a, [_normal((3, 4))]),
    "cumsum": (lambda lib, a: a.cumsum(1) ** 2, [_normal((3, 4))]),
    "logsumexp": (lambda lib, a: a.logsumexp(1) * 2, [_normal((3, 4))]),
    "logsumexp_keepdim": (lambda lib, a: a.logsumexp((0, 1), keepdim=True), [_normal((3, 4))]),
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_issue12_op_double_backward_matches_torch(name):
    fn, makers = TABLE[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    assert_double_backward(fn, *(make(rng) for make in makers), seed=len(name), what=name)


# -------------------------------------------------- a gradient penalty and a Hessian product
def _small_cnn(lib):
    nn = lib.nn
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Tanh(),
                         nn.MaxPool2d(2), nn.Conv2d(4, 3, 3, stride=2, padding=1, bias=False),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))


def _copy_parameters(source, target):
    for (name, p_source), (name_target, p_target) in zip(
            source.named_parameters(), target.named_parameters(), strict=True):
        assert name == name_target
        p_target.data = corrnet.tensor(p_source.detach().numpy().copy())


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-8), ("float32", 2e-4)])
def test_issue12_gradient_penalty_on_a_small_cnn_matches_torch(dtype, rtol):
    torch.manual_seed(0)
    torch_net = _small_cnn(torch).to(getattr(torch, dtype))
    net = _small_cnn(corrnet).to(getattr(corrnet, dtype))
    _copy_parameters(torch_net, net)
    x = np.random.default_rng(1).standard_normal((3, 2, 8, 8)).astype(dtype)

    def penalty_grads(lib, model):
        inputs = lib.tensor(x, requires_grad=True)
        scores = model(inputs)
        (grad_x,) = lib.autograd.grad(scores.sum(), inputs, create_graph=True)
        penalty = (grad_x.flatten(1).norm(dim=1) - 1) ** 2
        loss = penalty.mean() + scores.pow(2).mean()
        loss.backward()
        return loss, [p.grad for p in model.parameters()] + [inputs.grad]

    loss_c, grads_c = penalty_grads(corrnet, net)
    loss_t, grads_t = penalty_grads(torch, torch_net)
    assert_scaled_close(_values(loss_c, None), _values(loss_t, None), rtol, rtol, "loss")
    for i, (got, expected) in enumerate(zip(grads_c, grads_t, strict=True)):
        assert str(got.dtype) == str(expected.dtype)
        assert_scaled_close(_values(got, None), _values(expected, None), rtol, rtol,
                            f"parameter {i}")


def test_issue12_hessian_vector_product_on_an_mlp_matches_torch():
    def mlp(lib):
        nn = lib.nn
        return nn.Sequential(nn.Linear(5, 8), nn.Sigmoid(), nn.Linear(8, 6), nn.Tanh(),
                             nn.Linear(6, 3))

    torch.manual_seed(0)
    torch_net = mlp(torch).double()
    net = mlp(corrnet).double()
    _copy_parameters(torch_net, net)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((7, 5)), rng.integers(0, 3, 7)
    vectors = [rng.standard_normal(tuple(p.shape)) for p in torch_net.parameters()]

    def hvp(lib, model):
        params = list(model.parameters())
        loss = lib.nn.functional.cross_entropy(model(lib.tensor(x, dtype=lib.float64)),
                                               lib.tensor(y))
        grads = lib.autograd.grad(loss, params, create_graph=True)
        dot = sum((g * lib.tensor(v, dtype=lib.float64)).sum()
                  for g, v in zip(grads, vectors, strict=True))
        return lib.autograd.grad(dot, params)

    for got, expected in zip(hvp(corrnet, net), hvp(torch, torch_net), strict=True):
        assert_scaled_close(_values(got, None), _values(expected, None), RTOL, RTOL, "Hv")
