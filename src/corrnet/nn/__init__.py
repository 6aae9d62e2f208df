"""Layers and the Module system: ``from corrnet import nn``."""

from . import functional, init, utils
from .activation import (
    ELU,
    GELU,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSoftmax,
    Mish,
    PReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from .container import Sequential
from .conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from .dropout import Dropout, Dropout2d
from .flatten import Flatten
from .linear import Identity, Linear
from .loss import CrossEntropyLoss, HuberLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss
from .module import Module
from .normalization import (
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    LayerNorm,
    LocalResponseNorm,
)
from .parameter import Parameter
from .pixelshuffle import PixelShuffle, PixelUnshuffle
from .pooling import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
    MaxUnpool1d,
    MaxUnpool2d,
)
from .upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d
from .windows import (
    CircularPad1d,
    CircularPad2d,
    ConstantPad1d,
    ConstantPad2d,
    Fold,
    ReflectionPad1d,
    ReflectionPad2d,
    ReplicationPad1d,
    ReplicationPad2d,
    Unfold,
    ZeroPad1d,
    ZeroPad2d,
)

__all__ = ["functional", "init", "Module", "Parameter", "Conv2d", "MaxPool2d", "AvgPool2d",
           "Sequential"]
__all__ += ["Linear", "Identity", "Flatten", "ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
            "Dropout", "BatchNorm1d", "BatchNorm2d", "CrossEntropyLoss", "MSELoss", "NLLLoss"]
__all__ += ["Conv1d", "ConvTranspose1d", "ConvTranspose2d", "MaxPool1d", "AvgPool1d",
            "MaxUnpool1d", "MaxUnpool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
            "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "Unfold", "Fold", "ConstantPad1d",
            "ConstantPad2d", "ZeroPad1d", "ZeroPad2d", "ReflectionPad1d", "ReflectionPad2d",
            "ReplicationPad1d", "ReplicationPad2d", "CircularPad1d", "CircularPad2d"]

# lazy modules, hooks and containers (issue 12)
from . import parameter  # noqa: E402  (nn.parameter.UninitializedParameter, as PyTorch)
from .container import ModuleDict, ModuleList, ParameterDict, ParameterList  # noqa: E402
from .lazy import (  # noqa: E402
    LazyBatchNorm1d,
    LazyBatchNorm2d,
    LazyConv1d,
    LazyConv2d,
    LazyConvTranspose1d,
    LazyConvTranspose2d,
    LazyLinear,
)
from .parameter import UninitializedBuffer, UninitializedParameter  # noqa: E402

__all__ += ["parameter", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
            "LazyLinear", "LazyConv1d", "LazyConv2d", "LazyConvTranspose1d",
            "LazyConvTranspose2d", "LazyBatchNorm1d", "LazyBatchNorm2d",
            "UninitializedParameter", "UninitializedBuffer"]
__all__ += ["LeakyReLU", "ELU", "GELU", "SiLU", "Mish", "PReLU", "Hardswish", "Softplus",
            "Dropout2d", "LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d",
            "LocalResponseNorm", "PixelShuffle", "PixelUnshuffle", "Upsample",
            "UpsamplingNearest2d", "UpsamplingBilinear2d"]
__all__ += ["Hardtanh", "ReLU6", "L1Loss", "SmoothL1Loss", "HuberLoss"]


def __getattr__(name):
    # data-parallel training on MPI (issue 16): nn.parallel.DistributedDataParallel, imported
    # on first use (`corrnet.nn.parallel...` as `from corrnet.nn.parallel import ...`); mpi4py
    # itself only when a process group is started
    if name == "parallel":
        import importlib

        return importlib.import_module(f"{__name__}.parallel")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
