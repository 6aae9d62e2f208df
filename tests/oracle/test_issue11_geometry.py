"""Issue 11, geometry: extreme arguments, output_padding with 1-wide kernels, empty shapes,
pad corners, the padding layers' arguments and float16 convolution — each against PyTorch.

The extreme-argument cases run in one subprocess per library, with a time limit (a hang fails
the tests instead of stalling the suite); inside it the kernels are warmed up first on a small
stride, so that each case's time measures its call and not numba's first compilation.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch as tt
import torch.nn.functional as tF

import corrnet as ct
from corrnet.kernels import jit, plan
from corrnet.nn import functional as cF

try:  # works both as a package module and with pytest's rootdir/prepend import mode
    from .helpers import assert_accepted, check_functional, check_module, random_array, to_numpy
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from helpers import assert_accepted, check_functional, check_module, random_array, to_numpy

SRC = str(Path(ct.__file__).resolve().parents[1])

# ------------------------------------------------------------------ extreme arguments
# (name, code run with `L` = corrnet or torch and `F` its functional module); each prints
# the forward values and the input gradients as JSON, compared between the two libraries
_XW = "x = L.tensor(X, requires_grad=True); w = L.tensor(W, requires_grad=True)\n"
EXTREME = {
    "conv2d_stride_10e4": _XW + "y = F.conv2d(x, w, stride=10**4)",
    "conv2d_stride_2e31": _XW + "y = F.conv2d(x, w, stride=2**31)",
    "conv1d_stride_2e31": ("x = L.tensor(X[0, :, 0], requires_grad=True); "
                           "w = L.tensor(W[:, :, 0], requires_grad=True)\n"
                           "y = F.conv1d(x, w, stride=2**31)"),
    "conv_transpose1d_stride_10e4": ("x = L.tensor(X[0, :, 0, :4], requires_grad=True); "
                                     "w = L.tensor(WT[:, :, 0], requires_grad=True)\n"
                                     "y = F.conv_transpose1d(x, w, stride=10**4)"),
    "conv_transpose2d_stride_10e3": ("x = L.tensor(X[:, :, :3, :3], requires_grad=True); "
                                     "w = L.tensor(WT, requires_grad=True)\n"
                                     "y = F.conv_transpose2d(x, w, stride=10**3)"),
    "conv2d_padding_stride_10e6": _XW + "y = F.conv2d(x, w, L.tensor(B), padding=10**6, "
                                        "stride=10**6)",
    "conv2d_dilation_2e40": ("x = L.tensor(X, requires_grad=True); "
                             "w = L.tensor(W[:, :, :2, :2], requires_grad=True)\n"
                             "y = F.conv2d(x, w, L.tensor(B), dilation=2**40, padding=2**39)"),
    "conv1d_dilation_10e6": ("x = L.tensor(X[0, :, 0], requires_grad=True); "
                             "w = L.tensor(W[:, :, 0, :2], requires_grad=True)\n"
                             "y = F.conv1d(x, w, dilation=10**6, padding=5 * 10**5)"),
}

_PROGRAM = """
import json, time
import numpy as np
{imports}
rng = np.random.default_rng(0)
# (float32, one channel: the compiled direct algorithm, whose loops ran over stride phases)
X = rng.standard_normal((1, 1, 8, 8)).astype(np.float32)
W = rng.standard_normal((1, 1, 3, 3)).astype(np.float32)
B = rng.standard_normal(1).astype(np.float32)
WT = W.transpose(1, 0, 2, 3).copy()        # (C_in, C_out, kh, kw) for the transposed ones
{warm}
for name, code in {cases!r}.items():
    start = time.perf_counter()
    exec(code)
    y.backward(L.ones(tuple(y.shape), dtype=y.dtype))
    seconds = time.perf_counter() - start
    print(json.dumps({{"name": name, "seconds": seconds, "shape": list(y.shape),
                       "y": np.asarray(y.detach().numpy(), float).ravel().tolist(),
                       "grad_x": np.asarray(x.grad.numpy(), float).ravel().tolist(),
                       "grad_w": np.asarray(w.grad.numpy(), float).ravel().tolist()}}),
          flush=True)
