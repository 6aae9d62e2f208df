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

Higher-order gradients (``create_graph=True``). The ordinary backward above runs on arrays
and records nothing: it is the fast path, and stays so. With ``create_graph=True``
(``backward(create_graph=True)``, ``corrnet.autograd.grad(..., create_graph=True)``) the
engine runs with gradient recording on, the gradients that flow are Tensors, and each node
calls its Function's *differentiable* backward instead:

        @staticmethod
        def backward_graph(ctx, grad):      # grad: a Tensor; Tensors (or None) out
            a, b = ctx.saved_tensors        # the saved arrays, as Tensors in the graph
            return grad * b, grad * a       # written with Tensor ops: they record themselves

`ctx.saved_tensors` gives each saved array that is an input's (or the output's) array as a
Tensor linked to that input's place in the graph (or to this node), so the gradient is a
function of the inputs that can be differentiated again; any other saved array is a constant.
Two shortcuts serve most ops:

- An op of one tensor input whose gradient is a linear map of `grad` with coefficients that
  are constant where the op is differentiable (reshape, indexing, padding, pooling, unfold)
  defines only ``jvp(ctx, v)`` on arrays: the forward derivative, the adjoint of its
  backward. The engine then wraps the two as a `LinearMap` Function (backward's adjoint is
  jvp and the other way round), differentiable any number of times.
- A backward that builds its result from `grad` with operators only (``grad, -grad``) may
  set ``backward_graph = backward``.

A saved array computed *from* the inputs (batch norm's normalized input, a fused loss's
log-softmax) is a constant in `ctx.saved_tensors`: its backward_graph recomputes it from the
inputs with Tensor ops, or records it as a node of the input (nn/functional.py shows both).
A Function with neither raises a RuntimeError naming it under create_graph: never a silently
detached gradient. A new op's double backward is tested against PyTorch with
``assert_double_backward`` (tests/oracle/test_issue12_double_backward_oracle.py).

Non-finite numbers are values, not events: as in PyTorch, an op whose result holds NaN or
inf (0 * inf, a float16 overflow, a NaN through a matrix product) returns it without a
warning. `Function.apply` runs each forward, and the engine each backward pass, under
``np.errstate(all="ignore")``, so that NumPy's floating-point warnings never
reach the user from inside an op.

`grad(outputs, inputs)` runs the same engine with `capture`: only the nodes that lead to an
input run, and the gradient reaching each input's node is returned instead of accumulated.
`Function.grad_fn_name` is the name PyTorch prints for the node
(``MulBackward0``); it may be a staticmethod of ctx where PyTorch's depends on the arguments.
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
        self._saved_owners: tuple = ()  # per saved array: input position, -1 output, None other
        self._node = None  # set by the engine for a differentiable backward (create_graph)

    def save_for_backward(self, *arrays) -> None:
        self.saved_arrays = arrays

    @property
    def saved_tensors(self) -> tuple:
        """The saved arrays as Tensors for a differentiable backward (`backward_graph`): an
        input's array is that input, linked to its place in the graph; the output's array is
        the output, linked to this node; any other array is a constant."""
        node = self._node
        if node is None:
            raise RuntimeError("ctx.saved_tensors is for backward_graph (create_graph=True); "
                               "backward reads ctx.saved_arrays")
        return tuple(None if array is None else node.tensor_of(array, owner)
                     for array, owner in zip(self.saved_arrays, self._saved_owners,
                                             strict=True))


