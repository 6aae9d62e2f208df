"""Fusion in `nn.Sequential`: a Conv2d followed by a Sigmoid or a ReLU, and optionally by an
AvgPool2d whose windows tile the map (kernel = stride, no padding), runs as one op,
`corrnet.functional.fused_conv2d`: the bias, the activation and the pool in one pass over
the convolution's output, forward and backward (LeNet's Conv-Sigmoid-AvgPool blocks; the
Conv-ReLU of VGG-like networks).

The values and gradients are those of the modules called one by one (the tests compare both
with PyTorch). What differs is only what no one can see without a hook: the intermediate
feature maps are never Tensors, and the fused op is one node of the graph, named as the last
module's op (``AvgPool2DBackward0``). So a run is fused only where nothing could see the
difference: each of its modules is of exactly its class (a subclass may override forward),
has no hook of any kind nor a `forward` set on the instance, and the conv pads with
zeros. The fused kernels run compiled (`kernels.activation.fuses`); elsewhere
`fused_conv2d` calls the three ops.

Why fusing needs no measured threshold: it leaves out passes over the feature map (the
bias's, the activation's read and write of a new array, the pool's read; backward the pool's
write and the activation's read of a full-size gradient, the bias's sum) and computes the
rest in one pass per plane while the plane is in the cache: less memory traffic and the same
arithmetic, on any machine. Measured (one thread, CPU time, fused / unfused): LeNet's layers
1.16x and 1.11x forward+backward, 1.03x forward; Conv-ReLU layers 1.09-1.24x
forward+backward; a whole LeNet training step 1.04x (the convolutions dominate it).
"""

from __future__ import annotations

from .. import functional as F
from ..kernels import jit
from .activation import ReLU, Sigmoid
from .conv import Conv2d
from .pooling import AvgPool2d

#: False: no fusion (for measuring what it gains, and for tests of the unfused path)
ENABLED = True

_HOOK_TABLES = ("_forward_pre_hooks", "_forward_hooks", "_backward_hooks",
                "_backward_pre_hooks")


def _hookless(module) -> bool:
    """No hook of any kind, and no `forward` of its own (as `corrnet.summary` sets, to
    watch each module's output)."""
    attributes = module.__dict__
    return "forward" not in attributes and not any(attributes.get(name)
                                                   for name in _HOOK_TABLES)


def _tiling_pool(module) -> int:
    """k for an AvgPool2d of k x k windows, stride k, no padding, floor mode and the plain
    divisor; else 0."""
    if type(module) is not AvgPool2d or not _hookless(module):
        return 0
    kernel, stride = module.kernel_size, module.stride
    kernel = kernel if isinstance(kernel, tuple | list) else (kernel, kernel)
    stride = stride if isinstance(stride, tuple | list) else (stride, stride)
    padding = module.padding if isinstance(module.padding, tuple | list) else (module.padding,)
    if (len(kernel) != 2 or tuple(kernel) != tuple(stride) or kernel[0] != kernel[1]
            or not isinstance(kernel[0], int) or isinstance(kernel[0], bool) or kernel[0] < 1
            or any(p != 0 for p in padding) or module.ceil_mode
            or module.divisor_override is not None):
        return 0
    return kernel[0]


def fusable_run(modules: list, start: int) -> tuple[int, str, int]:
    """(how many modules, activation, pool k) of the run at `start` that `fused_conv2d`
    computes as one op: 2 (conv, activation) or 3 (with the pool); (0, "", 0) if none."""
    if not (ENABLED and jit.enabled()) or start + 1 >= len(modules):
        return 0, "", 0
    conv, act = modules[start], modules[start + 1]
    if type(conv) is not Conv2d or conv.padding_mode != "zeros" or not _hookless(conv):
        return 0, "", 0
    if type(act) is Sigmoid:
        activation = "sigmoid"
    elif type(act) is ReLU:
        activation = "relu"
    else:
        return 0, "", 0
    if not _hookless(act):
        return 0, "", 0
    pool = _tiling_pool(modules[start + 2]) if start + 2 < len(modules) else 0
    return (3 if pool else 2), activation, pool


def run_fused(conv, input, activation: str, pool: int):
    """The fused run's output, from the conv module's parameters and options."""
    return F.fused_conv2d(input, conv.weight, conv.bias, conv.stride, conv.padding,
                          conv.dilation, conv.groups, activation, pool)


def forward_sequence(modules: list, input):
    """``Sequential.forward``: the modules one after another, the fusable runs fused."""
    position = 0
    while position < len(modules):
        count, activation, pool = fusable_run(modules, position)
        if count:
            input = run_fused(modules[position], input, activation, pool)
            position += count
        else:
            input = modules[position](input)
            position += 1
    return input
