"""issue 15: convolution, pooling and the other layers on the (stand-in) CUDA device.

With ``CORRNET_STANDIN_CUDA`` set, tensors on ``cuda`` hold stand-in arrays that refuse any
implicit conversion to the host (as CuPy's), so every op below that ran through runs on the
device kernels with no hidden round trip. PyTorch on the CPU is the oracle: the oracle
suite's own configurations (tests/oracle/test_conv_pool.py) and its `check_op`, with
corrnet's operands moved to ``cuda`` before the op and its results brought back after it,
so that values, gradients, dtypes and shapes are all compared with PyTorch's.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given

import corrnet as cn
from corrnet import _standin, devices
from corrnet import nn as cnn
from corrnet.kernels import conv as conv_kernels
from corrnet.kernels import plan
from corrnet.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent / "oracle"))
import test_conv_more as oracle_more  # noqa: E402
import test_conv_pool as oracle  # noqa: E402  (their hypothesis strategies)
import test_fold_pad as oracle_windows  # noqa: E402
import test_seeds  # noqa: E402  (the notebooks' parser and runner)

import helpers  # noqa: E402  (tests/oracle: the oracle's comparison)

tF = torch.nn.functional
SETTINGS = helpers.oracle_settings(40)


@pytest.fixture(scope="module", autouse=True)
def cuda():
    """Two stand-in CUDA devices for the whole module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(devices.STANDIN_VARIABLE, "2")
        devices.reset()
        yield
    devices.reset()


def on_device(t) -> bool:
    return isinstance(t._data, _standin.ndarray)


def _via_cuda(op, device="cuda"):
    """op on corrnet tensors moved to `device`; each Tensor result must come back from the
    device (checked) and is moved to the CPU for the comparison (gradients flow back
    through both moves)."""
    def run(*tensors):
        moved = [t.to(device) if isinstance(t, cn.Tensor) else t for t in tensors]
        out = op(*moved)
        outs = out if isinstance(out, tuple) else (out,)
        for o in outs:
            assert on_device(o) and o.device == devices.as_device(device), f"{o.device}"
        back = tuple(o.cpu() for o in outs)
        return back if isinstance(out, tuple) else back[0]
    return run


def check_on_cuda(op: str, *arrays, requires_grad=None, device="cuda", **kwargs):
    """helpers.check_functional with corrnet's side on the CUDA device."""
    c_op, t_op = getattr(F, op), getattr(tF, op)
    return helpers.check_op(_via_cuda(lambda *ts: c_op(*ts, **kwargs), device),
                            lambda *ts: t_op(*ts, **kwargs), arrays,
                            requires_grad=requires_grad, name=f"{op} on {device} {kwargs}")


# --------------------------------------------------------------------------- hypothesis


@SETTINGS
@given(oracle.conv_configs())
def test_conv2d_on_cuda_matches_torch(cfg):
    x_shape, w_shape, b_shape, kwargs, rg, dtype, seed = cfg
    rng = np.random.default_rng(seed)
    x, w = helpers.random_array(rng, x_shape, dtype), helpers.random_array(rng, w_shape, dtype)
    b = None if b_shape is None else helpers.random_array(rng, b_shape, dtype)
    oracle._assert_accepted(check_on_cuda("conv2d", x, w, b, requires_grad=rg, **kwargs))


@SETTINGS
@given(oracle.max_pool_configs())
def test_max_pool2d_on_cuda_matches_torch(cfg):
    x_shape, kernel, kwargs, dtype, seed = cfg
    x = helpers.distinct_array(np.random.default_rng(seed), x_shape, dtype)  # no ties
    oracle._assert_accepted(check_on_cuda("max_pool2d", x, kernel, **kwargs))


@SETTINGS
@given(oracle.avg_pool_configs())
def test_avg_pool2d_on_cuda_matches_torch(cfg):
    x_shape, kernel, kwargs, dtype, seed = cfg
    x = helpers.random_array(np.random.default_rng(seed), x_shape, dtype)
    oracle._assert_accepted(check_on_cuda("avg_pool2d", x, kernel, **kwargs))


@helpers.oracle_settings(15)
@given(oracle.free_conv_configs())
def test_conv2d_on_cuda_accepts_or_rejects_as_torch(cfg):
    x_shape, w_shape, b_len, kwargs, dtype, seed = cfg
    rng = np.random.default_rng(seed)
    x, w = helpers.random_array(rng, x_shape, dtype), helpers.random_array(rng, w_shape, dtype)
    b = None if b_len is None else helpers.random_array(rng, (b_len,), dtype)
    oracle._note_verdict(check_on_cuda("conv2d", x, w, b, **kwargs))