class Node:
    """One recorded op: its backward function, its context and edges to its inputs' nodes."""

    __slots__ = ("function", "ctx", "next_nodes", "input_meta", "positions", "retained",
                 "freed", "grad_hooks", "_name", "__weakref__")

    def __init__(self, function, ctx, next_nodes, input_meta, positions=()):
        self.function = function
        self.ctx = ctx
        self.next_nodes = next_nodes  # one per tensor input: a Node, or None if no grad needed
        self.input_meta = input_meta  # one (shape, numpy dtype) per tensor input
        self.positions = positions  # where each tensor input stood among forward's arguments
        self.retained = None  # weakref to a tensor whose .grad should be kept (retain_grad)
        self.freed = False
        self.grad_hooks = None  # {id: hook} on the gradient arriving here (Tensor.register_hook)
        self._name = None  # PyTorch's name, fixed when it depends on ctx and ctx is freed

    def name(self) -> str:
        """The name PyTorch gives this node (``MulBackward0``): `Function.grad_fn_name`."""
        if self._name is not None:
            return self._name
        name = getattr(self.function, "grad_fn_name", None)
        if name is None:
            return f"{self.function.__name__.lstrip('_')}Backward0"
        return name if isinstance(name, str) else name(self.ctx)

    @property
    def next_functions(self) -> tuple:
        """((node, 0), ...) per tensor input of PyTorch's op, (None, 0) where no gradient is
        wanted (a constant, a Python number, a missing bias), as PyTorch's."""
        count = self.function.tensor_arguments
        if count is None:
            return tuple((child, 0) for child in self.next_nodes)
        by_position = dict(zip(self.positions, self.next_nodes, strict=True))
        return tuple((by_position.get(i), 0) for i in range(count))

    def __repr__(self) -> str:
        return f"<{self.name()} object at {hex(id(self))}>"

    def tensor_of(self, array, owner):
        """`array` as a Tensor of the graph: input `owner` (a position among the tensor
        inputs), the output (-1), or a constant (None)."""
        Tensor, _wrap = _tensor_types()
        if owner is None:
            return _wrap(array)
        if owner == -1:
            return _wrap(array, grad_fn=self)
        # the saved values, flowing into the input's node (a leaf's AccumulateGrad too);
        # None: an input that wants no gradient, a constant
        return _wrap(array, grad_fn=self.next_nodes[owner])

    def apply_graph(self, grad):
        """The differentiable backward (create_graph): Tensors in, Tensors (or None) out,
        one per tensor input."""
        if self.freed:
            self.apply(None)  # raises the freed-graph error
        _check_versions(self)
        if self.function.backward_graph is not None:
            self.ctx._node = self  # for ctx.saved_tensors
            try:
                grads = self.function.backward_graph(self.ctx, grad)
            finally:
                self.ctx._node = None
            if not isinstance(grads, tuple):
                grads = (grads,)
            return tuple(grads[p] if p < len(grads) else None for p in self.positions)
        if self.function.jvp is not None:
            return self._linear_map_backward(grad)
        raise RuntimeError(
            f"{self.name()} ({self.function.__name__}) is not twice differentiable in corrnet: "
            "its gradient cannot be computed with create_graph=True")

    def _linear_map_backward(self, grad):
        """backward as a LinearMap of grad, with jvp as its adjoint (see the top): for an
        op with one input that wants a gradient."""
        wanted = [i for i, child in enumerate(self.next_nodes) if child is not None]
        if len(wanted) != 1:
            raise RuntimeError(f"{self.function.__name__}: jvp serves ops with one input that "
                               "wants a gradient; write backward_graph for more")
        ctx, function, position = self.ctx, self.function, self.positions[wanted[0]]

        def backward(g):  # that input's gradient, an array
            grads = function.backward(ctx, g)
            return grads[position] if isinstance(grads, tuple) else grads

        grad_input = LinearMap.apply(grad, backward, lambda v: function.jvp(ctx, v),
                                     _backward_name(self.name()))
        return tuple(grad_input if p == position else None for p in self.positions)

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
        if not isinstance(getattr(self.function, "grad_fn_name", ""), str):
            self._name = self.name()  # the name read ctx: keep it
        self.ctx = None
        self.freed = True


class AccumulateGrad(Node):
    """The node of a leaf tensor: adds the incoming gradient into ``tensor.grad``."""

    __slots__ = ("tensor", "post_accumulate_hooks")

    def __init__(self, tensor):
        super().__init__(AccumulateGrad, None, (), ())
        self.tensor = tensor
        self.post_accumulate_hooks = None  # {id: hook(tensor)}: after .grad is updated

    def add_post_accumulate_hook(self, hook):
        """Register ``hook(tensor)``, called each time a backward pass has added into the
        leaf's ``.grad``; return a handle whose ``remove()`` unregisters it."""
        from .utils.hooks import RemovableHandle

        if self.post_accumulate_hooks is None:
            self.post_accumulate_hooks = {}
        handle = RemovableHandle(self.post_accumulate_hooks)
        self.post_accumulate_hooks[handle.id] = hook
        return handle

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"  # PyTorch's name() (its repr: AccumulateGrad)

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {hex(id(self))}>"

    @property
    def variable(self):
        """The leaf tensor whose .grad this node accumulates (as PyTorch's)."""
        return self.tensor


