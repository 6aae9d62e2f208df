"""Module hooks: registration and the full backward hooks' machinery.

A full backward hook sees the gradients with respect to a module's inputs and outputs. As in
PyTorch, the module's input and output tensors are passed through an identity op whose graph
node carries a gradient hook: the output's node collects ``grad_output`` (and runs the backward
pre-hooks, which may replace it), the input's node calls the hooks with ``grad_input`` (which
they may replace).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict

from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor
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


def _hooked_identity(value: Tensor, hook) -> Tensor:
    result = BackwardHookFunction.apply(value)
    # it shares memory with `value`: share its version counter too, so that an in-place change
    # of one is seen by the backward of ops that saved the other (as PyTorch's views)
    result._version = value._version
    result.grad_fn.add_grad_hook(hook)
    return result


def _one_needing_grad(values: tuple, what: str, module) -> int | None:
    """The position of the one tensor in `values` that requires grad (None if there is none).
    More than one is not supported: corrnet's graph nodes have one output each."""
    positions = [i for i, v in enumerate(values) if isinstance(v, Tensor) and v.requires_grad]
    if not positions or not is_grad_enabled():
        return None
    if len(positions) > 1:
        raise NotImplementedError(
            f"full backward hooks on {type(module).__name__}: {len(positions)} {what} tensors "
            "require grad; corrnet supports modules with one such input and one such output"
        )
    return positions[0]


class _BackwardHook:
    """The state of one module call's full backward hooks (PyTorch's BackwardHook)."""

    def __init__(self, module, user_hooks: list, user_pre_hooks: list):
        self.module = module
        self.user_hooks, self.user_pre_hooks = user_hooks, user_pre_hooks
        self.n_inputs = 0
        self.input_position = None
        self.grad_outputs = None

    def setup_input_hook(self, args: tuple) -> tuple:
        self.n_inputs = len(args)
        position = _one_needing_grad(args, "input", self.module)
        self.input_position = position
        if position is None:
            return args
        hooked = _hooked_identity(args[position], self._input_hook)
        return args[:position] + (hooked,) + args[position + 1:]

    def setup_output_hook(self, result):
        outputs = result if isinstance(result, tuple) else (result,)
        position = _one_needing_grad(outputs, "output", self.module)
        if position is None:
            return result
        n_outputs = len(outputs)

        def output_hook(grad):
            grad_outputs = tuple(grad if i == position else None for i in range(n_outputs))
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
            if self.input_position is None and self.user_hooks:  # no input needs grad:
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
            return grad_outputs[position]

        hooked = _hooked_identity(outputs[position], output_hook)
        outputs = outputs[:position] + (hooked,) + outputs[position + 1:]
        return outputs if isinstance(result, tuple) else outputs[0]

    def _input_hook(self, grad):
        if self.grad_outputs is None:  # the gradient did not come through the output
            return None
        position = self.input_position
        grad_inputs = tuple(grad if i == position else None for i in range(self.n_inputs))
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
        return grad_inputs[position]
