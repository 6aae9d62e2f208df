"""The logistic sigmoid, forward and backward, as compiled float32 loops.

    sigmoid(x) = 1 / (1 + exp(-x)),    d sigmoid / dx = sigmoid(x) * (1 - sigmoid(x))

NumPy computes the forward pass in four whole-array passes, and its float32 `exp` runs one
number at a time on this kind of machine (about 2.8 ns each, 3.4 ms for LeNet's first
feature map of 1.2 million numbers). Here the exponential is written out in arithmetic that
LLVM turns into 8-wide AVX2 instructions, in two loops over a block of 1024 numbers that
stays in the L1 cache (about 1 ms for the same map on one core):

    exp(t) = 2**k * exp(r),    k = round(t / ln 2),    r = t - k*ln 2,    |r| <= ln(2) / 2

* k comes from a float-to-int conversion; ln 2 is split in two parts (LN2_HI has few
  significant bits, so k * LN2_HI is exact for |k| <= 128) and r loses nothing to rounding;
* exp(r) is its Taylor polynomial of degree 7, by Horner's rule: the first term left out,
  r**8 / 8! < 5e-9, is below float32's precision (6e-8);
* 2**k is built from its bits: the float32 exponent field holds k + 127, so 2**k is the
  int32 (k + 127) * 2**23 read as float32 (a second array, viewed as the first).

t = -x is clamped to [-88, 88] (2**127 is float32's largest power of two); below x = -88
the true sigmoid is under 3e-39 and the kernel returns 0; NaN stays NaN. The result is
within 3 units in the last place of the exact sigmoid, as PyTorch's own (the tests check
both against float64).

`sigmoid_forward` and `sigmoid_backward` run the compiled loops on float32 arrays of
`COMPILED_MIN_SIZE` numbers or more when numba is on; otherwise NumPy's passes (the
reference, and the only path for other dtypes). Large arrays are cut into pieces for
`threads.split_run`; the kernels release the GIL.
"""

from __future__ import annotations

import numpy as np

from .jit import enabled, jit
from .threads import split_run

# below this many numbers NumPy's passes cost no more than a call into a compiled kernel
COMPILED_MIN_SIZE = 4096
BLOCK = 1024

LOG2E = 1.4426950408889634
LN2_HI = 0.693145751953125          # ln 2 to 16 bits: k * LN2_HI is exact for |k| <= 128
LN2_LO = 1.428606765330187e-06      # ln 2 - LN2_HI
SATURATE = 88.0                     # |t| clamp: exp(88) < 2**127


def sigmoid_numpy(a: np.ndarray, out: np.ndarray) -> None:
    """out = 1 / (1 + exp(-a)) in four NumPy passes, in place in out."""
    np.negative(a, out=out)
    with np.errstate(over="ignore"):   # exp(-a) = inf for a << 0: 1 / inf = 0, the limit
        np.exp(out, out=out)
    out += 1
    np.reciprocal(out, out=out)


def sigmoid_grad_numpy(out: np.ndarray, grad: np.ndarray, grad_a: np.ndarray) -> None:
    """grad_a = grad * (1 - out) * out."""
    np.subtract(1, out, out=grad_a)
    grad_a *= out
    grad_a *= grad


@jit(reassociate=True)
def _sigmoid_kernel(x, out):
    """out = sigmoid(x) for float32 1-D arrays, block by block (see the module docstring)."""
    f32 = np.float32
    scale_bits = np.empty(BLOCK, dtype=np.int32)
    scale = scale_bits.view(np.float32)          # 2**k, written as its bits
    size = x.size
    for start in range(0, size, BLOCK):
        count = min(BLOCK, size - start)
        x_block, out_block = x[start:start + count], out[start:start + count]
        for i in range(count):
            t = -x_block[i]
            t = t if t > f32(-SATURATE) else f32(-SATURATE)
            t = t if t < f32(SATURATE) else f32(SATURATE)
            # k + 128 = floor(t / ln 2 + 128.5) >= 1: the conversion truncates a positive number
            k_biased = f32(np.int32(t * f32(LOG2E) + f32(128.5)))
            k = k_biased - f32(128.0)
            r = (t - k * f32(LN2_HI)) - k * f32(LN2_LO)
            # exp(r) = sum_{m <= 7} r**m / m!
            p = f32(1 / 5040)
            p = p * r + f32(1 / 720)
            p = p * r + f32(1 / 120)
            p = p * r + f32(1 / 24)
            p = p * r + f32(1 / 6)
            p = p * r + f32(0.5)
            p = p * r + f32(1.0)
            p = p * r + f32(1.0)
            out_block[i] = p
            # the exponent field of 2**k: k + 127 = k_biased - 1, shifted by 23 bits
            scale_bits[i] = np.int32((k_biased - f32(1.0)) * f32(8388608.0))
        for i in range(count):
            value = x_block[i]
            result = f32(1.0) / (f32(1.0) + out_block[i] * scale[i])
            result = result if value >= f32(-SATURATE) else f32(0.0)
            out_block[i] = result if value == value else value


@jit()
def _sigmoid_grad_kernel(out, grad, grad_a):
    """grad_a = grad * (1 - out) * out, float32 1-D arrays, in one pass."""
    for i in range(out.size):
        grad_a[i] = ((np.float32(1.0) - out[i]) * out[i]) * grad[i]


def _compiled(*arrays: np.ndarray) -> bool:
    return (enabled() and arrays[0].size >= COMPILED_MIN_SIZE
            and all(a.dtype == np.float32 and a.flags.c_contiguous for a in arrays))


def sigmoid_forward(a: np.ndarray) -> np.ndarray:
    """sigmoid(a), a new array of a's shape and dtype."""
    a = np.ascontiguousarray(a)
    out = np.empty(a.shape, dtype=a.dtype)
    if _compiled(a):
        split_run(_sigmoid_kernel, a.reshape(-1), out.reshape(-1))
    else:
        split_run(sigmoid_numpy, a, out)
    return out


def sigmoid_backward(out: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """d loss / d a from the forward result `out` and d loss / d out."""
    grad = np.ascontiguousarray(grad)
    grad_a = np.empty(out.shape, dtype=np.result_type(out, grad))
    if grad.shape == out.shape and _compiled(out, grad, grad_a):
        split_run(_sigmoid_grad_kernel, out.reshape(-1), grad.reshape(-1), grad_a.reshape(-1))
    else:
        split_run(sigmoid_grad_numpy, out, np.broadcast_to(grad, out.shape), grad_a)
    return grad_a