@helpers.oracle_settings(15)
@given(oracle_more.conv_transpose_configs())
def test_conv_transpose2d_on_cuda_matches_torch(cfg):
    x_shape, w_shape, b_shape, kwargs, dtype, seed = cfg
    arrays = oracle_more._arrays(seed, dtype, x_shape, w_shape, b_shape)
    oracle._assert_accepted(check_on_cuda("conv_transpose2d", *arrays, **kwargs))


@helpers.oracle_settings(15)
@given(oracle_more.conv1d_configs())
def test_conv1d_on_cuda_matches_torch(cfg):
    x_shape, w_shape, b_shape, kwargs, dtype, seed = cfg
    arrays = oracle_more._arrays(seed, dtype, x_shape, w_shape, b_shape)
    oracle._assert_accepted(check_on_cuda("conv1d", *arrays, **kwargs))


@helpers.oracle_settings(15)
@given(oracle_windows.unfold_configs())
def test_unfold_on_cuda_matches_torch(cfg):
    x_shape, k, kwargs, dtype, seed = cfg
    x = helpers.random_array(np.random.default_rng(seed), x_shape, dtype)
    oracle._assert_accepted(check_on_cuda("unfold", x, k, **kwargs))


@helpers.oracle_settings(15)
@given(oracle_windows.fold_configs())
def test_fold_on_cuda_matches_torch(cfg):
    x_shape, output_size, k, kwargs, dtype, seed = cfg
    x = helpers.random_array(np.random.default_rng(seed), x_shape, dtype)
    oracle._assert_accepted(check_on_cuda("fold", x, output_size, k, **kwargs))


# --------------------------------------------------------------------------- fixed configs

RNG = np.random.default_rng(15)


def _r(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


FUNCTIONAL_CASES = [
    ("conv1d", (_r(2, 4, 9), _r(6, 2, 3), _r(6)), dict(stride=2, padding=1, groups=2)),
    ("conv1d", (_r(1, 3, 7), _r(2, 3, 2)), dict(padding="same", dilation=2)),
    ("conv2d", (_r(2, 3, 7, 6), _r(4, 3, 3, 2), _r(4)), dict(padding="valid", stride=(2, 1))),
    ("conv2d", (_r(1, 4, 5, 5), _r(4, 1, 3, 3)), dict(padding=1, groups=4)),   # depthwise
    ("conv_transpose2d", (_r(2, 4, 3, 4), _r(4, 3, 3, 3), _r(6)),
     dict(stride=2, padding=1, output_padding=1, groups=2)),
    ("conv_transpose2d", (_r(1, 2, 4, 4), _r(2, 2, 2, 3)), dict(dilation=2, stride=(1, 2))),
    ("conv_transpose1d", (_r(2, 3, 5), _r(3, 2, 4), _r(2)), dict(stride=3, padding=2)),
    ("max_pool1d", (_r(2, 3, 11), 3), dict(stride=2, padding=1, return_indices=True)),
    ("max_pool2d", (_r(2, 2, 9, 9), 3), dict(stride=2, ceil_mode=True, dilation=2,
                                            return_indices=True)),
    ("avg_pool1d", (_r(2, 3, 10), 4), dict(stride=3, padding=2, ceil_mode=True,
                                           count_include_pad=False)),
    ("avg_pool2d", (_r(1, 2, 7, 8), (3, 2)), dict(padding=1, divisor_override=5)),
    ("adaptive_avg_pool2d", (_r(2, 3, 7, 9), (3, 4)), {}),
    ("adaptive_avg_pool1d", (_r(2, 3, 5), 3), {}),
    ("adaptive_max_pool2d", (_r(2, 3, 7, 9), (4, 5)), dict(return_indices=True)),
    ("adaptive_max_pool1d", (_r(1, 2, 10), 4), {}),
    ("unfold", (_r(2, 3, 6, 7), (2, 3)), dict(dilation=(1, 2), padding=1, stride=(2, 1))),
    ("fold", (_r(2, 12, 9), (5, 4), (2, 2)), dict(stride=1, padding=0, dilation=(2, 1))),
    ("pad", (_r(2, 3, 4, 5), (1, 2, 2, 1)), dict(mode="reflect")),
    ("pad", (_r(2, 3, 4, 5), (2, 1, 0, 3)), dict(mode="replicate")),
    ("pad", (_r(2, 3, 4, 5), (1, 3, 2, 2)), dict(mode="circular")),
    ("pad", (_r(2, 3, 4), (1, -1)), dict(value=2.5)),
    ("interpolate", (_r(2, 3, 4, 5),), dict(scale_factor=2, mode="nearest")),
    ("interpolate", (_r(2, 3, 4, 5),), dict(size=(7, 3), mode="bilinear")),
    ("interpolate", (_r(2, 3, 6, 5),), dict(size=(3, 4), mode="bicubic", antialias=True)),
    ("interpolate", (_r(2, 3, 6),), dict(scale_factor=1.5, mode="linear", align_corners=True)),
    ("local_response_norm", (_r(2, 6, 4, 4), 3), {}),
    ("batch_norm", (_r(4, 3, 2, 2), None, None), dict(training=True)),
    ("layer_norm", (_r(2, 3, 4), (3, 4), _r(3, 4), _r(3, 4)), {}),
    ("group_norm", (_r(2, 4, 3, 3), 2, _r(4), _r(4)), {}),
    ("instance_norm", (_r(2, 3, 4, 4),), {}),
    ("pixel_shuffle", (_r(1, 8, 2, 3), 2), {}),
    ("pixel_unshuffle", (_r(1, 2, 4, 6), 2), {}),
    ("prelu", (_r(2, 3, 4), _r(3)), {}),
    ("cross_entropy", (_r(4, 3), RNG.random((4, 3))), {}),    # class probabilities
]


@pytest.mark.parametrize("op, arrays, kwargs", FUNCTIONAL_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(FUNCTIONAL_CASES)])
def test_functional_on_cuda_matches_torch(op, arrays, kwargs):
    oracle._assert_accepted(check_on_cuda(op, *arrays, **kwargs))


