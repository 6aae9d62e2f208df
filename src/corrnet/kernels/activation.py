"""The logistic sigmoid and ReLU, forward and backward, as compiled loops (sigmoid: float32).

    sigmoid(x) = 1 / (1 + exp(-x)),    d sigmoid / dx = sigmoid(x) * (1 - sigmoid(x))

NumPy computes the forward pass in four whole-array passes, and its float32 `exp` runs one
number at a time on this kind of machine (about 2.8 ns each, 3.4 ms for LeNet's first
feature map of 1.2 million numbers). Here the exponential is written out in arithmetic that
LLVM turns into vector instructions (`sigmoid_value`, a helper every sigmoid loop inlines:
0.36 ns a number on one core with AVX-512, 0.45 ms for the same map; the earlier two loops
over blocks of 1024, needed while 2**k was built in an array, took 0.57 ns):

    exp(t) = 2**k * exp(r),    k = round(t / ln 2),    r = t - k*ln 2,    |r| <= ln(2) / 2

* k comes from a float-to-int conversion; ln 2 is split in two parts (LN2_HI has few
  significant bits, so k * LN2_HI is exact for |k| <= 128) and r loses nothing to rounding;
* exp(r) is its Taylor polynomial of degree 7, by Horner's rule: the first term left out,
  r**8 / 8! < 5e-9, is below float32's precision (6e-8);
* 2**k is built from its bits: the float32 exponent field holds k + 127, so 2**k is the
  int32 (k + 127) * 2**23 read as float32 (`simd.float32_from_bits`, a register's bitcast);
* each multiply-add of the reduction and the polynomial rounds once (`simd.fma`), in every
  kernel that inlines the helper alike: fused and unfused epilogues give the same bits.

t = -x is clamped to [-88, 88] (2**127 is float32's largest power of two); below x = -88
the true sigmoid is under 3e-39 and the kernel returns 0; NaN stays NaN. The result is
within 3 units in the last place of the exact sigmoid, as PyTorch's own (the tests check
both against float64).

`sigmoid_forward` and `sigmoid_backward` run the compiled loops on float32 arrays of
`COMPILED_MIN_SIZE` numbers or more when numba is on; otherwise NumPy's passes (the
reference, and the only path for other dtypes). Large arrays are cut into pieces for
`threads.split_run`; the kernels release the GIL.

ReLU (`relu_forward`, `relu_backward`): the forward is NumPy's maximum, on pieces of the array
on corrnet's threads; the backward (0 where the output is <= 0, else the gradient: PyTorch's
threshold_backward) is one compiled pass instead of NumPy's compare and where (a
(64, 64, 24, 24) float32 map: 0.5 ms against 8.3).

A convolution's epilogue (issue 13, `corrnet.functional.fused_conv2d`): the same loops over
the planes (N*C, H*W) of a convolution's output, each plane shifted by its channel's bias,
sigmoid or ReLU written in place, and optionally the plane's k x k average pool while it is
in the cache (`bias_activation_forward`); the backward in one pass too: the pool's share of
the gradient times the activation's derivative from the saved output, and the bias's sums
(`bias_activation_backward`). The kernels are built per pooling size (`_planes_kernels`).
Where the windows tile the rows (W = k * W_pooled, LeNet's maps), the pool is two passes
(`average_pool_planes`): each window row's k rows added cell by cell, then the sums of k
neighbours in one flat loop that LLVM vectorizes; its backward spreads each window row's
shares along a row once and runs the derivative row by row. Measured, LeNet's first layer's
epilogue (1536 planes of 28x28, one thread): forward 0.94 ms window by window, 0.69 in two
passes (sigmoid alone 0.53); backward 0.63 with a whole plane of shares, 0.58 row by row.

Where the convolution's own kernel can run it (lanes.py, LeNet's layers), the epilogue runs
there, on each image as its outputs are done (`epilogue_planes`, the bias added by the
convolution): no pass of its own over the whole output, and the threads that computed an
image's outputs find them in their cache (`plan.forward_epilogue`). The helpers are `inline`
functions (jit.py), one piece of arithmetic for both kernels. Measured, LeNet inference,
batch 256, 2 threads: 2.97 ms against 3.53 with the epilogue's own passes (second layer
forward alone 0.86 ms against 1.01; the pool's sums cost about as much as the sigmoid: its
rows of 10 or 28 numbers are short loops).
"""