def _check_versions(node: Node) -> None:
    for version_cell, version, shape in node.ctx._saved_versions:
        if version_cell[0] != version:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: a tensor of shape {list(shape)} saved by {node.name()} is at "
                f"version {version_cell[0]}; expected version {version} instead. Use .clone() "
                "before modifying it in place, or modify it before using it."
            )


def _as_array(value):
    """A backward's result as an array: NumPy's and device arrays as they are, numbers through
    ``np.asarray``."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (np.generic, int, float, bool)):   # a NumPy scalar (a full reduction)
        return np.asarray(value)
    from . import devices

    return devices.as_array(value)


def _like(array):
    """The ``like=`` argument that makes a new array on `array`'s device: None (NumPy) for a
    host array or a number, the array itself on a device."""
    if isinstance(array, np.ndarray) or not hasattr(array, "__array_function__"):
        return None
    return array


def _device_operands(arrays, op: str) -> list:
    """The operands of an op with one on a CUDA device: all on one device (PyTorch's error
    otherwise), 0-d host arrays (CPU scalar tensors, Python numbers) as NumPy scalars, which
    CuPy's kernels take as scalars."""
    from . import devices

    devices.check_same_device(arrays, op)
    return [a[()] if isinstance(a, np.ndarray) and a.ndim == 0 else a for a in arrays]


class Function:
    """A differentiable op: subclass it with static `forward` and `backward` on arrays
    (and, to be twice differentiable, `backward_graph` on Tensors or `jvp` on arrays)."""

    grad_fn_name = None  # PyTorch's node name; None: the class name + "Backward0"
    tensor_arguments = None  # how many leading arguments PyTorch's op takes as tensors
    backward_graph = None  # (ctx, grad Tensor) -> Tensors: the backward under create_graph
    jvp = None  # (ctx, v array) -> array: the forward derivative of a linear-in-grad backward
    crosses_devices = False  # True for the copy between devices; other ops refuse a mix

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
        requires_grad = on_device = False
        for i, arg in enumerate(args):
            if isinstance(arg, Tensor):
                positions.append(i)
                tensors.append(arg)
                arrays.append(arg._data)
                requires_grad = requires_grad or arg.requires_grad
                on_device = on_device or not isinstance(arg._data, np.ndarray)
            else:
                arrays.append(arg)
        if on_device and not cls.crosses_devices:
            arrays = _device_operands(arrays, cls.__name__)
        ctx = Context()
        recording = requires_grad and is_grad_enabled()
        if recording:  # forward may save only what the wanted gradients need
            ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        try:
            with np.errstate(all="ignore"):  # NaN and inf silently, as PyTorch (see the top)
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
        owners = {id(t._data): (i, t) for i, t in enumerate(tensors)}
        owners[id(out_array)] = (-1, out)
        saved_owners = []
        for saved in ctx.saved_arrays:
            index, owner = owners.get(id(saved), (None, None))
            saved_owners.append(index)
            if owner is not None:
                ctx._saved_versions.append((owner._version, owner._version[0], saved.shape))
        ctx._saved_owners = tuple(saved_owners)
        return out


class LinearMap(Function):
    """``apply(x)`` for a linear map given with its adjoint (arrays to arrays): the
    differentiable backward of an op whose gradient is linear in `grad` (see the top). Its
    backward is the adjoint, and its own differentiable backward is a LinearMap again."""

    @staticmethod
    def forward(ctx, x, apply, adjoint, name="LinearMapBackward0"):
        ctx.apply, ctx.adjoint, ctx.name = apply, adjoint, name  # name: as PyTorch's nodes
        return _as_array(apply(x))

    @staticmethod
    def backward(ctx, grad):
        return ctx.adjoint(grad)

    @staticmethod
    def backward_graph(ctx, grad):
        return LinearMap.apply(grad, ctx.adjoint, ctx.apply, _backward_name(ctx.name))

    @staticmethod
    def grad_fn_name(ctx):
        return ctx.name