def test_max_unpool_on_cuda_matches_torch():
    x = helpers.distinct_array(np.random.default_rng(1), (2, 3, 6, 5), np.float64)

    def unpool(lib_f):
        def run(t):
            out, indices = lib_f.max_pool2d(t, 2, stride=2, return_indices=True)
            return lib_f.max_unpool2d(out, indices, 2, stride=2, output_size=(6, 5))
        return run

    oracle._assert_accepted(helpers.check_op(_via_cuda(unpool(F)), unpool(tF), [x]))


ACTIVATIONS = ["relu", "sigmoid", "tanh", "gelu", "elu", "leaky_relu", "silu", "softplus",
               "mish", "hardswish", "log_softmax", "softmax"]


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations_on_cuda_match_torch(name):
    kwargs = {"dim": 1} if "softmax" in name else {}
    oracle._assert_accepted(check_on_cuda(name, _r(3, 4, 5), **kwargs))


LOSSES = [
    ("mse_loss", (_r(3, 4), _r(3, 4)), {}),
    ("cross_entropy", (_r(5, 3), np.array([0, 2, 1, 1, 0])), {}),
    ("cross_entropy", (_r(2, 3, 4, 4), RNG.integers(0, 3, (2, 4, 4))), dict(label_smoothing=0.1)),
    ("nll_loss", (_r(4, 3), np.array([2, 0, 1, 1])), dict(reduction="sum")),
]


@pytest.mark.parametrize("op, arrays, kwargs", LOSSES)
def test_losses_on_cuda_match_torch(op, arrays, kwargs):
    oracle._assert_accepted(check_on_cuda(op, *arrays, requires_grad=[True, False], **kwargs))


def test_conv2d_on_the_second_device():
    """cuda:1: what the kernels make lands beside their operands (no device mix)."""
    x, w, b = _r(2, 3, 6, 6), _r(4, 3, 3, 3), _r(4)
    oracle._assert_accepted(check_on_cuda("conv2d", x, w, b, device="cuda:1", padding=1))
    oracle._assert_accepted(check_on_cuda("max_pool2d", x, 2, device="cuda:1",
                                          return_indices=True))