from __future__ import annotations

import functools

import numpy as np

from . import simd
from .jit import enabled, inline, jit, runs_compiled_on
from .threads import split_run

# below this many numbers NumPy's passes cost no more than a call into a compiled kernel
COMPILED_MIN_SIZE = 4096

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


# an epilogue's activation, as the compiled kernels take it (0: none)
SIGMOID, RELU = 1, 2
EPILOGUE_CODES = {"": 0, "sigmoid": SIGMOID, "relu": RELU}


@inline()
def sigmoid_value(value):
    """sigmoid(value) of a float32, in the arithmetic of the module docstring, for compiled
    loops (LLVM vectorizes a loop that calls it: 2**k is a bitcast, `simd.float32_from_bits`;
    each multiply-add rounds once, `simd.fma`, in every caller alike). NaN stays NaN; below
    -88, 0."""
    f32 = np.float32
    value = f32(value)      # (a float64 kernel compiles it, never runs it: `fuses`)
    t = -value
    t = t if t > f32(-SATURATE) else f32(-SATURATE)
    t = t if t < f32(SATURATE) else f32(SATURATE)
    # k + 128 = floor(t / ln 2 + 128.5) >= 1: the conversion truncates a positive number
    k_biased = f32(np.int32(simd.fma(t, f32(LOG2E), f32(128.5))))
    k = k_biased - f32(128.0)
    r = simd.fma(-k, f32(LN2_LO), simd.fma(-k, f32(LN2_HI), t))
    # exp(r) = sum_{m <= 7} r**m / m!
    p = f32(1 / 5040)
    p = simd.fma(p, r, f32(1 / 720))
    p = simd.fma(p, r, f32(1 / 120))
    p = simd.fma(p, r, f32(1 / 24))
    p = simd.fma(p, r, f32(1 / 6))
    p = simd.fma(p, r, f32(0.5))
    p = simd.fma(p, r, f32(1.0))
    p = simd.fma(p, r, f32(1.0))
    # 2**k: the exponent field k + 127 = k_biased - 1, shifted by 23 bits
    scale = simd.float32_from_bits(np.int32((k_biased - f32(1.0)) * f32(8388608.0)))
    result = f32(1.0) / simd.fma(p, scale, f32(1.0))
    result = result if value >= f32(-SATURATE) else f32(0.0)
    return result if value == value else value


@inline()
def average_pool_planes(planes, width, pool, pooled, across):
    """pooled[c] = the k x k average pool (k = pool), stride k, no padding, of plane c of
    planes (C, H*W), rows of `width`; pooled (C, H // k, W // k), across a scratch of
    C*(H // k)*W numbers. Where the windows tile the rows (W = k * W_p), two passes that LLVM
    vectorizes: the sums of each window row's k rows (across[(c, i)] = rows k*i ... k*i+k-1
    of plane c, added cell by cell), then, in one flat loop over all the planes' window rows,
    the sums of k neighbours; else window by window. Called with a constant k, the loops over
    it are unrolled. (Indices are unsigned: no negative-index checks.)"""
    channels, size = planes.shape
    height = size // width
    pooled_rows, pooled_cols = pooled.shape[1], pooled.shape[2]
    divisor = planes.dtype.type(pool * pool)
    # (a power of two's inverse is exact: its product, the quotient, is a multiplication)
    inverse = planes.dtype.type(1) / divisor
    exact = (pool & (pool - 1)) == 0
    cells = planes.reshape(channels * size)
    if width == pooled_cols * pool:
        row = np.uintp(width)
        for plane in range(channels):
            for i in range(pooled_rows):
                first = np.uintp((plane * height + i * pool) * width)
                into = np.uintp((plane * pooled_rows + i) * width)
                for s in range(row):
                    across[into + s] = cells[first + s]
                for a in range(1, pool):
                    below = first + np.uintp(a) * row
                    for s in range(row):
                        across[into + s] += cells[below + s]
        means = pooled.reshape(pooled.size)
        for m in range(means.size):
            total = across[m * pool]
            for c in range(1, pool):
                total += across[m * pool + c]
            means[m] = total * inverse if exact else total / divisor
        return
    for plane in range(channels):
        for i in range(pooled_rows):
            for j in range(pooled_cols):
                total = planes.dtype.type(0)
                for a in range(pool):
                    for c in range(pool):
                        total += cells[(plane * height + i * pool + a) * width + j * pool + c]
                pooled[plane, i, j] = total * inverse if exact else total / divisor