def _backward_name(name: str) -> str:
    """The node name of the backward of `name`: MaxPool2DWithIndicesBackwardBackward0."""
    return name.removesuffix("0") + "Backward0"


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
    if axes:  # one reduction, so that a half-precision sum rounds once (as PyTorch's: NumPy's
        # float16 sum rounds after every addition; accumulated in float32, it rounds at the end)
        if grad.dtype == np.float16:
            grad = grad.sum(axis=axes, dtype=np.float32).astype(np.float16)
        else:
            grad = grad.sum(axis=axes)
    return grad.reshape(shape)


def _run_grad_hooks(node: Node, grad):
    """Pass the gradient arriving at `node` (an array, or a Tensor with create_graph) through
    its tensor hooks, in registration order; a hook returning a tensor replaces the gradient
    (of the same shape)."""
    Tensor, _wrap = _tensor_types()
    if isinstance(grad, Tensor):
        for hook in list(node.grad_hooks.values()):
            result = hook(grad)
            if result is not None:
                if not isinstance(result, Tensor) or tuple(result.shape) != tuple(grad.shape):
                    raise RuntimeError(f"hook '{getattr(hook, '__name__', hook)}' returned "
                                       f"{type(result).__name__}, not a Tensor of shape "
                                       f"{list(grad.shape)}")
                grad = result
        return grad
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


def _sum_to_shape_graph(grad, shape: tuple):
    """`sum_to_shape` for a Tensor gradient (create_graph): with recorded ops."""
    if tuple(grad.shape) == tuple(shape):
        return grad
    extra = grad.dim() - len(shape)
    axes = tuple(range(extra)) + tuple(extra + i for i, n in enumerate(shape)
                                       if n == 1 and grad.shape[extra + i] != 1)
    if axes:  # one reduction, as `sum_to_shape`
        grad = grad.sum(dim=axes)
    return grad.reshape(tuple(shape))


def _as_graph_grad(grad, shape: tuple, dtype):
    """A gradient from a differentiable backward, summed to `shape` and cast to `dtype`."""
    Tensor, _wrap = _tensor_types()
    if not isinstance(grad, Tensor):  # a constant (an array of zeros, say)
        grad = _wrap(_as_array(grad))
    grad = _sum_to_shape_graph(grad, shape)
    if grad._data.dtype != dtype:
        from .backend import from_numpy_dtype

        grad = grad.to(from_numpy_dtype(dtype))
    return grad


def _needed_nodes(roots, capture) -> set:
    """The nodes whose backward leads to a captured node (the others need not run)."""
    order, stack, seen = [], [(node, False) for node, _ in roots], set()
    while stack:  # iterative depth-first post-order: children before their parents
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        stack.extend((child, False) for child in node.next_nodes
                     if child is not None and child not in seen)
    needed, runs = set(), set()
    for node in order:
        if any(child in needed for child in node.next_nodes):
            runs.add(node)
        if node in capture or node in runs:
            needed.add(node)
    return runs


def queue_callback(callback) -> None:
    """Run ``callback()`` once the backward pass now under way has finished (after every
    gradient is accumulated and every hook has run), as PyTorch's
    ``Variable._execution_engine.queue_callback``: a hook that starts work for the whole pass
    (DistributedDataParallel's gradient all-reduce) queues the call that waits for it.
    Callbacks run in the order queued; one queued by a callback runs in the same pass.

    >>> x = corrnet.ones(2, requires_grad=True)
    >>> seen = []
    >>> _ = x.register_hook(lambda g: corrnet.autograd.queue_callback(lambda: seen.append(1)))
    >>> (x * 2).sum().backward(); seen
    [1]
    """
    stack = getattr(_state, "callbacks", None)
    if not stack:
        raise RuntimeError("queue_callback: no backward pass is running (call it from a hook "
                           "during backward)")
    if not callable(callback):
        raise TypeError(f"queue_callback: callback must be callable, got "
                        f"{type(callback).__name__}")
    stack[-1].append(callback)