LAYERS = [
    ("Conv2d", (3, 4, 3), dict(padding=1, padding_mode="reflect"), (2, 3, 6, 5)),
    ("Conv2d", (2, 4, 2), dict(padding="same", padding_mode="circular", dilation=2), (1, 2, 5, 5)),
    ("Conv2d", (4, 2, 3), dict(padding=2, padding_mode="replicate", groups=2), (2, 4, 4, 6)),
    ("ConvTranspose2d", (3, 2, 3), dict(stride=2), (2, 3, 3, 3)),
    ("BatchNorm2d", (3,), {}, (4, 3, 3, 2)),
    ("GroupNorm", (2, 4), {}, (2, 4, 3, 3)),
    ("LayerNorm", ((3, 3),), {}, (2, 4, 3, 3)),
    ("InstanceNorm2d", (3,), dict(affine=True), (2, 3, 4, 4)),
    ("LocalResponseNorm", (2,), {}, (2, 4, 3, 3)),
]


@pytest.mark.parametrize("name, args, kwargs, shape", LAYERS,
                         ids=[layer[0] + str(i) for i, layer in enumerate(LAYERS)])
def test_layers_on_cuda_match_torch(name, args, kwargs, shape):
    """The layer moved to the device with .cuda(): output, input and parameter gradients
    and buffers (running statistics) as PyTorch's on the CPU."""
    theirs = getattr(torch.nn, name)(*args, **kwargs).double()
    ours = getattr(cnn, name)(*args, **kwargs)
    ours.load_state_dict({k: cn.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})
    ours = ours.double().cuda()
    x, upstream = _r(*shape), None
    t_x, c_x = torch.tensor(x, requires_grad=True), cn.tensor(x).cuda().requires_grad_()
    t_out, c_out = theirs(t_x), ours(c_x)
    assert on_device(c_out) and tuple(c_out.shape) == tuple(t_out.shape)
    upstream = _r(*t_out.shape)
    t_out.backward(torch.tensor(upstream))
    c_out.backward(cn.tensor(upstream).cuda())
    helpers.assert_close(c_out.detach().cpu().numpy(), t_out.detach().numpy(), name, None, None)
    helpers.assert_close(c_x.grad.cpu().numpy(), t_x.grad.numpy(), f"{name} grad", None, None)
    ours_params = dict(ours.named_parameters())
    for pname, p in theirs.named_parameters():
        assert on_device(ours_params[pname].grad)
        helpers.assert_close(ours_params[pname].grad.cpu().numpy(), p.grad.numpy(),
                             f"{name} grad of {pname}", None, None)
    for bname, buffer in theirs.named_buffers():
        helpers.assert_close(ours.state_dict()[bname].cpu().numpy(), buffer.numpy(),
                             f"{name} buffer {bname}", None, None)


@pytest.mark.parametrize("make", [lambda: cnn.LazyConv2d(3, 3), cnn.LazyBatchNorm2d,
                                  lambda: cnn.LazyConvTranspose2d(2, 3)])
def test_lazy_modules_moved_before_their_first_call_materialize_on_the_device(make):
    """As PyTorch: .cuda() on a lazy module places its parameters on the device when the
    first input shows their shapes (their initial values drawn as on the CPU)."""
    x = cn.randn(2, 4, 6, 6, device="cuda", requires_grad=True)
    cn.manual_seed(5)
    module = make().cuda()
    out = module(x)
    out.sum().backward()
    tensors = [*module.parameters(), *module.buffers()]
    assert on_device(out) and tensors and all(on_device(t) for t in tensors)
    assert all(on_device(p.grad) for p in module.parameters())
    cn.manual_seed(5)
    on_cpu = make()
    on_cpu(x.detach().cpu())
    for ours, theirs in zip(module.parameters(), on_cpu.parameters(), strict=True):
        np.testing.assert_array_equal(ours.detach().cpu().numpy(), theirs.detach().numpy())


def test_dropout2d_on_cuda_zeroes_whole_channels():
    x = cn.ones(4, 8, 3, 3, device="cuda", requires_grad=True)
    out = cnn.Dropout2d(0.5)(x)
    assert on_device(out)
    planes = out.detach().cpu().numpy().reshape(32, 9)
    assert set(np.unique(planes)) <= {0.0, 2.0} and (planes == planes[:, :1]).all()
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy().reshape(32, 9), planes)


# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype", [cn.float16, cn.int64, cn.int32, cn.uint8])
def test_conv_and_pool_dtypes_on_cuda_as_on_the_cpu(dtype):
    """float16 (computed in float32, rounded once) and integers (exact, wrapping as
    PyTorch's) give on the device what they give on the CPU, whose kernels the oracle suite
    checks against PyTorch; the dtypes PyTorch keeps."""
    rng = np.random.default_rng(4)
    x = cn.tensor(rng.integers(-3, 4, (2, 3, 7, 6))).to(dtype)
    w = cn.tensor(rng.integers(-2, 3, (4, 3, 3, 3))).to(dtype)
    if dtype == cn.uint8:
        x, w = x.abs(), w.abs()
    cases = [lambda a, k: F.conv2d(a, k, padding=1, stride=(1, 2)),
             lambda a, k: F.max_pool2d(a, 3, stride=2, padding=1),
             lambda a, k: F.avg_pool2d(a, 2, ceil_mode=True, count_include_pad=False)
             if a.dtype in (cn.float16, cn.int64) else F.max_pool2d(a, 2)]
    for case in cases:
        cpu, dev = case(x, w), case(x.cuda(), w.cuda())
        assert on_device(dev) and dev.dtype == cpu.dtype == x.dtype
        np.testing.assert_array_equal(dev.cpu().numpy(), cpu.numpy())


def test_corr2d_on_cuda():
    """The notebooks' corr2d on integer and float tensors, against scipy.signal."""
    import scipy.signal

    X, K = np.arange(9).reshape(3, 3), np.array([[0, 1], [2, 3]])
    out = cn.corr2d(cn.tensor(X).cuda(), cn.tensor(K).cuda())
    assert on_device(out) and out.dtype == cn.int64
    np.testing.assert_array_equal(out.cpu().numpy(), scipy.signal.correlate2d(X, K, "valid"))
    X, K = _r(5, 6), _r(3, 2)
    for mode, boundary in (("same", "symm"), ("full", "wrap")):
        out = cn.corr2d(cn.tensor(X).cuda(), cn.tensor(K).cuda(), mode=mode, boundary=boundary)
        np.testing.assert_allclose(out.cpu().numpy(),
                                   scipy.signal.correlate2d(X, K, mode, boundary), 1e-12)


def test_non_finite_values_stay_local_on_cuda_as_in_torch():
    """The device path runs no finiteness check (nothing read back): im2col + GEMM keeps a
    NaN and an inf in the outputs whose windows read them, as PyTorch's sums."""
    x, w = _r(1, 2, 9, 9), _r(3, 2, 3, 3)
    x[0, 0, 4, 4], x[0, 1, 0, 8] = np.nan, np.inf
    ours = F.conv2d(cn.tensor(x).cuda(), cn.tensor(w).cuda(), padding=1).cpu().numpy()
    theirs = tF.conv2d(torch.tensor(x), torch.tensor(w), padding=1).numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, equal_nan=True)


def test_avg_pool_divisors_cross_to_each_device_once():
    """The divisors of a window geometry are built on the host and copied to a device once,
    then kept for that device (`devices.table_like`)."""
    x = cn.tensor(_r(2, 3, 7, 7))
    before = len(devices._tables)
    first = F.avg_pool2d(x.cuda(), 3, padding=1, count_include_pad=False)
    second = F.avg_pool2d(x.cuda() * 2, 3, padding=1, count_include_pad=False)
    assert len(devices._tables) == before + 1
    F.avg_pool2d(x.cuda(1), 3, padding=1, count_include_pad=False)
    assert len(devices._tables) == before + 2              # one copy on cuda:1 too
    np.testing.assert_allclose(second.cpu().numpy(), 2 * first.cpu().numpy(), rtol=1e-12)


# --------------------------------------------------------------------------- the budget


def test_device_budget_follows_the_devices_free_memory(monkeypatch):
    """The device pass's chunks are sized from `plan.device_budget`: the setting, and at most
    half the device's free memory (`devices.memory`; the stand-in's is configurable). A
    budget of a few rows gives the same result as one chunk."""
    x = cn.tensor(_r(3, 2, 12, 10)).cuda()
    w = cn.tensor(_r(3, 2, 3, 3)).cuda()
    whole = F.conv2d(x, w, padding=1).cpu().numpy()
    seen = []
    chunks = conv_kernels.budget_chunks

    def watch(x_shape, weight_shape, window, dtype, budget):
        seen.append(budget)
        return chunks(x_shape, weight_shape, window, dtype, budget)

    monkeypatch.setattr(conv_kernels, "budget_chunks", watch)
    assert plan.device_budget(x._data) == plan.settings.device_memory_budget
    # the stand-in's free memory: 4000 bytes beyond what its live arrays hold now
    monkeypatch.setattr(devices, "STANDIN_MEMORY_BYTES", 4000 + _standin.bytes_in_use(0))
    assert devices.memory(0) == 4000 and plan.device_budget(x._data) == 2000
    small = F.conv2d(x, w, padding=1).cpu().numpy()
    assert seen and set(seen) == {2000}
    assert len(list(chunks(tuple(x.shape), tuple(w.shape), _window(x, w), np.float64,
                           2000))) > 3       # (the small budget did split the pass)
    np.testing.assert_allclose(small, whole, rtol=1e-12)
    with pytest.raises(ValueError, match="device_memory_budget"):
        plan.settings.device_memory_budget = 0