"""


@functools.cache
def _run_extreme(library: str) -> dict[str, dict]:
    """Every EXTREME case in one fresh process of `library` (each case's call timed on its
    own): {name: its results}. A case that hangs stops the process at the time limit; the
    cases printed before it keep their results, and the missing ones fail by name."""
    imports = ("import corrnet as L; import corrnet.nn.functional as F" if library == "corrnet"
               else "import torch as L; import torch.nn.functional as F")
    # a small stride first: numba compiles the kernels outside the timed calls
    warm = ("F.conv2d(L.tensor(X, requires_grad=True), L.tensor(W), stride=3).sum().backward()\n"
            "F.conv_transpose2d(L.tensor(X[:, :, :3, :3], requires_grad=True), L.tensor(WT),"
            " stride=3).sum().backward()")
    program = _PROGRAM.format(imports=imports, warm=warm, cases=EXTREME)
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                              timeout=30 + 15 * len(EXTREME), env=env)
        stdout, failure = done.stdout, (done.stderr[-2000:] if done.returncode else "")
    except subprocess.TimeoutExpired as exc:
        stdout, failure = exc.stdout or "", "timed out"
        stdout = stdout.decode() if isinstance(stdout, bytes) else stdout
    results = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            result = json.loads(line)
            results[result["name"]] = result
    results["failure"] = failure
    return results


@pytest.mark.parametrize("name", sorted(EXTREME))
def test_issue11_extreme_arguments_finish_fast_with_torchs_values(name):
    """Loops and buffers follow the data's size, not the arguments' values: each call (forward
    and backward) finishes in well under a second where it took 59 s, ran forever or failed
    deep in NumPy, and gives torch's values and gradients."""
    mine, torch_ = _run_extreme("corrnet"), _run_extreme("torch")
    assert name in mine, f"corrnet did not finish {name}: {mine['failure']}"
    assert name in torch_, f"torch did not finish {name}: {torch_['failure']}"
    mine, torch_ = mine[name], torch_[name]
    assert mine["seconds"] < 2.0, f"{name}: {mine['seconds']:.2f} s"
    assert mine["shape"] == torch_["shape"]
    for key in ("y", "grad_x", "grad_w"):
        np.testing.assert_allclose(mine[key], torch_[key], rtol=1e-5, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("call", [
    lambda x, w: cF.conv2d(x, w, padding=2**40),
    lambda x, w: cF.conv_transpose1d(x[:, :, 0], w[:, :, 0], stride=2**31 - 1),
    lambda x, w: cF.pad(x, (2**40, 0, 0, 0)),
    # (torch computes these: corrnet's kernels would pad to 10**6 and more, and refuse)
    lambda x, w: cF.conv_transpose2d(x, w, dilation=10**6, padding=10**6),
    lambda x, w: cF.unfold(x, 2, padding=10**5, dilation=10**5, stride=10**5),
    lambda x, w: cF.max_unpool1d(*cF.max_pool1d(x[0], 2, return_indices=True), 2,
                                 stride=10**12),
])
def test_issue11_huge_sizes_fail_clearly_before_allocating(call):
    """An output or padded input larger than the machine's memory is a RuntimeError that
    names the op and the shape, raised before anything is allocated (not a MemoryError or a
    ValueError from NumPy). Where only the padding is huge, torch computes some of these
    (unfold with dilation, the transposed convolution): corrnet refuses. (The pools with
    kernel_size 10**6 and unfold with padding=stride=10**6 are computed:
    test_issue11_geo_args.py.)"""
    x, w = ct.randn(1, 2, 8, 8, requires_grad=True), ct.randn(2, 2, 3, 3)
    with pytest.raises(RuntimeError, match="more than this machine's"):
        call(x, w)


# ------------------------------------------------------- output_padding, 1-wide kernels
@pytest.mark.parametrize("algorithm", [None, *plan.ALGORITHMS])
@pytest.mark.parametrize("compiled", [False, True] if jit.AVAILABLE else [False])
def test_issue11_conv_transpose_output_padding_with_1_wide_kernel(algorithm, compiled):
    """output_padding with a kernel of 1 along that axis (dilation > 1, or groups) was a
    reshape error in the 1x1 (pointwise) algorithm: its windows don't reach the last rows."""
    rng = np.random.default_rng(6)
    x1, w1 = random_array(rng, (1, 1, 4)), random_array(rng, (1, 1, 1))
    x2, w2 = random_array(rng, (2, 2, 3, 4)), random_array(rng, (2, 1, 1, 1))
    x3, w3 = random_array(rng, (1, 2, 3, 3)), random_array(rng, (2, 3, 1, 1))
    with jit.use_compiled(compiled), plan.forcing(algorithm):
        assert_accepted(check_functional("conv_transpose1d", x1, w1, output_padding=1,
                                         dilation=2))
        assert_accepted(check_functional("conv_transpose2d", x2, w2, groups=2,
                                         dilation=(1, 2), output_padding=(0, 1)))
        assert_accepted(check_functional("conv_transpose2d", x3, w3, stride=(1, 2),
                                         dilation=(3, 1), output_padding=(2, 1)))


# --------------------------------------------------------------------------- empty sizes
@pytest.mark.parametrize("algorithm", [None, *plan.ALGORITHMS])
@pytest.mark.parametrize("op, x_shape, w_shape, b_shape, kwargs", [
    ("conv2d", (1, 0, 5, 5), (2, 0, 3, 3), (2,), {}),                  # C_in = 0
    ("conv2d", (2, 0, 5, 5), (3, 0, 3, 3), (3,), {"padding": 1, "stride": 2}),
    ("conv2d", (0, 5, 5), (3, 0, 3, 3), None, {}),                     # unbatched, C_in = 0
    ("conv2d", (1, 0, 5, 5), (2, 0, 1, 1), None, {"groups": 2}),
    ("conv2d", (0, 1, 5, 5), (2, 1, 3, 3), (2,), {}),                  # empty batch
    ("conv2d", (0, 2, 5, 5), (4, 1, 3, 3), (4,), {"groups": 2, "padding": 1}),
    ("conv2d", (0, 1, 0, 5), (2, 1, 1, 1), None, {"padding": 1}),
    ("conv2d", (1, 1, 5, 5), (0, 1, 3, 3), None, {}),                  # refused: C_out = 0
    ("conv2d", (1, 1, 0, 5), (2, 1, 1, 1), None, {"padding": 1}),      # refused: empty image
    ("conv2d", (1, 1, 5, 5), (2, 1, 0, 3), None, {}),                  # refused: empty kernel
    ("conv1d", (1, 0, 5), (2, 0, 3), (2,), {}),
    ("conv1d", (1, 1, 0), (2, 1, 1), None, {"padding": 1}),            # refused
    ("conv_transpose2d", (0, 1, 5, 5), (1, 2, 3, 3), (2,), {"stride": 2, "output_padding": 1}),
    ("conv_transpose2d", (0, 1, 0, 5), (1, 2, 3, 3), None, {}),
    ("conv_transpose2d", (1, 0, 5, 5), (0, 2, 3, 3), None, {}),        # refused
    ("conv_transpose2d", (1, 1, 5, 5), (1, 0, 3, 3), None, {}),        # refused
    ("conv_transpose2d", (1, 1, 0, 5), (1, 2, 3, 3), None, {}),        # refused
    ("conv_transpose1d", (0, 2, 4), (2, 3, 3), None, {}),
])
def test_issue11_empty_channels_batches_and_kernels_as_torch(op, x_shape, w_shape, b_shape,
                                                            kwargs, algorithm):
    """Zero input channels (PyTorch returns an empty (N, 0, H_out, W_out) output), empty
    batches, and the empty weights, kernels and images PyTorch refuses: output shape, values,
    gradients, or the verdict, as PyTorch, on every algorithm."""
    rng = np.random.default_rng(2)
    x, w = random_array(rng, x_shape), random_array(rng, w_shape)
    b = None if b_shape is None else random_array(rng, b_shape)
    with plan.forcing(algorithm):
        check_functional(op, x, w, b, **kwargs)


# ----------------------------------------------------------------------------- padding
def test_issue11_pad_with_empty_pad_returns_a_copy():
    x = np.arange(6.0).reshape(1, 2, 3)
    assert_accepted(check_functional("pad", x, ()))
    t = ct.tensor(x)
    assert cF.pad(t, ()) is not t                      # a new tensor, as PyTorch's
    # non-constant modes refuse an empty pad, as PyTorch
    assert check_functional("pad", x, (), mode="reflect").rejected


@pytest.mark.parametrize("pad", [(-10, 12), (3, -11), (-9, 9), (-8, 8), (-8, 0), (-4, -4)])
def test_issue11_constant_pad_crops_at_most_the_dimension(pad):
    """PyTorch crops first (narrow), then pads: cropping more than the dimension is refused
    even where the padding would make the size up again."""
    x = np.arange(8.0).reshape(1, 1, 8)
    check_functional("pad", x, pad)


@pytest.mark.parametrize("name", ["ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d",
                                  "ReflectionPad1d", "ReflectionPad2d", "ReplicationPad1d",
                                  "ReplicationPad2d", "CircularPad1d", "CircularPad2d"])
@pytest.mark.parametrize("padding", [2.5, (1, 2), -1, "a", (1, 2, 3, 4), 1])
def test_issue11_padding_layers_take_their_argument_as_torch(name, padding):
    """ZeroPad2d(2.5) builds (as PyTorch's) and its call raises TypeError; a tuple of another
    length pads as F.pad would, or is refused as PyTorch refuses it."""
    args = (padding, 0.5) if name.startswith("Constant") else (padding,)
    x = np.arange(32.0).reshape(2, 4, 4)
    check_module(name, args, {}, [x])


# ----------------------------------------------------------------------------- float16
def test_issue11_float16_conv_is_computed_in_float32():
    """A float16 sum whose partial sums overflow float16 (300*300 > 65504) but whose result
    is finite: PyTorch gives 0, corrnet gave NaN."""
    x = np.array([[[[300.0, 300.0]]]], dtype=np.float16)
    w = np.array([[[[300.0, -300.0]]]], dtype=np.float16)
    res = assert_accepted(check_functional("conv2d", x, w))
    assert to_numpy(res.corrnet_outputs[0]).item() == 0.0
    rng = np.random.default_rng(3)
    for algorithm in [None, *plan.ALGORITHMS]:  # the CPU kernels, each forced in turn
        with plan.forcing(algorithm):
            x = (rng.standard_normal((2, 4, 6, 6)) * 40).astype(np.float16)
            w = (rng.standard_normal((3, 4, 3, 3)) * 40).astype(np.float16)
            got = cF.conv2d(ct.tensor(x), ct.tensor(w), padding=1).numpy()
            want = tF.conv2d(tt.tensor(x), tt.tensor(w), padding=1).numpy()
            assert not np.isnan(got).any()
            # (inf where the sum itself is beyond float16, as torch)
            np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                       rtol=2e-3, atol=1.0)


@pytest.mark.parametrize("op", ["unfold", "fold"])
@pytest.mark.parametrize("kwargs", [{"kernel_size": (2,)}, {"kernel_size": 2, "dilation": (1,)},
                                    {"kernel_size": 2, "padding": (1,)},
                                    {"kernel_size": 2, "stride": (1, 1, 1)}])
def test_issue11_unfold_and_fold_take_an_int_or_a_pair(op, kwargs):
    """PyTorch refuses a 1-tuple (or a triple) for unfold's and fold's window arguments,
    which corrnet took as the int."""
    rng = np.random.default_rng(4)
    if op == "unfold":
        res = check_functional("unfold", random_array(rng, (1, 2, 4, 4)), **kwargs)
    else:
        res = check_functional("fold", random_array(rng, (1, 8, 9)), (4, 4), **kwargs)
    assert res.rejected
