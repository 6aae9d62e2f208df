"""Module hooks: registration and the full backward hooks' machinery.

A full backward hook sees the gradients with respect to a module's inputs and outputs. As in
PyTorch, the module's input and output tensors are passed through an identity op whose graph
node carries a gradient hook: the output's node collects ``grad_output`` (and runs the
backward pre-hooks, which may replace it), the input's node calls the hooks with
``grad_input`` (which they may replace). Several tensors are packed into one flat array and
unpacked again, so that one node sees all their gradients at once.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict

import numpy as np

from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor, cat, zeros
from ..utils.hooks import RemovableHandle


def _register_hook(table: OrderedDict, hook, prepend: bool) -> RemovableHandle:
    if not callable(hook):
        raise TypeError(f"hook must be callable, got {type(hook).__name__}")
    handle = RemovableHandle(table)
    table[handle.id] = hook
    if prepend:
        table.move_to_end(handle.id, last=False)
    return handle


class BackwardHookFunction(Function):
    """The identity, as a graph node that module backward hooks attach to."""

    @staticmethod
    def forward(ctx, array):
        return array.view()

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output


class _Pack(Function):
    """Several tensors as one flat array (their values one after another): one graph node
    whose gradient holds all of theirs at once, for a module with several inputs or outputs
    (corrnet's nodes have one output each)."""

    @staticmethod
    def forward(ctx, *arrays):
        ctx.shapes = [a.shape for a in arrays]
        return np.concatenate([a.reshape(-1) for a in arrays])

    @staticmethod
    def backward(ctx, grad_output):
        ends = np.cumsum([math.prod(shape) for shape in ctx.shapes])
        pieces = np.split(grad_output, ends[:-1])
        return tuple(p.reshape(shape) for p, shape in zip(pieces, ctx.shapes, strict=True))


class _Unpack(Function):
    """One tensor back out of `_Pack`'s flat array: ``packed[start:stop]``, reshaped."""

    @staticmethod
    def forward(ctx, packed, start, stop, shape, dtype):
        ctx.geometry = (packed.shape, packed.dtype, start, stop)
        return packed[start:stop].reshape(shape).astype(dtype)

    @staticmethod
    def backward(ctx, grad_output):
        shape, dtype, start, stop = ctx.geometry
        grad = np.zeros(shape, dtype=dtype)
        grad[start:stop] = grad_output.reshape(-1)
        return grad, None, None, None, None


def _hooked(values: list, hook) -> list:
    """`values` (tensors that require grad) passed through one graph node whose incoming
    gradient goes to ``hook(grads: tuple) -> tuple or None`` (a returned tuple replaces the
    gradients). One tensor goes through the identity; several are packed and unpacked."""
    if len(values) == 1:
        result = BackwardHookFunction.apply(values[0])
        # it shares memory with its input: share the version counter too, so that an in-place
        # change of one is seen by the backward of ops that saved the other (as PyTorch's views)
        result._version = values[0]._version

        def one(grad):
            answer = hook((grad,))
            return None if answer is None else answer[0]

        result.grad_fn.add_grad_hook(one)
        return [result]
    packed = _Pack.apply(*values)
    shapes = [tuple(v.shape) for v in values]
    ends = np.cumsum([math.prod(shape) for shape in shapes]).tolist()
    starts = [0, *ends[:-1]]

    received = set()  # which of the unpacked tensors a gradient reached (None for the others)

    def many(grad):
        flat = grad.reshape(-1)
        grads = tuple(flat[a:b].reshape(shape) if k in received else None
                      for k, (a, b, shape) in enumerate(zip(starts, ends, shapes, strict=True)))
        received.clear()
        answer = hook(grads)
        if answer is None:
            return None
        flat_grads = [(zeros(shape, dtype=grad.dtype) if g is None else g.to(grad.dtype))
                      for g, shape in zip(answer, shapes, strict=True)]
        return cat([g.reshape(-1) for g in flat_grads])

    packed.grad_fn.add_grad_hook(many)
    unpacked = [_Unpack.apply(packed, a, b, shape, v._data.dtype)
                for a, b, shape, v in zip(starts, ends, shapes, values, strict=True)]
    for k, tensor in enumerate(unpacked):
        tensor.grad_fn.add_grad_hook(lambda grad, k=k: received.add(k))
    return unpacked


def _needing_grad(values: tuple) -> list:
    """The positions of the tensors in `values` that require grad (none without grad mode)."""
    if not is_grad_enabled():
        return []
    return [i for i, v in enumerate(values) if isinstance(v, Tensor) and v.requires_grad]


def _replace(values: tuple, positions: list, replacements: list) -> tuple:
    values = list(values)
    for position, replacement in zip(positions, replacements, strict=True):
        values[position] = replacement
    return tuple(values)


class _BackwardHook:
    """The state of one module call's full backward hooks (PyTorch's BackwardHook)."""

    def __init__(self, module, user_hooks: list, user_pre_hooks: list):
        self.module = module
        self.user_hooks, self.user_pre_hooks = user_hooks, user_pre_hooks
        self.n_inputs = 0
        self.input_positions = []
        self.grad_outputs = None

    def setup_input_hook(self, args: tuple) -> tuple:
        self.n_inputs = len(args)
        self.input_positions = _needing_grad(args)
        if not self.input_positions:
            return args
        hooked = _hooked([args[i] for i in self.input_positions], self._input_hook)
        return _replace(args, self.input_positions, hooked)

    def setup_output_hook(self, result):
        outputs = result if isinstance(result, tuple) else (result,)
        positions = _needing_grad(outputs)
        if not positions:
            return result
        n_outputs = len(outputs)

        def output_hook(grads):
            grad_outputs = _replace((None,) * n_outputs, positions, grads)
            for pre_hook in self.user_pre_hooks:
                replaced = pre_hook(self.module, grad_outputs)
                if replaced is None:
                    continue
                replaced = tuple(replaced) if isinstance(replaced, (tuple, list)) else (
                    replaced,)
                if len(replaced) != n_outputs:
                    raise RuntimeError("Backward pre hook returned an invalid number of "
                                       f"grad_output, got {len(replaced)}, but expected "
                                       f"{n_outputs}")
                grad_outputs = replaced
            self.grad_outputs = grad_outputs
            if not self.input_positions and self.user_hooks:  # no input needs grad:
                warnings.warn("Full backward hook is firing when gradients are computed with "
                              "respect to module outputs since no inputs require gradients. See "
                              "https://docs.pytorch.org/docs/main/generated/torch.nn.Module.html"
                              "#torch.nn.Module.register_full_backward_hook for more details.",
                              UserWarning, stacklevel=2)
                grad_inputs = (None,) * self.n_inputs
                for hook in self.user_hooks:
                    answer = hook(self.module, grad_inputs, grad_outputs)
                    if answer is not None and not (isinstance(answer, tuple)
                                                   and all(a is None for a in answer)):
                        raise RuntimeError("Backward hook for Modules where no input requires "
                                           "gradient should always return None or None for all "
                                           "gradients.")
                self.grad_outputs = None
            return tuple(grad_outputs[i] for i in positions)

        hooked = _hooked([outputs[i] for i in positions], output_hook)
        outputs = _replace(outputs, positions, hooked)
        return outputs if isinstance(result, tuple) else outputs[0]

    def _input_hook(self, grads):
        if self.grad_outputs is None:  # the gradient did not come through the output
            return None
        grad_inputs = _replace((None,) * self.n_inputs, self.input_positions, grads)
        for hook in self.user_hooks:
            answer = hook(self.module, grad_inputs, self.grad_outputs)
            if answer is None:
                continue
            answer = tuple(answer) if isinstance(answer, (tuple, list)) else (answer,)
            if len(answer) != len(grad_inputs):
                raise RuntimeError("Backward hook returned an invalid number of grad_input, "
                                   f"got {len(answer)}, but expected {len(grad_inputs)}")
            grad_inputs = answer
        self.grad_outputs = None
        return tuple(grad_inputs[i] for i in self.input_positions)
