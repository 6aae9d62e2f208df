"""Issue 13: convolution + bias + activation (+ average pooling) fused into one op
(`corrnet.functional.fused_conv2d`, the epilogue kernels of `corrnet.kernels.activation`,
and `nn.Sequential`'s fusion of Conv2d -> Sigmoid/ReLU (-> AvgPool2d) runs, nn/_fusion.py).

PyTorch is the oracle: values and gradients of the fused op, of its kernels and of fused
Sequentials against torch's unfused modules, on both kernel paths (compiled and the NumPy
fallback); the fusion must not show where a user could see it (hooks, grad_fn names,
double backward, an output modified in place).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corrnet
from corrnet import functional as CF
from corrnet import nn
from corrnet.kernels import activation, jit, lanes, plan, threads
from corrnet.kernels.windows import make_window
from corrnet.nn import _fusion

SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(params=[True, False], ids=["compiled", "numpy"])
def compiled(request, monkeypatch):
    if request.param and not jit.AVAILABLE:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(threads, "MIN_PARALLEL_SIZE", 0)    # the pieces' seams tested too
    # fused on both paths (by default only where the epilogue runs compiled), so that the
    # fused op runs on the epilogue's NumPy passes too
    monkeypatch.setattr(activation, "fuses", lambda dtype, act: True)
    with jit.use_compiled(request.param):
        yield request.param


def _torch_chain(x, w, b, stride, padding, groups, act, pool):
    y = torch.nn.functional.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)
    y = torch.sigmoid(y) if act == "sigmoid" else torch.relu(y)
    return torch.nn.functional.avg_pool2d(y, pool) if pool else y


def _close(actual, expected, what=""):
    expected = expected.detach().numpy()
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=2e-4, atol=2e-5 * scale, err_msg=what)


@st.composite
def problems(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    c_in = groups * draw(st.integers(1, 3))
    # (up to 20 a group: the lanes kernels' blocks of 16 output channels, one of them partly
    # filled, as well as their few-channel kernel)
    c_out = groups * draw(st.sampled_from([1, 2, 3, 17, 20]))
    kernel = draw(st.integers(1, 4))
    padding = draw(st.integers(0, 2))
    stride = draw(st.integers(1, 2))
    pool = draw(st.sampled_from([0, 2, 3]))
    side = draw(st.integers(max(kernel - 2 * padding, 1) + (pool + 1) * stride, 13))
    return dict(n=draw(st.integers(1, 4)), c_in=c_in, c_out=c_out, kernel=kernel,
                padding=padding, stride=stride, groups=groups, pool=pool,
                height=side, width=draw(st.integers(side - 1, side + 2)),
                act=draw(st.sampled_from(["sigmoid", "relu"])),
                bias=draw(st.booleans()), seed=draw(st.integers(0, 2**31 - 1)),
                algorithm=draw(st.sampled_from([None, "lanes"])))


@SETTINGS
@given(p=problems())
def test_issue13_fused_conv2d_matches_torch(compiled, p):
    """Values and the three gradients of fused_conv2d, float32, against torch's three ops;
    on the planner's algorithms, and on lanes, whose forward pass runs the epilogue on each
    image as it finishes it (`plan.forward_epilogue`)."""
    with plan.forcing(p["algorithm"]):
        _check_fused_conv2d(p)


def _check_fused_conv2d(p):
    rng = np.random.default_rng(p["seed"])
    x = rng.standard_normal((p["n"], p["c_in"], p["height"], p["width"])).astype(np.float32)
    w = rng.standard_normal((p["c_out"], p["c_in"] // p["groups"], p["kernel"],
                             p["kernel"])).astype(np.float32)
    b = rng.standard_normal(p["c_out"]).astype(np.float32) if p["bias"] else None
    args = (p["stride"], p["padding"], p["groups"], p["act"], p["pool"])
    tensors = [torch.tensor(a, requires_grad=True) for a in (x, w) + ((b,) if p["bias"] else ())]
    expected = _torch_chain(tensors[0], tensors[1], tensors[2] if p["bias"] else None, *args)
    grad = rng.standard_normal(tuple(expected.shape)).astype(np.float32)
    expected.backward(torch.from_numpy(grad))
    ours = [corrnet.tensor(a, requires_grad=True) for a in (x, w) + ((b,) if p["bias"] else ())]
    out = CF.fused_conv2d(ours[0], ours[1], ours[2] if p["bias"] else None, p["stride"],
                          p["padding"], 1, p["groups"], p["act"], p["pool"])
    assert tuple(out.shape) == tuple(expected.shape)
    _close(out.detach().numpy(), expected, "forward")
    out.backward(corrnet.tensor(grad))
    for name, mine, theirs in zip(("x", "weight", "bias"), ours, tensors, strict=False):
        _close(mine.grad.numpy(), theirs.grad, name)


@pytest.mark.parametrize("act", ["sigmoid", "relu"])
@pytest.mark.parametrize("pool", [0, 2, 3])
def test_issue13_epilogue_kernels_match_torch_with_special_values(compiled, act, pool):
    """bias_activation_forward / _backward alone, on maps with NaN, +-inf and huge values:
    as torch's (bias add, activation, avg_pool2d), NaN where torch has NaN."""
    rng = np.random.default_rng(1)
    z = (rng.standard_normal((3, 4, 8, 7)) * 50).astype(np.float32)
    z[0, 0, 0, :4] = [np.nan, np.inf, -np.inf, 1e38]
    z[1, 2, 5, 5] = np.nan
    bias = rng.standard_normal(4).astype(np.float32)
    z_t = torch.tensor(z, requires_grad=True)
    bias_t = torch.tensor(bias, requires_grad=True)
    y = z_t + bias_t.view(1, -1, 1, 1)
    y = torch.sigmoid(y) if act == "sigmoid" else torch.relu(y)
    expected = torch.nn.functional.avg_pool2d(y, pool) if pool else y
    grad = rng.standard_normal(tuple(expected.shape)).astype(np.float32)
    expected.backward(torch.from_numpy(grad))
    out, pooled = activation.bias_activation_forward(z.copy(), bias, act, pool)
    np.testing.assert_allclose(pooled if pool else out, expected.detach().numpy(), rtol=1e-5,
                               atol=1e-6, equal_nan=True)
    grad_z, grad_bias = activation.bias_activation_backward(out, grad, act, pool)
    np.testing.assert_allclose(grad_z, z_t.grad.numpy(), rtol=1e-5, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(grad_bias, bias_t.grad.numpy(), rtol=1e-4, atol=1e-5,
                               equal_nan=True)


@pytest.mark.skipif(not jit.AVAILABLE, reason="numba is not installed")
@pytest.mark.parametrize("act", ["sigmoid", "relu", ""])
@pytest.mark.parametrize("pool", [0, 2, 3])
@pytest.mark.parametrize("c_out", [6, 20], ids=["pixels", "channels"])
def test_issue13_lanes_epilogue_matches_torch_and_the_separate_pass(act, pool, c_out,
                                                                   monkeypatch):
    """lanes.forward_epilogue, the epilogue run per image inside the convolution kernel (both
    of its kernels: few output channels with pixels in lanes, more with channels in lanes),
    on inputs with NaN, +-inf and huge values: as torch's conv2d + activation + avg_pool2d,
    and bit for bit as the convolution followed by the epilogue's own pass (the same
    arithmetic; without an activation, NumPy's pool), on 2 threads taking the images from a
    shared counter."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((9, 3, 12, 11)) * 20).astype(np.float32)
    x[0, 0, 3, :4] = [np.nan, np.inf, -np.inf, 1e38]
    x[5, 1, 7, 2] = np.nan
    weight = rng.standard_normal((c_out, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(c_out).astype(np.float32)
    window = make_window("conv2d", 12, 11, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))
    monkeypatch.setattr(lanes, "active", lambda: 2)
    monkeypatch.setattr(lanes, "MIN_PARALLEL_SIZE", 0)
    with jit.use_compiled(True), np.errstate(invalid="ignore"):     # (NaN's sums)
        out, pooled = lanes.forward_epilogue(x, weight, bias, window, 1, act, pool)
        z = lanes.forward(x, weight, None, window, 1)
        if act:
            expected_out, expected_pooled = activation.bias_activation_forward(z, bias, act,
                                                                              pool)
        else:
            expected_out = z + bias.reshape(1, -1, 1, 1)
            expected_pooled = activation.average_pool_numpy(expected_out, pool) if pool else None
    np.testing.assert_array_equal(out, expected_out)
    if pool and act:
        np.testing.assert_array_equal(pooled, expected_pooled)
    elif pool:      # (NumPy's pool adds each window's numbers in another order)
        np.testing.assert_allclose(pooled, expected_pooled, rtol=1e-6, atol=1e-5)
    else:
        assert pooled is None
    y = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weight),
                                   torch.from_numpy(bias), padding=1)
    y = {"sigmoid": torch.sigmoid, "relu": torch.relu, "": lambda t: t}[act](y)
    np.testing.assert_allclose(out, y.numpy(), rtol=1e-4, atol=1e-4, equal_nan=True)
    if pool:
        np.testing.assert_allclose(pooled, torch.nn.functional.avg_pool2d(y, pool).numpy(),
                                   rtol=1e-4, atol=1e-4, equal_nan=True)


def test_issue13_relu_fusion_in_float64(compiled):
    rng = np.random.default_rng(2)
    x, w, b = (rng.standard_normal(s) for s in ((2, 3, 9, 9), (4, 3, 3, 3), (4,)))
    tensors = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    expected = _torch_chain(*tensors, 1, 1, 1, "relu", 2)
    expected.sum().backward()
    ours = [corrnet.tensor(a, requires_grad=True) for a in (x, w, b)]
    out = CF.fused_conv2d(*ours, padding=1, activation="relu", pool=2)
    assert out.dtype == corrnet.float64
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-12)
    out.sum().backward()
    for mine, theirs in zip(ours, tensors, strict=True):
        np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-10,
                                   atol=1e-12)


def _lenets(act: str, seed: int = 0):
    """D2L's LeNet in corrnet and in torch, with the same weights."""
    net = corrnet.models.lenet(act)
    reference = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2),
        torch.nn.Sigmoid() if act == "sigmoid" else torch.nn.ReLU(),
        torch.nn.AvgPool2d(2, 2) if act == "sigmoid" else torch.nn.MaxPool2d(2, 2),
        torch.nn.Conv2d(6, 16, 5),
        torch.nn.Sigmoid() if act == "sigmoid" else torch.nn.ReLU(),
        torch.nn.AvgPool2d(2, 2) if act == "sigmoid" else torch.nn.MaxPool2d(2, 2),
        torch.nn.Flatten(), torch.nn.Linear(400, 120),
        torch.nn.Sigmoid() if act == "sigmoid" else torch.nn.ReLU(),
        torch.nn.Linear(120, 84), torch.nn.Sigmoid() if act == "sigmoid" else torch.nn.ReLU(),
        torch.nn.Linear(84, 10))
    reference.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                               for k, v in net.state_dict().items()})
    return net, reference