def run_backward(roots, retain_graph: bool, create_graph: bool = False, capture=None):
    """Propagate gradients from `roots` (see `_run_backward`), then run the callbacks that
    hooks queued during the pass (`queue_callback`)."""
    stack = getattr(_state, "callbacks", None)
    if stack is None:
        stack = _state.callbacks = []
    callbacks: list = []
    stack.append(callbacks)
    try:
        captured = _run_backward(roots, retain_graph, create_graph, capture)
        for callback in callbacks:  # a list that may grow while it is walked
            callback()
    finally:
        stack.pop()
    return captured


def _run_backward(roots, retain_graph: bool, create_graph: bool = False, capture=None):
    """Propagate gradients from `roots`, a list of (node, gradient) pairs, to the leaves.

    The gradients are arrays, or Tensors with `create_graph` (the backward is then recorded:
    see the top). With `capture` (a dict node -> slot, `grad`'s inputs) nothing is
    accumulated into ``.grad``: the total gradient reaching each captured node is returned
    in its slot (None where none arrives), and only nodes that lead to one are run."""
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
    runs = None if capture is None else _needed_nodes(roots, capture)
    captured = [None] * (0 if capture is None else len(capture))

    # 2. Process a node once all gradients flowing into it have arrived (Kahn's algorithm).
    pending: dict = {}
    for node, grad in roots:
        pending[node] = grad if node not in pending else pending[node] + grad
    ready = [node for node in pending if dependencies.get(node, 0) == 0]
    # (recorded only with create_graph; NaN and inf silently, as PyTorch: see the top)
    with set_grad_enabled(create_graph), np.errstate(all="ignore"):
        while ready:
            node = ready.pop()
            grad = pending.pop(node, None)
            if node.grad_hooks and grad is not None:  # Tensor.register_hook, module hooks
                grad = _run_grad_hooks(node, grad)
            if capture is not None:
                if node in capture:
                    captured[capture[node]] = grad
                if node not in runs or isinstance(node, AccumulateGrad):
                    grad = None  # nothing to propagate: no node below leads to an input
            if isinstance(node, AccumulateGrad):
                if grad is not None:
                    node.tensor._accumulate_grad(grad, may_keep=True)
                    if node.post_accumulate_hooks:  # Tensor.register_post_accumulate_grad_hook
                        for hook in list(node.post_accumulate_hooks.values()):
                            hook(node.tensor)
                continue
            retained = node.retained() if node.retained is not None else None
            if retained is not None and grad is not None:
                retained._accumulate_grad(grad)
            if grad is None:
                input_grads = (None,) * len(node.next_nodes)
            else:
                input_grads = node.apply_graph(grad) if create_graph else node.apply(grad)
                if not retain_graph:
                    node.free()
            for child, child_grad, (shape, dtype) in zip(
                node.next_nodes, input_grads, node.input_meta, strict=True
            ):
                if child is None:
                    continue
                if child_grad is not None:
                    if create_graph:
                        child_grad = _as_graph_grad(child_grad, shape, dtype)
                    else:
                        child_grad = sum_to_shape(_as_array(child_grad), shape).astype(
                            dtype, copy=False)
                    previous = pending.get(child)
                    pending[child] = child_grad if previous is None else previous + child_grad
                dependencies[child] -= 1
                if dependencies[child] == 0:
                    ready.append(child)
            # (dropped now: a leaf's AccumulateGrad keeps a gradient without a copy only
            # where nothing but `pending` and `grad` refers to it, Tensor._accumulate_grad)
            input_grads = child_grad = None
    return captured


def _as_tuple(value, name: str) -> tuple:
    Tensor, _ = _tensor_types()
    if isinstance(value, Tensor):
        return (value,)
    if isinstance(value, (tuple, list)) and all(isinstance(v, Tensor) for v in value):
        return tuple(value)
    raise TypeError(f"{name} must be a Tensor or a sequence of Tensors, got "
                    f"{type(value).__name__}")


