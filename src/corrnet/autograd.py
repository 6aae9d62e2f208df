"""Reverse-mode automatic differentiation: the whole mechanism in one page.

A differentiable op is a `Function` with two static methods on NumPy arrays:

    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b):            # arrays in, one array out
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad_output):    # one gradient per argument of forward
            a, b = ctx.saved_arrays
            return grad_output * b, grad_output * a

`Function.apply` runs `forward` and, when a gradient is wanted, records a `Node` that points
at the nodes of its inputs. `backward()` walks those nodes in reverse topological order (an
iterative sort: a chain of 100,000 ops needs no recursion) and adds up the gradients at the
leaves. Backward functions may return gradients in the broadcast shape of the output; the
engine sums them back to each input's shape and casts them to the input's dtype.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "grad_enabled", True)


def _set_grad_enabled(mode: bool) -> None:
    _state.grad_enabled = bool(mode)


class _GradMode:
    """Base of `no_grad` / `enable_grad` / `set_grad_enabled`: a context manager and decorator."""

    mode = True

    def __enter__(self):
        self._previous = is_grad_enabled()
        _set_grad_enabled(self.mode)
        return self

    def __exit__(self, *exc):
        _set_grad_enabled(self._previous)
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return func(*args, **kwargs)

        return wrapper


class _BareDecoratorMode(_GradMode):
    """Also usable as a bare decorator: ``@corrnet.no_grad`` as well as ``@corrnet.no_grad()``."""

    def __new__(cls, func=None):
        if func is None:
            return super().__new__(cls)
        return cls()(func)


class no_grad(_BareDecoratorMode):
    """Disable gradient recording: ``with corrnet.no_grad(): ...`` or ``@corrnet.no_grad()``."""

    mode = False


class enable_grad(_BareDecoratorMode):
    mode = True


class set_grad_enabled(_GradMode):
    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._previous = is_grad_enabled()
        _set_grad_enabled(self.mode)  # also works as a plain function call, as in PyTorch

    def __enter__(self):
        return self

    def __call__(self, func):
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return func(*args, **kwargs)

        _set_grad_enabled(self._previous)
        return wrapper


class Context:
    """What a forward pass leaves for its backward pass."""

    def __init__(self):
        self.saved_arrays: tuple = ()
        self.needs_input_grad: tuple = ()  # per forward argument; all False when not recording
        self._saved_versions: list = []

    def save_for_backward(self, *arrays) -> None:
        self.saved_arrays = arrays


class Node:
    """One recorded op: its backward function, its context and edges to its inputs' nodes."""

    __slots__ = ("function", "ctx", "next_nodes", "input_meta", "positions", "retained",
                 "freed", "grad_hooks", "__weakref__")

    def __init__(self, function, ctx, next_nodes, input_meta, positions=()):
        self.function = function
        self.ctx = ctx
        self.next_nodes = next_nodes  # one per tensor input: a Node, or None if no grad needed
        self.input_meta = input_meta  # one (shape, numpy dtype) per tensor input
        self.positions = positions  # where each tensor input stood among forward's arguments
        self.retained = None  # a tensor whose .grad should be kept (retain_grad)
        self.freed = False
        self.grad_hooks = None  # {id: hook} on the gradient arriving here (Tensor.register_hook)

    def name(self) -> str:
        return f"{self.function.__name__}Backward"

    def __repr__(self) -> str:
        return f"<{self.name()}>"

    def apply(self, grad_output):
        if self.freed:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access saved "
                "tensors after they have already been freed). Saved intermediate values of the "
                "graph are freed when you call .backward(). Specify retain_graph=True if you "
                "need to backward through the graph a second time."
            )
        _check_versions(self)
        grads = self.function.backward(self.ctx, grad_output)
        if not isinstance(grads, tuple):
            grads = (grads,)
        # backward returns one gradient per forward argument; keep the tensors' ones
        return tuple(grads[p] if p < len(grads) else None for p in self.positions)

    def add_grad_hook(self, hook):
        """Register ``hook(grad) -> Tensor or None`` on the gradient that arrives at this node
        (the gradient of its tensor); return a handle whose ``remove()`` unregisters it."""
        from .utils.hooks import RemovableHandle

        if self.grad_hooks is None:
            self.grad_hooks = {}
        handle = RemovableHandle(self.grad_hooks)
        self.grad_hooks[handle.id] = hook
        return handle

    def free(self) -> None:
        self.ctx = None
        self.freed = True


class AccumulateGrad(Node):
    """The node of a leaf tensor: adds the incoming gradient into ``tensor.grad``."""

    __slots__ = ("tensor",)

    def __init__(self, tensor):
        super().__init__(AccumulateGrad, None, (), ())
        self.tensor = tensor

    def name(self) -> str:
        return "AccumulateGrad"


def _check_versions(node: Node) -> None:
    for version_cell, version, shape in node.ctx._saved_versions:
        if version_cell[0] != version:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: a tensor of shape {list(shape)} saved by {node.name()} is at "
                f"version {version_cell[0]}; expected version {version} instead. Use .clone() "
                "before modifying it in place, or modify it before using it."
            )