@pytest.mark.parametrize("act", ["sigmoid", "relu"])
@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
def test_issue13_lenet_training_steps_match_torch(compiled, act, fuse, monkeypatch):
    """Three SGD steps of LeNet, fused and not: the losses and every parameter's gradient."""
    monkeypatch.setattr(_fusion, "ENABLED", fuse)
    net, reference = _lenets(act)
    rng = np.random.default_rng(3)
    opt = corrnet.optim.SGD(net.parameters(), lr=0.5)
    opt_t = torch.optim.SGD(reference.parameters(), lr=0.5)
    for _ in range(3):
        x = rng.random((16, 1, 28, 28), dtype=np.float32)
        y = rng.integers(0, 10, 16)
        loss = nn.functional.cross_entropy(net(corrnet.tensor(x)), corrnet.tensor(y))
        loss_t = torch.nn.functional.cross_entropy(reference(torch.from_numpy(x)),
                                                   torch.from_numpy(y))
        opt.zero_grad()
        opt_t.zero_grad()
        loss.backward()
        loss_t.backward()
        np.testing.assert_allclose(loss.item(), loss_t.item(), rtol=1e-5)
        for (name, p), p_t in zip(net.named_parameters(), reference.parameters(), strict=True):
            _close(p.grad.numpy(), p_t.grad, name)
        opt.step()
        opt_t.step()


