"""corrnet: convolutional networks on NumPy, with PyTorch's names and semantics.

    import corrnet as torch
    from corrnet import nn
    from corrnet.nn import functional as F
"""

# before NumPy loads its BLAS: OpenBLAS's idle threads sleep after 2**16 cycles, not 0.1 s
# of polling (kernels/threads.py)
from .kernels import threads as _kernels_threads

_kernels_threads.quiet_blas_threads()

import numbers as _numbers  # noqa: E402

import numpy as _np  # noqa: E402

from . import _args as _args  # noqa: E402
from . import backend, cuda  # noqa: E402
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .backend import (
    bool_ as bool,  # noqa: A001 - PyTorch's name
)
from .backend import (
    dtype,
    float16,
    float32,
    float64,
    get_default_dtype,
    int8,
    int16,
    int32,
    int64,
    set_default_dtype,
    uint8,
    uint16,
)
from .functional import convolve2d, corr2d
from .identify import KernelFit, identify_kernel
from .kernels.threads import get_num_threads, set_num_threads
from .tensor import (
    Generator,
    Size,
    Tensor,
    addbmm,
    addcdiv,
    addcmul,
    addmm,
    addmv,
    addr,
    arange,
    as_tensor,
    atleast_1d,
    atleast_2d,
    atleast_3d,
    baddbmm,
    block_diag,
    bmm,
    bucketize,
    cartesian_prod,
    cat,
    cdist,
    column_stack,
    combinations,
    concat,
    concatenate,
    corrcoef,
    cov,
    cross,
    cumulative_trapezoid,
    default_generator,
    device,
    dist,
    dot,
    dsplit,
    dstack,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    get_rng_state,
    histc,
    hsplit,
    hstack,
    initial_seed,
    inner,
    is_complex,
    is_floating_point,
    is_nonzero,
    is_tensor,
    kron,
    lerp,
    linspace,
    logcumsumexp,
    logspace,
    manual_seed,
    matmul,
    meshgrid,
    mm,
    mv,
    nanquantile,
    normal,
    ones,
    ones_like,
    outer,
    quantile,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    row_stack,
    searchsorted,
    seed,
    set_rng_state,
    stack,
    std_mean,
    take,
    take_along_dim,
    tensor,
    tensor_split,
    tensordot,
    trapezoid,
    tril_indices,
    triu_indices,
    vander,
    var_mean,
    vsplit,
    vstack,
    where,
    zeros,
    zeros_like,
)

# PyTorch's dtype aliases
float = float32  # noqa: A001
double = float64
half = float16
long = int64
int = int32  # noqa: A001
short = int16

__version__ = "0.1.0"


# the arithmetic that PyTorch also takes with a number first, ``torch.add(2, x)`` (and of two
# numbers, ``torch.add(2, 3)``: tensor(5)): computed as Python's ``2 + x``, the Tensor's
# reflected operator (a number does not promote the tensor's dtype)
_NUMBER_FIRST = {
    "add": lambda number, other, alpha=1: number + (other if alpha == 1 else other * alpha),
    "sub": lambda number, other, alpha=1: number - (other if alpha == 1 else other * alpha),
    "mul": lambda number, other: number * other,
    "div": lambda number, other, rounding_mode=None: (
        number / other if rounding_mode is None
        else tensor(number).div(other, rounding_mode=rounding_mode)),
    "pow": lambda number, exponent: number ** exponent,
    "remainder": lambda number, other: number % other,
    "floor_divide": lambda number, other: number // other,
}
# PyTorch's other names for them
_NUMBER_FIRST.update(multiply=_NUMBER_FIRST["mul"], subtract=_NUMBER_FIRST["sub"],
                     divide=_NUMBER_FIRST["div"], true_divide=_NUMBER_FIRST["div"])


def _function(method_name):
    def function(input, *args, **kwargs):
        if not isinstance(input, Tensor):
            return _not_a_tensor_first(method_name, input, args, kwargs)
        return getattr(input, method_name)(*args, **kwargs)

    function.__name__ = method_name
    function.__doc__ = f"``corrnet.{method_name}(t, ...)`` is ``t.{method_name}(...)``."
    return function


def _not_a_tensor_first(name, input, args, kwargs):
    """``corrnet.<name>(input, ...)`` where input is not a Tensor: the arithmetic of
    `_NUMBER_FIRST` with a real number, else PyTorch's TypeError."""
    if name in _NUMBER_FIRST and isinstance(input, (_numbers.Real, _np.generic)):
        other = args[0] if args else next(iter(kwargs.values()), None)
        if not isinstance(other, Tensor):
            if name == "pow":
                raise TypeError(f"pow(): a number's exponent must be a Tensor, got "
                                f"{type(other).__name__} (pow of two numbers is Python's **)")
            if name == "remainder":
                raise TypeError(f"remainder(): a number's divisor must be a Tensor, got "
                                f"{type(other).__name__} (the remainder of two numbers is "
                                "Python's %)")
            input = tensor(input)   # two numbers: a 0-d result
        return _NUMBER_FIRST[name](input, *args, **kwargs)
    raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                    f"{type(input).__name__}")