@inline()
def epilogue_planes(planes, activation, width, pool, pooled, across):
    """A convolution's epilogue on planes (C, H*W) that hold the bias already, in place:
    sigmoid (activation SIGMOID, float32) or ReLU (RELU; 0: none), then with pool = k > 0
    `average_pool_planes` into pooled (C, H // k, W // k); across: its scratch. For the
    convolution kernels that run it on each image as they finish it (lanes.py)."""
    values = planes.reshape(planes.size)
    if activation == SIGMOID:
        for i in range(values.size):
            values[i] = sigmoid_value(values[i])
    elif activation == RELU:
        zero = values.dtype.type(0)
        for i in range(values.size):
            value = values[i]
            values[i] = zero if value < zero else value     # (NaN stays NaN)
    if pool == 2:       # (LeNet's: the loops over k unrolled)
        average_pool_planes(planes, width, 2, pooled, across)
    elif pool > 0:
        average_pool_planes(planes, width, pool, pooled, across)


@jit()
def _sigmoid_kernel(a, out):
    """out = sigmoid(a), float32 1-D arrays (`sigmoid_value`)."""
    for i in range(a.size):
        out[i] = sigmoid_value(a[i])


@functools.cache
def _planes_kernels(pool: int):
    """The forward kernels over planes for one pooling size, pool = k (0: no pooling), a
    constant to numba (as pool.py's kernels: its loops unrolled), and their backward:
    (sigmoid, relu, backward)."""

    @jit()
    def sigmoid(z, shift, width, pooled):
        """z[p] = sigmoid(z[p] + shift[p]), in place, for float32 planes z (P, L) (see the
        module docstring); with k = pool > 0, each plane, an image of L / width rows of
        `width`, is also average-pooled into pooled (P, H // k, W // k) while it is in the
        cache."""
        planes, size = z.shape
        across = np.empty(size // pool if pool > 0 else 0, dtype=z.dtype)  # the pool's
        for plane in range(planes):
            b = shift[plane]
            values = z[plane]
            for i in range(size):
                values[i] = sigmoid_value(values[i] + b)
            if pool > 0:
                average_pool_planes(z[plane:plane + 1], width, pool, pooled[plane:plane + 1],
                                    across)

    @jit()
    def relu(z, shift, width, pooled):
        """z[p] = max(z[p] + shift[p], 0), in place, for planes z (P, L) (a NaN stays NaN, as
        np.maximum's), and with pool = k > 0 the planes' average pools, as
        `sigmoid`."""
        planes, size = z.shape
        zero = z.dtype.type(0)
        across = np.empty(size // pool if pool > 0 else 0, dtype=z.dtype)  # the pool's
        for plane in range(planes):
            b = shift[plane]
            values = z[plane]
            for i in range(size):
                value = values[i] + b
                values[i] = zero if value < zero else value
            if pool > 0:
                average_pool_planes(z[plane:plane + 1], width, pool, pooled[plane:plane + 1],
                                    across)

    @jit(reassociate=True)
    def backward(relu, out, grad, grad_a, sums):
        """The backward of `sigmoid` (relu False) or `relu` (relu True) over planes out,
        grad_a (P, H, W): grad_a = d loss / d (x + shift), from the forward result out and
        d loss / d out = grad (P, H, W); with k = pool > 0, grad is d loss / d pooled
        (P, H // k, W // k) and d loss / d out its share, grad / (k*k), in each window (0 in
        the rows and columns no window covers). sums[p] = the sum of grad_a[p], in float64
        (the shift's gradient, summed per plane)."""
        planes, height, width = out.shape
        size = height * width
        one, zero = out.dtype.type(1), out.dtype.type(0)
        # d loss / d out along one row (pooled: its window row's shares; 0 in the columns no
        # window covers), and over the whole plane: the derivative's loop then runs along the
        # plane, with one sum (rows of 10, LeNet's second layer: a sum per row cost more than
        # the row)
        wide = np.zeros(width if pool > 0 else 0, dtype=out.dtype)
        shares = np.empty(size if pool > 0 else 0, dtype=out.dtype)
        for plane in range(planes):
            out_plane = out[plane].reshape(size)
            grad_a_plane = grad_a[plane].reshape(size)
            total = 0.0
            if pool == 0:
                shares = grad[plane].reshape(size)      # d loss / d out as it is
            else:
                grad_pooled = grad[plane]
                pooled_rows, pooled_cols = grad_pooled.shape
                for r in range(height):
                    if r % pool == 0:
                        # a new row of windows: its shares spread along the row (k-strided
                        # stores), or zeros below the last window row
                        i = r // pool
                        for j in range(pooled_cols):
                            value = zero
                            if i < pooled_rows:
                                value = grad_pooled[i, j] / out.dtype.type(pool * pool)
                            for c in range(pool):
                                wide[j * pool + c] = value
                    row_shares = shares[r * width:]
                    for s in range(width):
                        row_shares[s] = wide[s]
            if relu:
                for i in range(size):            # PyTorch's threshold_backward
                    g = zero if out_plane[i] <= zero else shares[i]
                    grad_a_plane[i] = g
                    total += g
            else:
                for i in range(size):
                    g = ((one - out_plane[i]) * out_plane[i]) * shares[i]
                    grad_a_plane[i] = g
                    total += g
            sums[plane] = total

    return sigmoid, relu, backward


@jit()
def _sigmoid_grad_kernel(out, grad, grad_a):
    """grad_a = grad * (1 - out) * out, float32 1-D arrays, in one pass."""
    for i in range(out.size):
        grad_a[i] = ((np.float32(1.0) - out[i]) * out[i]) * grad[i]


def _compiled(*arrays: np.ndarray) -> bool:
    return (enabled() and arrays[0].size >= COMPILED_MIN_SIZE
            and all(a.dtype == np.float32 and a.flags.c_contiguous for a in arrays))


def sigmoid_forward(a: np.ndarray) -> np.ndarray:
    """sigmoid(a), a new array of a's shape and dtype (on a's device: the NumPy passes
    through the array's own namespace)."""
    if not isinstance(a, np.ndarray):
        out = np.empty_like(a)
        sigmoid_numpy(a, out)
        return out
    a = np.ascontiguousarray(a)
    out = np.empty(a.shape, dtype=a.dtype)
    if _compiled(a):
        split_run(_sigmoid_kernel, a.reshape(-1), out.reshape(-1))
    else:
        split_run(sigmoid_numpy, a, out)
    return out


def sigmoid_backward(out: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """d loss / d a from the forward result `out` and d loss / d out."""
    if not isinstance(out, np.ndarray):  # on a device: NumPy's passes, dispatched
        grad_a = np.empty(out.shape, dtype=np.result_type(out.dtype, grad.dtype), like=out)
        sigmoid_grad_numpy(out, np.broadcast_to(grad, out.shape), grad_a)
        return grad_a
    grad = np.ascontiguousarray(grad)
    grad_a = np.empty(out.shape, dtype=np.result_type(out, grad))
    if grad.shape == out.shape and _compiled(out, grad, grad_a):
        split_run(_sigmoid_grad_kernel, out.reshape(-1), grad.reshape(-1), grad_a.reshape(-1))
    else:
        split_run(sigmoid_grad_numpy, out, np.broadcast_to(grad, out.shape), grad_a)
    return grad_a


# ---------------------------------------------------------------------------------------------
# ReLU: max(a, 0) on pieces of the array, and its backward in one compiled pass
# ---------------------------------------------------------------------------------------------

def relu_forward(a):
    """max(a, 0) (NaN stays NaN), as `np.maximum(a, 0)`; a float array's pieces on
    corrnet's threads (`threads.split_run`)."""
    if not (isinstance(a, np.ndarray) and a.ndim and a.flags.c_contiguous
            and a.dtype in (np.float32, np.float64)):
        return np.maximum(a, 0)
    out = np.empty_like(a)
    split_run(lambda piece, out_piece: np.maximum(piece, 0, out=out_piece), a, out)
    return out


def relu_grad_numpy(out, grad):
    """PyTorch's threshold_backward: 0 where out <= 0, else the gradient as it is (a NaN
    output passes its gradient on; an inf gradient at out = 0 gives 0, not NaN). On the
    gradient's device (the zero made like a device array)."""
    on_device = hasattr(grad, "__array_function__") and not isinstance(grad, np.ndarray)
    return np.where(out <= 0, np.zeros((), dtype=grad.dtype, like=grad if on_device else None),
                    grad)


@jit()
def _relu_grad_kernel(out, grad, grad_a):
    """grad_a = 0 where out <= 0, else grad: 1-D arrays of one float dtype, in one pass."""
    zero = grad_a.dtype.type(0)
    for i in range(out.size):
        grad_a[i] = zero if out[i] <= 0 else grad[i]


def relu_backward(out, grad):
    """d loss / d a from ReLU's output and d loss / d out (`relu_grad_numpy`'s values): one
    compiled pass on float arrays of one dtype and shape, in pieces on corrnet's threads;
    NumPy's where elsewhere."""
    if not (runs_compiled_on(out, grad) and grad.shape == out.shape
            and out.size >= COMPILED_MIN_SIZE):
        return relu_grad_numpy(out, grad)
    grad_a = np.empty_like(grad)
    split_run(_relu_grad_kernel, out.reshape(-1), grad.reshape(-1), grad_a.reshape(-1))
    return grad_a


# ---------------------------------------------------------------------------------------------
# a convolution's epilogue: bias + activation (+ average pooling) in one pass over its output
# ---------------------------------------------------------------------------------------------

EPILOGUE_ACTIVATIONS = ("sigmoid", "relu")


def epilogue_compiled(dtype, activation: str) -> bool:
    """Whether `bias_activation_forward` / `_backward` run compiled for this dtype: float32
    (the sigmoid's polynomial is float32's), or float64 for ReLU."""
    return enabled() and (np.dtype(dtype) == np.float32
                          or activation == "relu" and np.dtype(dtype) == np.float64)


def fuses(dtype, activation: str) -> bool:
    """Whether `corrnet.functional.fused_conv2d` fuses (else it calls the three ops): where
    the epilogue runs compiled. (Its NumPy passes are no faster than the separate ops'.)"""
    return epilogue_compiled(dtype, activation)


def _pooled_shape(shape: tuple, pool: int) -> tuple:
    n, c, height, width = shape
    return (n, c, height // pool, width // pool)


def average_pool_numpy(z: np.ndarray, pool: int) -> np.ndarray:
    """The k x k average pool (k = pool), stride k, no padding, of z (N, C, H, W)."""
    n, c, rows, cols = _pooled_shape(z.shape, pool)
    windows = z[:, :, :rows * pool, :cols * pool].reshape(n, c, rows, pool, cols, pool)
    return windows.sum(axis=(3, 5)) / z.dtype.type(pool * pool)


def average_pool_grad_numpy(grad: np.ndarray, shape: tuple, pool: int) -> np.ndarray:
    """The adjoint of `average_pool_numpy`: grad (N, C, H // k, W // k) -> (N, C, H, W), each
    window's cells grad / (k*k), zero in the rows and columns no window covers."""
    grad_out = np.zeros(shape, grad.dtype)
    _, _, rows, cols = grad.shape
    share = grad / grad.dtype.type(pool * pool)
    grad_out[:, :, :rows * pool, :cols * pool] = np.repeat(np.repeat(share, pool, axis=2),
                                                           pool, axis=3)
    return grad_out


def bias_activation_forward(z: np.ndarray, bias, activation: str, pool: int = 0):
    """activation(z + bias[c]) written over z, a C-contiguous (N, C, H, W) convolution output
    (bias (C,) or None), and with pool = k > 0 its k x k average pool, stride k, no padding:
    returns (z, pooled or None). One pass over z (`_planes_kernels`,
    `_planes_kernels`) where `epilogue_compiled`; else NumPy's passes."""
    n, c, height, width = z.shape
    if not epilogue_compiled(z.dtype, activation):
        if bias is not None:
            z += bias.reshape(1, c, 1, 1)
        if activation == "sigmoid":
            sigmoid_numpy(z, z)
        else:
            np.maximum(z, 0, out=z)
        return z, average_pool_numpy(z, pool) if pool else None
    # (P, H*W) planes, P = N*C, each with its channel's bias
    shift = np.zeros(n * c, z.dtype) if bias is None else np.tile(bias.astype(z.dtype), n)
    planes = z.reshape(n * c, height * width)
    pooled = np.empty(_pooled_shape(z.shape, pool), z.dtype) if pool else None
    sigmoid, relu, _ = _planes_kernels(pool)
    kernel = sigmoid if activation == "sigmoid" else relu

    def run(z_part, shift_part, pooled_part=None):
        kernel(z_part, shift_part, width,
               np.empty((1, 0, 0), z.dtype) if pooled_part is None else pooled_part)
    if pool:
        split_run(run, planes, shift, pooled.reshape(n * c, *pooled.shape[2:]))
    else:
        split_run(run, planes, shift)
    return z, pooled


def bias_activation_backward(out: np.ndarray, grad: np.ndarray, activation: str,
                             pool: int = 0):
    """The gradients of `bias_activation_forward`: (d loss / d z, d loss / d bias (C,)) from
    its result out (N, C, H, W) and grad, d loss / d out (N, C, H, W), or with pool = k > 0
    d loss / d pooled (N, C, H // k, W // k). One pass where `epilogue_compiled`
    (`_planes_kernels`, the bias's sums per plane in float64)."""
    n, c, height, width = out.shape
    grad = np.ascontiguousarray(grad, dtype=out.dtype)
    if not epilogue_compiled(out.dtype, activation):
        grad_out = average_pool_grad_numpy(grad, out.shape, pool) if pool else grad
        if activation == "sigmoid":
            grad_z = np.empty(out.shape, out.dtype)
            sigmoid_grad_numpy(out, grad_out, grad_z)
        else:
            grad_z = np.where(out <= 0, out.dtype.type(0), grad_out)
        return grad_z, grad_z.sum(axis=(0, 2, 3))
    grad_z = np.empty(out.shape, out.dtype)
    sums = np.empty(n * c, np.float64)
    kernel = _planes_kernels(pool)[2]
    split_run(lambda out_part, grad_part, grad_z_part, sums_part: kernel(
        activation == "relu", out_part, grad_part, grad_z_part, sums_part),
        out.reshape(n * c, height, width), grad.reshape(n * c, *grad.shape[2:]),
        grad_z.reshape(n * c, height, width), sums)
    return grad_z, sums.reshape(n, c).sum(axis=0).astype(out.dtype)