def test_issue13_sequential_fuses_only_hookless_exact_runs(monkeypatch):
    """Which runs are fused: Conv2d then Sigmoid/ReLU, then an AvgPool2d that tiles; not
    with a hook, a subclass, another padding mode or an overlapping pool."""
    if not jit.AVAILABLE:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(jit, "_enabled", True)

    def run(*modules):
        return _fusion.fusable_run(list(modules), 0)

    conv = nn.Conv2d(1, 2, 3)
    assert run(conv, nn.Sigmoid(), nn.AvgPool2d(2)) == (3, "sigmoid", 2)
    assert run(conv, nn.ReLU(), nn.AvgPool2d(3, 3)) == (3, "relu", 3)
    assert run(conv, nn.ReLU(inplace=True)) == (2, "relu", 0)
    assert run(conv, nn.ReLU(), nn.MaxPool2d(2)) == (2, "relu", 0)
    assert run(conv, nn.Sigmoid(), nn.AvgPool2d(3, 2)) == (2, "sigmoid", 0)
    assert run(conv, nn.Sigmoid(), nn.AvgPool2d(2, padding=1)) == (2, "sigmoid", 0)
    assert run(conv, nn.Sigmoid(), nn.AvgPool2d(2, ceil_mode=True)) == (2, "sigmoid", 0)
    assert run(conv, nn.Sigmoid(), nn.AvgPool2d(2, divisor_override=3)) == (2, "sigmoid", 0)
    assert run(conv, nn.Tanh())[0] == 0
    assert run(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), nn.ReLU())[0] == 0
    assert run(nn.LazyConv2d(2, 3), nn.ReLU())[0] == 0

    class MyConv(nn.Conv2d):
        pass

    assert run(MyConv(1, 2, 3), nn.ReLU())[0] == 0
    act = nn.Sigmoid()
    handle = act.register_forward_hook(lambda module, args, out: None)
    assert run(conv, act)[0] == 0
    handle.remove()
    assert run(conv, act)[0] == 2
    pool = nn.AvgPool2d(2)
    handle = pool.register_forward_pre_hook(lambda module, args: None)
    assert run(conv, act, pool) == (2, "sigmoid", 0)
    handle.remove()
    handle = conv.register_full_backward_hook(lambda module, gin, gout: None)
    assert run(conv, act)[0] == 0
    handle.remove()
    act.forward = lambda input: input          # an instance's own forward (corrnet.summary's)
    assert run(conv, act)[0] == 0
    del act.forward
    assert run(conv, act)[0] == 2
    with jit.use_compiled(False):
        assert run(conv, act)[0] == 0