def _window(x, w):
    from corrnet.kernels.windows import make_window
    return make_window("conv2d", x.shape[2], x.shape[3], tuple(w.shape[2:]), (1, 1),
                       ((1, 1), (1, 1)), (1, 1))


# --------------------------------------------------------------------------- training


def _lenet():
    return cnn.Sequential(
        cnn.Conv2d(1, 6, kernel_size=5, padding=2), cnn.Sigmoid(),
        cnn.AvgPool2d(kernel_size=2, stride=2),
        cnn.Conv2d(6, 16, kernel_size=5), cnn.Sigmoid(),
        cnn.AvgPool2d(kernel_size=2, stride=2),
        cnn.Flatten(),
        cnn.Linear(16 * 5 * 5, 120), cnn.Sigmoid(),
        cnn.Linear(120, 84), cnn.Sigmoid(),
        cnn.Linear(84, 10))


def test_lenet_trains_on_cuda_as_on_the_cpu():
    """d2l's LeNet, three SGD steps on the device and on the CPU from the same start: the
    same parameters (float32 rounding), and nothing left the device on the way."""
    cn.manual_seed(0)
    cpu_net = _lenet()
    dev_net = _lenet()
    dev_net.load_state_dict(cpu_net.state_dict())
    dev_net.cuda()
    rng = np.random.default_rng(0)
    images = rng.random((3, 8, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, (3, 8))
    for net, device in ((cpu_net, "cpu"), (dev_net, "cuda")):
        optimizer = cn.optim.SGD(net.parameters(), lr=0.9)
        loss_fn = cnn.CrossEntropyLoss()
        for x, y in zip(images, labels, strict=True):
            optimizer.zero_grad()
            loss = loss_fn(net(cn.tensor(x).to(device)), cn.tensor(y).to(device))
            loss.backward()
            optimizer.step()
    for (name, theirs), ours in zip(cpu_net.named_parameters(), dev_net.parameters(),
                                    strict=True):
        assert on_device(ours) and ours.dtype == cn.float32
        np.testing.assert_allclose(ours.detach().cpu().numpy(), theirs.detach().numpy(),
                                   rtol=1e-4, atol=1e-5, err_msg=name)


# --------------------------------------------------------------------------- seed 000


def test_seed_000_runs_as_written_on_the_stand_in():
    """The first notebook with only its imports swapped: its ``.cuda()`` calls kept, and its
    printed tensors compared with the notebook's, ``device='cuda:0'`` included."""
    path = test_seeds._seed_file("000")
    text = path.read_text(encoding="utf-8")
    cells = test_seeds.parse_notebook(text)
    assert ".cuda()" in text and "device='cuda:0'" in text
    spec = test_seeds.SEED_SPECS["000"]
    namespace: dict = {"__name__": "seed_000_cuda"}
    cn.manual_seed(0)
    compared, devices_shown = 0, 0
    for cell in cells:
        source = _swap_imports_keep_cuda(cell.source)
        actual = test_seeds.run_cell(source, namespace, f"<seed 000 line {cell.lineno}>")
        expected = [o.text for o in cell.outputs]
        assert len(actual) == len(expected), (cell.source, actual)
        checks = spec.random.get(cell.key, [test_seeds.exact] * len(expected))
        for want, got, check in zip(expected, actual, checks, strict=True):
            assert check(want, got, {}) is None, f"{cell.source}\n{want}\n!=\n{got}"
            compared += 1
            devices_shown += "device='cuda:0'" in got
    assert compared >= spec.min_compared and devices_shown >= 1
    assert any(on_device(v) for v in namespace.values() if isinstance(v, cn.Tensor))


def _swap_imports_keep_cuda(source: str) -> str:
    for pattern, replacement in test_seeds._IMPORT_SWAPS:
        if pattern.pattern != re.escape(".cuda()") and pattern.pattern != r"\.cuda\(\)":
            source = pattern.sub(replacement, source)
    return source
