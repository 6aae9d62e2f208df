"""Whether every number of an array is finite: the planner's check before a pass (plan.run).

Most of the planner's algorithms would spread a NaN or an inf beyond the outputs where
PyTorch has it (Winograd's transforms, the FFT, the stride-1 kernels' gap columns), so a pass
whose operands are not all finite runs on im2col + GEMM instead. The check reads every
operand once per pass: a LeNet training step (batch 256) reads 2.8 million numbers in 8
checks, which took 0.56 ms of the step's 10.5 on the calling thread with NumPy's max and min
(two passes over each array, one thread); ResNet-18's step (96x96, batch 64) 25-29 ms in 92.

The compiled check is one pass over blocks of `BLOCK` numbers (shared among corrnet's
threads, `threads.run_pieces`, from `PARALLEL_SIZE` numbers): for each block the sum of
``x * 0``, which is 0 for a finite x and NaN for an inf or a NaN (0 * inf is NaN), so the sum
is NaN exactly where the block holds one. The sum vectorizes (reassociate=True: only the
order of adding zeros changes) and cannot overflow. A block's flag is written as it ends;
the answer is whether no flag is set. Measured: LeNet's checks 0.41 ms a step (most of it
the calls' fixed cost), ResNet-18's 16 ms.

    all_finite(np.array([1.0, np.inf]))   # False

`all_finite_numpy` (NumPy's max and min: a NaN anywhere makes both NaN) is the reference, and
the path for arrays that are not C-contiguous floats of `COMPILED_MIN_SIZE` numbers or more,
and with the compiled kernels off.
"""

from __future__ import annotations

import numpy as np

from .jit import jit, runs_compiled
from .threads import run_pieces

BLOCK = 1 << 14              # numbers per block: 64 KiB of float32
COMPILED_MIN_SIZE = 1 << 14  # smaller arrays: NumPy's two reductions cost less than a call
# From this many numbers the blocks are shared among corrnet's threads; below it a hand-off
# costs more than it saves (LeNet's largest map, 1.2 million float32: 0.06 ms on the calling
# thread, 0.17 ms with a helper woken for half of it; NumPy's max and min: 0.12 ms)
PARALLEL_SIZE = 1 << 22


def all_finite(array: np.ndarray) -> bool:
    """Whether no number of `array` is NaN or infinite (integers and booleans always are)."""
    if array.dtype.kind not in "fc" or array.size == 0:
        return True
    if array.dtype.kind == "c":
        return all_finite(array.real) and all_finite(array.imag)
    if (array.size < COMPILED_MIN_SIZE or not array.flags.c_contiguous
            or not runs_compiled(array.dtype)):
        return all_finite_numpy(array)
    values = array.reshape(-1)
    blocks = -(-values.size // BLOCK)
    found = np.zeros(blocks, dtype=np.bool_)
    zero = values.dtype.type(0)
    if values.size < PARALLEL_SIZE:
        _nonfinite_blocks_kernel(values, zero, found, 0, blocks)
    else:
        run_pieces(_nonfinite_blocks_kernel, blocks, values.size, values, zero, found)
    return not found.any()


def all_finite_numpy(array: np.ndarray) -> bool:
    """`all_finite` by NumPy: the largest and the smallest number are both finite. A broadcast
    array (an output gradient of ones from ``out.sum().backward()``) is read once per distinct
    number: its zero-stride axes cut to length 1."""
    if array.dtype.kind not in "fc" or array.size == 0:
        return True
    if array.dtype.kind == "c":
        return all_finite_numpy(array.real) and all_finite_numpy(array.imag)
    if 0 in array.strides:
        array = array[tuple(slice(0, 1) if step == 0 else slice(None)
                            for step in array.strides)]
    return bool(np.isfinite(array.max())) and bool(np.isfinite(array.min()))


@jit(reassociate=True)
def _nonfinite_blocks_kernel(values, zero, found, first, end):
    """found[b] = whether block b of `values` (BLOCK numbers each; the last may be shorter)
    holds a NaN or an inf, for the blocks first ... end - 1; `zero` is 0 in values' dtype."""
    for block in range(first, end):
        # (a slice, not an index range: LLVM vectorizes the loop over a slice of its own)
        part = values[block * BLOCK:(block + 1) * BLOCK]
        total = zero
        for i in range(part.size):
            total += part[i] * zero         # 0 for a finite number, NaN for an inf or a NaN
        found[block] = total != total