def test_issue13_hooks_see_the_intermediate_maps():
    """A forward hook on the activation turns the fusion off for that run: it sees the
    activation's output, as in torch, and retain_grad on it works."""
    net, reference = _lenets("sigmoid")
    seen, seen_t = [], []

    def keeper(into):
        def hook(module, args, out):
            out.retain_grad()
            into.append(out)
        return hook

    net[1].register_forward_hook(keeper(seen))
    reference[1].register_forward_hook(keeper(seen_t))
    x = np.random.default_rng(4).random((2, 1, 28, 28), dtype=np.float32)
    net(corrnet.tensor(x)).sum().backward()
    reference(torch.from_numpy(x)).sum().backward()
    assert seen[0].grad_fn.name() == "SigmoidBackward0"
    _close(seen[0].detach().numpy(), seen_t[0])
    _close(seen[0].grad.numpy(), seen_t[0].grad)


def test_issue13_fused_grad_fn_is_named_as_the_last_op(compiled):
    x = corrnet.randn(1, 1, 6, 6)
    w = corrnet.randn(2, 1, 3, 3, requires_grad=True)
    names = {(act, pool): CF.fused_conv2d(x, w, None, activation=act, pool=pool).grad_fn.name()
             for act in ("sigmoid", "relu") for pool in (0, 2)}
    assert names == {("sigmoid", 0): "SigmoidBackward0", ("relu", 0): "ReluBackward0",
                     ("sigmoid", 2): "AvgPool2DBackward0", ("relu", 2): "AvgPool2DBackward0"}


