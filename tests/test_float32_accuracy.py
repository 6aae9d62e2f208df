"""Every convolution algorithm's float32 error stays within 2x of PyTorch's (issue 11, item 12).

On the layer suite's shapes (benchmarks/run.py, rows (a)-(h): LeNet's two layers, ResNet's
3x3 layers at 64-256 channels, a 1x1 layer, the 7x7 stride-2 stem, a depthwise 3x3 layer),
scaled down in batch and image size for test time while keeping the channel counts and
kernels, which drive the error, each algorithm is forced in turn (compiled and NumPy paths)
and each pass it computes — forward, grad_input, grad_weight — is compared with PyTorch in
float64 on the same float32 values. Its error must stay within `BOUND` times PyTorch's own
float32 error on the same inputs.

The error is RMS-relative: sqrt(mean((y - y64)^2) / mean(y64^2)). (The largest error,
max|y - y64| / max|y64|, is one sample of the worst element and varies from seed to seed by
more than the factor tested; the RMS is stable. Both are reported in the issue's note.)

Besides inputs drawn from a normal distribution, the 3x3 layers also run on ReLU-like inputs
(max(x, 0)), where sums do not cancel and Winograd's transforms do.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

import corrnet as ct
from corrnet.kernels import jit, plan
from corrnet.kernels.windows import make_window

BOUND = 2.0
F = ct.nn.functional

# label, n, C_in, C_out, size, kernel, stride, padding, groups: the suite's layers with
# their channels and kernels, smaller batches and images
LAYERS = [
    ("(a) LeNet conv1", 16, 1, 6, 28, 5, 1, 2, 1),
    ("(b) LeNet conv2", 16, 6, 16, 14, 5, 1, 0, 1),
    ("(c)", 2, 64, 64, 28, 3, 1, 1, 1),
    ("(d)", 2, 128, 128, 14, 3, 1, 1, 1),
    ("(e)", 2, 256, 256, 14, 3, 1, 1, 1),
    ("(f) 1x1", 2, 256, 64, 14, 1, 1, 0, 1),
    ("(g) ResNet stem", 1, 3, 64, 64, 7, 2, 3, 1),
    ("(h) depthwise", 2, 128, 128, 28, 3, 1, 1, 128),
]
CASES = [pytest.param(layer, inputs, compiled, id=f"{layer[0]}-{inputs}-"
                      f"{'numba' if compiled else 'numpy'}")
         for layer in LAYERS
         for inputs in (["normal", "relu"] if layer[5] == 3 and layer[8] == 1 else ["normal"])
         for compiled in ([True, False] if jit.AVAILABLE else [False])]


def rms_error(y: np.ndarray, y64: np.ndarray) -> float:
    """sqrt(mean((y - y64)^2) / mean(y64^2))."""
    difference = np.asarray(y, np.float64) - y64
    return float(np.sqrt(np.mean(difference**2) / np.mean(y64**2)))


def _passes(library, x, w, upstream, dtype, options):
    """(out, grad_x, grad_w) of conv2d in `library` (ct or torch) on x, w in `dtype`."""
    tx = library.tensor(x.astype(dtype), requires_grad=True)
    tw = library.tensor(w.astype(dtype), requires_grad=True)
    functional = F if library is ct else torch.nn.functional
    out = functional.conv2d(tx, tw, **options)
    out.backward(library.tensor(upstream.astype(dtype)))
    return [a.detach().numpy() for a in (out, tx.grad, tw.grad)]


@pytest.mark.parametrize(("layer", "inputs", "compiled"), CASES)
def test_issue11_float32_error_within_2x_of_torch_on_every_algorithm(layer, inputs, compiled):
    label, n, c_in, c_out, size, k, stride, padding, groups = layer
    rng = np.random.default_rng(zlib.crc32(f"{label} {inputs}".encode()))
    x = rng.standard_normal((n, c_in, size, size))
    if inputs == "relu":
        x = np.maximum(x, 0)
    x = x.astype(np.float32)
    w = (rng.standard_normal((c_out, c_in // groups, k, k))
         / np.sqrt(c_in // groups * k * k)).astype(np.float32)
    options = dict(stride=stride, padding=padding, groups=groups)
    out_size = (size + 2 * padding - k) // stride + 1
    upstream = rng.standard_normal((n, c_out, out_size, out_size)).astype(np.float32)

    truth = _passes(torch, x, w, upstream, np.float64, options)
    torch_errors = [rms_error(a, t) for a, t in zip(
        _passes(torch, x, w, upstream, np.float32, options), truth, strict=True)]
    window = make_window("conv2d", size, size, (k, k), (stride, stride),
                         ((padding, padding), (padding, padding)), (1, 1))
    failures, checked = [], 0
    with jit.use_compiled(compiled):
        for algorithm in plan.ALGORITHMS:
            with plan.forcing(algorithm):
                runs = [plan.choose(pass_name, x.shape, w.shape, window, groups, np.float32)
                        == algorithm for pass_name in plan.PASSES]
                if not any(runs):
                    continue
                got = _passes(ct, x, w, upstream, np.float32, options)
            for pass_name, ran, value, expected, torch_error in zip(
                    plan.PASSES, runs, got, truth, torch_errors, strict=True):
                if not ran:
                    continue
                checked += 1
                error = rms_error(value, expected)
                if error > BOUND * torch_error:
                    failures.append(f"{algorithm} {pass_name}: {error:.2e} = "
                                    f"{error / torch_error:.2f}x torch's {torch_error:.2e}")
    assert checked, "no algorithm ran"
    assert not failures, f"{label} ({inputs} inputs): " + "; ".join(failures)


def test_issue11_winograd_float32_error_within_2x_of_torch():
    """ResNet's 3x3 layer at 256 channels on Winograd: 9x PyTorch's float32 error with
    F(4x4, 3x3); within 2x now."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 256, 14, 14)).astype(np.float32)
    w = (rng.standard_normal((256, 256, 3, 3)) / 48).astype(np.float32)
    truth = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(),
                                       padding=1).numpy()
    torch_error = rms_error(torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                                       padding=1).numpy(), truth)
    with plan.forcing("winograd"):
        got = F.conv2d(ct.tensor(x), ct.tensor(w), padding=1).numpy()
    assert rms_error(got, truth) <= BOUND * torch_error