def _roots(outputs: tuple, grad_outputs, create_graph: bool) -> list:
    """(node, initial gradient) per output: ones for a one-element output without one."""
    Tensor, _wrap = _tensor_types()
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = (grad_outputs,)
    else:
        grad_outputs = tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad requires one gradient per output: got {len(grad_outputs)} "
                           f"grad_outputs for {len(outputs)} outputs")
    roots = []
    for i, (out, grad) in enumerate(zip(outputs, grad_outputs, strict=True)):
        node = out._grad_node()
        if node is None:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not "
                               "have a grad_fn")
        if grad is None:
            if out._data.size != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs: "
                                   f"output {i} has shape {tuple(out.shape)}; pass a "
                                   "gradient of that shape in grad_outputs")
            grad = _wrap(np.ones_like(out._data))
        elif not isinstance(grad, Tensor):
            raise TypeError(f"grad_outputs[{i}] must be a Tensor or None, got "
                            f"{type(grad).__name__}")
        elif tuple(grad.shape) != tuple(out.shape):
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of "
                               f"{tuple(grad.shape)} and output[{i}] has a shape of "
                               f"{tuple(out.shape)}.")
        elif grad._data.dtype != out._data.dtype:
            grad = grad.to(out.dtype) if create_graph else _wrap(
                grad._data.astype(out._data.dtype))
        roots.append((node, grad if create_graph else grad._data))
    return roots


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """The gradients of `outputs` with respect to `inputs`, returned (a tuple, one per input)
    rather than accumulated into ``.grad``, as ``torch.autograd.grad``. With
    ``create_graph=True`` they are recorded, so that they can be differentiated again
    (gradient penalties, Hessian-vector products); `retain_graph` defaults to it.

    >>> x = corrnet.tensor(3., requires_grad=True)
    >>> (dx,) = corrnet.autograd.grad(x ** 3, x, create_graph=True)
    >>> dx, corrnet.autograd.grad(dx, x)[0]
    (tensor(27., grad_fn=<MulBackward0>), tensor(18.))
    """
    Tensor, _wrap = _tensor_types()
    if is_grads_batched:
        raise NotImplementedError("grad(is_grads_batched=True)")
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when "
                         "materialize_grads=True, but got: allow_unused=False.")
    allow_unused = materialize_grads if allow_unused is None else allow_unused
    outputs, inputs = _as_tuple(outputs, "outputs"), _as_tuple(inputs, "inputs")
    if not inputs:
        raise RuntimeError("grad requires non-empty inputs.")
    capture = {}
    for i, t in enumerate(inputs):
        node = t._grad_node()
        if node is None:
            raise RuntimeError(f"One of the differentiated Tensors does not require grad "
                               f"(input {i}, of shape {tuple(t.shape)})")
        capture.setdefault(node, i)
    retain_graph = create_graph if retain_graph is None else retain_graph
    captured = run_backward(_roots(outputs, grad_outputs, create_graph), bool(retain_graph),
                            create_graph=create_graph, capture=capture)
    results = []
    for i, t in enumerate(inputs):
        g = captured[capture[t._grad_node()]]
        if g is None:
            if not allow_unused:
                raise RuntimeError("One of the differentiated Tensors appears to not have been "
                                   "used in the graph. Set allow_unused=True if this is the "
                                   f"desired behavior (input {i}, of shape {tuple(t.shape)}).")
            if materialize_grads:
                g = np.zeros_like(t._data)
        if g is None or isinstance(g, Tensor):
            results.append(g)
        else:  # an array of the fast path: a fresh tensor of the input's shape
            results.append(_wrap(np.broadcast_to(g, t._data.shape).copy()))
    return tuple(results)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False,
             grad_variables=None, inputs=None):
    """Accumulate the gradients of `tensors` into the leaves' ``.grad`` (with
    `grad_tensors` as the gradients of non-scalar ones), as ``torch.autograd.backward``.

    >>> x = corrnet.tensor([1., 2.], requires_grad=True)
    >>> corrnet.autograd.backward([(x * x).sum()])
    >>> x.grad
    tensor([2., 4.])
    """
    if inputs is not None:
        raise NotImplementedError("backward(inputs=...)")
    grad_tensors = grad_variables if grad_tensors is None else grad_tensors
    tensors = _as_tuple(tensors, "tensors")
    retain_graph = create_graph if retain_graph is None else retain_graph
    run_backward(_roots(tensors, grad_tensors, create_graph), bool(retain_graph),
                 create_graph=create_graph)