@pytest.mark.parametrize("act", ["sigmoid", "relu"])
@pytest.mark.parametrize("pool", [0, 2])
def test_issue13_fused_graph_shows_the_unfused_chain(compiled, act, pool):
    """grad_fn.next_functions walks through the activation's and the convolution's nodes,
    as torch's graph of the three ops does."""
    rng = np.random.default_rng(7)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((1, 2, 6, 6),
                                                                    (3, 2, 3, 3), (3,)))
    out_t = _torch_chain(torch.from_numpy(x), *(torch.tensor(a, requires_grad=True)
                                                for a in (w, b)), 1, 0, 1, act, pool)
    out = CF.fused_conv2d(corrnet.tensor(x), *(corrnet.tensor(a, requires_grad=True)
                                               for a in (w, b)), activation=act, pool=pool)
    assert out.grad_fn.function is CF._ConvEpilogue
    names = []
    node, node_t = out.grad_fn, out_t.grad_fn
    while node_t is not None and hasattr(node_t, "next_functions") and node_t.next_functions:
        names.append((node.name(), node_t.name()))
        edges = [(None if f is None else f.name()) for f, _ in node.next_functions]
        edges_t = [(None if f is None else f.name()) for f, _ in node_t.next_functions]
        assert edges == edges_t, names
        node, node_t = node.next_functions[0][0], node_t.next_functions[0][0]
    assert [a for a, _ in names] == [b for _, b in names]
    assert names[-1][1] == "ConvolutionBackward0"


@pytest.mark.parametrize("act", ["sigmoid", "relu"])
@pytest.mark.parametrize("pool", [0, 2])
def test_issue13_fused_double_backward_matches_torch(compiled, act, pool):
    """create_graph through the fused op: a gradient penalty's gradient, as torch's."""
    rng = np.random.default_rng(5)
    x, w, b = (rng.standard_normal(s) for s in ((2, 2, 7, 7), (3, 2, 3, 3), (3,)))
    tensors = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    out_t = _torch_chain(*tensors, 1, 1, 1, act, pool)
    grads_t = torch.autograd.grad((out_t ** 2).sum(), tensors, create_graph=True)
    sum((g * g).sum() for g in grads_t).backward()
    ours = [corrnet.tensor(a, requires_grad=True) for a in (x, w, b)]
    out = CF.fused_conv2d(*ours, padding=1, activation=act, pool=pool)
    assert out.grad_fn.function is CF._ConvEpilogue
    grads = corrnet.autograd.grad((out ** 2).sum(), ours, create_graph=True)
    for g, g_t in zip(grads, grads_t, strict=True):
        np.testing.assert_allclose(g.detach().numpy(), g_t.detach().numpy(), rtol=1e-9,
                                   atol=1e-12)
    sum((g * g).sum() for g in grads).backward()
    for mine, theirs in zip(ours, tensors, strict=True):
        np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-8,
                                   atol=1e-10)


def test_issue13_fused_output_modified_in_place_refuses_backward(compiled):
    """The fused op saves its activation's output, as torch's sigmoid does: an in-place
    change of the output before backward is an error in both."""
    x = corrnet.randn(1, 1, 5, 5)
    w = corrnet.randn(2, 1, 3, 3, requires_grad=True)
    out = CF.fused_conv2d(x, w, None, activation="sigmoid")
    out.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_issue13_inference_and_unbatched_inputs(compiled):
    rng = np.random.default_rng(6)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((3, 8, 8), (4, 3, 3, 3),
                                                                    (4,)))
    with corrnet.no_grad():
        out = CF.fused_conv2d(*(corrnet.tensor(a) for a in (x, w, b)), padding=1,
                              activation="sigmoid", pool=2)
    assert not out.requires_grad and tuple(out.shape) == (4, 4, 4)
    expected = _torch_chain(*(torch.from_numpy(a) for a in (x, w, b)), 1, 1, 1, "sigmoid", 2)
    _close(out.numpy(), expected)