class Function:
    """A differentiable op: subclass it with static `forward` and `backward` on arrays."""

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_output):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args):
        Tensor, _wrap = _tensor_types()
        positions, tensors, arrays = [], [], []
        requires_grad = False
        for i, arg in enumerate(args):
            if isinstance(arg, Tensor):
                positions.append(i)
                tensors.append(arg)
                arrays.append(arg._data)
                requires_grad = requires_grad or arg.requires_grad
            else:
                arrays.append(arg)
        ctx = Context()
        recording = requires_grad and is_grad_enabled()
        if recording:  # forward may save only what the wanted gradients need
            ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        try:
            out_array = cls.forward(ctx, *arrays)
        except MemoryError as exc:  # PyTorch's allocator raises RuntimeError, and names the op
            shapes = [tuple(a.shape) for a in arrays if hasattr(a, "shape")]
            raise RuntimeError(f"{cls.__name__.lstrip('_')}: not enough memory for the result "
                               f"of inputs of shapes {shapes} ({exc})") from None
        if not recording:
            return _wrap(out_array)
        node = Node(
            cls,
            ctx,
            tuple(t._grad_node() for t in tensors),
            tuple((t._data.shape, t._data.dtype) for t in tensors),
            tuple(positions),
        )
        out = _wrap(out_array, grad_fn=node)
        # Remember the version of every saved array that belongs to an input or the output,
        # so that backward can refuse to use one modified in place since.
        owners = {id(t._data): t for t in tensors}
        owners[id(out_array)] = out
        for saved in ctx.saved_arrays:
            owner = owners.get(id(saved))
            if owner is not None:
                ctx._saved_versions.append((owner._version, owner._version[0], saved.shape))
        return out


@functools.cache
def _tensor_types():
    """(Tensor, _wrap), imported on first use: tensor.py itself imports this module."""
    from .tensor import Tensor, _wrap

    return Tensor, _wrap


def sum_to_shape(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Reduce a broadcast gradient back to `shape` (sum the broadcast dimensions)."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(extra + i for i, n in enumerate(shape)
                                       if n == 1 and grad.shape[extra + i] != 1)
    if axes:  # one reduction, so that a half-precision sum rounds once (as PyTorch's)
        grad = grad.sum(axis=axes)
    return grad.reshape(shape)


def _run_grad_hooks(node: Node, grad: np.ndarray) -> np.ndarray:
    """Pass the gradient arriving at `node` through its tensor hooks, in registration order;
    a hook returning a tensor replaces the gradient (of the same shape)."""
    Tensor, _wrap = _tensor_types()
    for hook in list(node.grad_hooks.values()):
        result = hook(_wrap(grad))
        if result is None:
            continue
        if not isinstance(result, Tensor):
            raise TypeError(f"a gradient hook returned {type(result).__name__}; expected a "
                            "Tensor or None")
        if result._data.shape != grad.shape:
            raise RuntimeError(f"hook '{getattr(hook, '__name__', hook)}' has changed the size "
                               f"of value: expected {list(grad.shape)}, got "
                               f"{list(result._data.shape)}")
        grad = result._data.astype(grad.dtype, copy=False)
    return grad


def run_backward(roots, retain_graph: bool) -> None:
    """Propagate gradients from `roots`, a list of (node, gradient array) pairs, to the leaves."""
    # 1. Count, for every node reachable from the roots, how many edges lead into it.
    dependencies: dict[Node, int] = {}
    stack = [node for node, _ in roots]
    seen = set(stack)
    while stack:
        node = stack.pop()
        for child in node.next_nodes:
            if child is None:
                continue
            dependencies[child] = dependencies.get(child, 0) + 1
            if child not in seen:
                seen.add(child)
                stack.append(child)

    # 2. Process a node once all gradients flowing into it have arrived (Kahn's algorithm).
    pending: dict[Node, np.ndarray] = {}
    for node, grad in roots:
        pending[node] = grad if node not in pending else pending[node] + grad
    ready = [node for node in pending if dependencies.get(node, 0) == 0]
    while ready:
        node = ready.pop()
        grad = pending.pop(node, None)
        if node.grad_hooks and grad is not None:  # Tensor.register_hook, module hooks
            grad = _run_grad_hooks(node, grad)
        if isinstance(node, AccumulateGrad):
            if grad is not None:
                node.tensor._accumulate_grad(grad)
            continue
        if node.retained is not None and grad is not None:
            node.retained._accumulate_grad(grad)
        if grad is None:
            input_grads = (None,) * len(node.next_nodes)
        else:
            input_grads = node.apply(grad)
            if not retain_graph:
                node.free()
        for child, child_grad, (shape, dtype) in zip(
            node.next_nodes, input_grads, node.input_meta, strict=True
        ):
            if child is None:
                continue
            if child_grad is not None:
                child_grad = sum_to_shape(np.asarray(child_grad), shape).astype(dtype, copy=False)
                previous = pending.get(child)
                pending[child] = child_grad if previous is None else previous + child_grad
            dependencies[child] -= 1
            if dependencies[child] == 0:
                ready.append(child)