for _name in (
    "abs", "exp", "log", "sqrt", "sigmoid", "tanh", "relu", "clamp", "clip", "sum", "mean",
    "prod", "max", "min", "argmax", "argmin", "amax", "amin", "norm", "std", "var", "reshape",
    "flatten", "permute", "transpose", "t", "squeeze", "unsqueeze", "clone", "detach",
    "maximum", "minimum", "pow", "neg", "add", "sub", "mul", "div", "remainder",
    "floor_divide", "all", "any", "isnan",
    "isfinite", "numel", "allclose", "equal", "eq", "ne", "lt", "le", "gt", "ge", "softmax",
    "log_softmax",
    # issue 14
    "round", "floor", "ceil", "trunc",
    # elementwise functions (ops.UNARY)
    "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "log2", "log10", "log1p",
    "expm1", "exp2", "rsqrt", "reciprocal", "frac", "square", "deg2rad", "rad2deg",
    "arcsin", "arccos", "arctan",
    # issue 12
    "sort", "argsort", "topk", "masked_fill", "chunk", "split", "gather", "scatter",
    "scatter_add", "index_select", "roll", "flip", "tril", "triu", "cumsum", "logsumexp",
    "unbind",
    # PyTorch's other names, signs and infinities, logical and bitwise operations
    "multiply", "subtract", "divide", "true_divide", "negative", "absolute", "greater",
    "greater_equal", "less", "less_equal", "not_equal", "clamp_min", "clamp_max", "sign", "sgn",
    "isinf", "isposinf", "isneginf", "logical_and", "logical_or", "logical_xor", "logical_not",
    "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not",
    "isclose", "count_nonzero", "nan_to_num", "positive", "erf", "erfc", "atan2", "arctan2",
    "fmod", "hypot",
    # arrangements of the same elements
    "movedim", "moveaxis", "swapaxes", "swapdims", "narrow", "broadcast_to", "unflatten",
    "tile", "fliplr", "flipud", "masked_select", "diagonal", "diag", "trace", "rot90",
    "logaddexp", "logaddexp2", "copysign", "signbit", "logit", "xlogy", "float_power",
    "nansum", "nanmean", "aminmax",
    # searching, counting, running products, order statistics
    "nonzero", "argwhere", "cumprod", "cummax", "cummin", "median", "nanmedian", "kthvalue",
    "unique", "unique_consecutive", "bincount", "diff",
    # indexing and elementwise
    "index_add", "index_copy", "index_fill", "ravel", "sinc", "heaviside", "gcd", "lcm",
    "mode", "select",
):
    globals()[_name] = _function(_name)
del _name


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """``input.repeat_interleave(repeats, dim)``; with `input` alone, a 1-D int tensor of
    counts, the indices 0, 1, ... each repeated its count times (PyTorch's other overload),
    e.g. repeat_interleave(tensor([2, 1])) is [0, 0, 1]."""
    if not isinstance(input, Tensor):
        raise TypeError(f"repeat_interleave(): argument 'input' (position 1) must be Tensor, "
                        f"not {type(input).__name__}")
    if repeats is None:
        if input.dim() != 1 or input.dtype not in (int64, int32):
            raise RuntimeError(f"repeat_interleave only accept 1D vector as repeat (an int "
                               f"tensor; got {input.dtype}, shape {tuple(input.shape)})")
        return arange(input.numel()).repeat_interleave(input, output_size=output_size)
    return input.repeat_interleave(repeats, dim, output_size=output_size)


def result_type(tensor1, tensor2):
    """The dtype an elementwise op on the two (tensors or numbers) gives, by PyTorch's
    promotion: dimensioned tensors first, then 0-d ones, then numbers, e.g.
    result_type(tensor([1, 2]), 1.0) is float32."""
    for position, (name, value) in enumerate((("tensor1", tensor1), ("tensor2", tensor2))):
        if not isinstance(value, (Tensor, _numbers.Number, _np.generic)):
            raise TypeError(f"result_type(): argument '{name}' (position {position + 1}) must "
                            f"be Tensor or Number, not {type(value).__name__}")
    return backend.result_type(tensor1, tensor2)


def promote_types(type1, type2):
    """The smallest dtype both convert to (bool < integers < floating point), e.g.
    promote_types(int8, uint8) is int16."""
    return backend.promote_types(backend.as_dtype(_args.check_dtype("promote_types", type1)),
                                  backend.as_dtype(_args.check_dtype("promote_types", type2)))


def can_cast(from_, to):
    """Whether PyTorch's casting rules allow `from_` into `to`: never into a lower kind (a
    float into an integer, an integer into bool)."""
    return backend.can_cast(backend.as_dtype(_args.check_dtype("can_cast", from_)),
                             backend.as_dtype(_args.check_dtype("can_cast", to)))


def flip(input, dims):
    """``corrnet.flip(t, dims)``: `dims` a tuple or list of ints (PyTorch's function form
    refuses a bare int, where the method ``t.flip(0)`` takes one)."""
    if not isinstance(dims, (tuple, list)):
        raise TypeError(f"flip(): argument 'dims' (position 2) must be tuple of ints, not "
                        f"{type(dims).__name__}")
    return input.flip(dims)

from . import (  # noqa: E402  (they build on the names above)
    backends,
    filters,  # issue 14: named image filters
    io,  # issue 14: image files (imports Pillow only when used)
    models,  # noqa: E402
    nn,
    optim,
    utils,
)
from ._legacy import (  # noqa: E402  (issue 12: the legacy tensor types)
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    HalfTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
)
from ._printing import get_printoptions, printoptions, set_printoptions  # noqa: E402
from .kernels import heap as _kernels_heap  # noqa: E402
from .kernels import jit as _kernels_jit  # noqa: E402
from .serialization import load, save  # noqa: E402
from .summary import summary  # noqa: E402
from .tensor import einsum  # noqa: E402
from .train import fit  # noqa: E402

# large freed arrays stay in the heap for the next pass (kernels/heap.py)
_kernels_heap.keep_freed_memory()
# numba's one-time set-up (0.4 s) on a background thread, ahead of the first kernel call
_kernels_jit.warm_up_in_background()


def __getattr__(name):
    # corrnet.distributed (MPI process groups, issue 16) is imported on first use, as
    # ``torch.distributed`` is there after ``import torch``
    if name == "distributed":
        import importlib

        return importlib.import_module(f"{__name__}.distributed")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
