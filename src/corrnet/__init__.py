"""corrnet: convolutional networks on NumPy, with PyTorch's names and semantics.

    import corrnet as torch
    from corrnet import nn
    from corrnet.nn import functional as F
"""

# before NumPy loads its BLAS: OpenBLAS's idle threads sleep after 2**16 cycles, not 0.1 s
# of polling (kernels/threads.py)
from .kernels import threads as _kernels_threads

_kernels_threads.quiet_blas_threads()

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
    arange,
    as_tensor,
    cat,
    concat,
    concatenate,
    default_generator,
    device,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    get_rng_state,
    initial_seed,
    linspace,
    manual_seed,
    matmul,
    mm,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    seed,
    set_rng_state,
    stack,
    tensor,
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


def _function(method_name):
    def function(input, *args, **kwargs):
        return getattr(input, method_name)(*args, **kwargs)

    function.__name__ = method_name
    function.__doc__ = f"``corrnet.{method_name}(t, ...)`` is ``t.{method_name}(...)``."
    return function


for _name in (
    "abs", "exp", "log", "sqrt", "sigmoid", "tanh", "relu", "clamp", "clip", "sum", "mean",
    "prod", "max", "min", "argmax", "argmin", "amax", "amin", "norm", "std", "var", "reshape",
    "flatten", "permute", "transpose", "t", "squeeze", "unsqueeze", "clone", "detach",
    "maximum", "minimum", "pow", "neg", "add", "sub", "mul", "div", "all", "any", "isnan",
    "isfinite", "numel", "allclose", "equal", "eq", "ne", "lt", "le", "gt", "ge", "softmax",
    "log_softmax",
    # issue 14
    "round", "floor", "ceil", "trunc",
    # issue 12
    "sort", "argsort", "topk", "masked_fill", "chunk", "split", "gather", "scatter",
    "scatter_add", "index_select", "roll", "flip", "tril", "triu", "cumsum", "logsumexp",
    "unbind",
):
    globals()[_name] = _function(_name)
del _name


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
