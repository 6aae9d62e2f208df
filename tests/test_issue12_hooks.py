"""Issue 12, item 2 (modules): hooks and containers against PyTorch.

Each scenario runs twice, once with ``corrnet`` and once with ``torch`` as `lib`, on the same
weights and inputs, and what the hooks saw (and what they changed) is compared: forward
pre-hooks and forward hooks (order, ``prepend``, ``with_kwargs``, replaced inputs and outputs,
handles' ``remove()`` and ``with``), full backward hooks and backward pre-hooks (grad_input /
grad_output tuples and replacements), ``Tensor.register_hook`` with ``retain_grad``; and
`ModuleList`, `ModuleDict`, `ParameterList`, `ParameterDict` (reprs, state_dict keys, list and
dict operations, gradients through them).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import corrnet as cn

from torch_compare import assert_same, numpy_of

LIBS = {"corrnet": cn, "torch": torch}


def _values(seen):
    """Tensors in a (nested) record as NumPy arrays, for comparison."""
    if isinstance(seen, (list, tuple)):
        return [_values(item) for item in seen]
    if hasattr(seen, "detach"):
        return numpy_of(seen)
    return seen


def _assert_records_equal(got, expected, what=""):
    assert type(got) is type(expected) or isinstance(got, (list, tuple)), what
    if isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), f"{what}: {len(got)} != {len(expected)} items"
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            _assert_records_equal(a, b, f"{what}[{i}]")
    elif isinstance(expected, np.ndarray):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12, err_msg=what)
    else:
        assert got == expected, what


def _build(lib, kind, seed=0):
    """The same float64 module in either library (torch builds it; corrnet loads its state)."""
    torch.manual_seed(seed)
    nn = torch.nn
    reference = {
        "linear": lambda: nn.Linear(4, 3),
        "conv": lambda: nn.Conv2d(2, 3, 3, padding=1, stride=2),
        "net": lambda: nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(),
                                     nn.Linear(12, 2)),
        "batchnorm": lambda: nn.BatchNorm2d(2),
        "pool": lambda: nn.MaxPool2d(2),
    }[kind]().double()
    if lib is torch:
        return reference
    module = {
        "linear": lambda: cn.nn.Linear(4, 3),
        "conv": lambda: cn.nn.Conv2d(2, 3, 3, padding=1, stride=2),
        "net": lambda: cn.nn.Sequential(cn.nn.Conv2d(2, 3, 3), cn.nn.ReLU(), cn.nn.Flatten(),
                                        cn.nn.Linear(12, 2)),
        "batchnorm": lambda: cn.nn.BatchNorm2d(2),
        "pool": lambda: cn.nn.MaxPool2d(2),
    }[kind]().double()
    module.load_state_dict({k: cn.tensor(v.numpy()) for k, v in reference.state_dict().items()})
    return module


INPUT_SHAPES = {"linear": (2, 4), "conv": (2, 2, 5, 4), "net": (2, 2, 4, 4),
                "batchnorm": (3, 2, 2, 2), "pool": (1, 2, 4, 4)}


def _input(lib, kind, seed=0, requires_grad=True):
    x = np.random.default_rng(seed).standard_normal(INPUT_SHAPES[kind])
    return lib.tensor(x, requires_grad=requires_grad)


# -- forward hooks ------------------------------------------------------------------------


def _forward_hooks_scenario(lib):
    module = _build(lib, "net")
    record = []
    handles = [
        module.register_forward_pre_hook(lambda m, args: record.append(("pre", args[0]))),
        module.register_forward_hook(lambda m, args, out: record.append(("fwd", args[0], out))),
        module.register_forward_hook(lambda m, args, out: record.append(("first", out)),
                                     prepend=True),
    ]
    # collecting every child's activation: the common use of forward hooks
    for name, child in module.named_children():
        handles.append(child.register_forward_hook(
            lambda m, args, out, name=name: record.append((f"child {name}", out))))
    x = _input(lib, "net")
    module(x)
    module.forward(x)  # hooks fire on a call of the module, not on forward itself
    record.append("direct forward done")
    for handle in handles:
        handle.remove()
    module(x)
    record.append("removed")
    # replacing the input and the output
    with module.register_forward_pre_hook(lambda m, args: (args[0] * 2,)):
        record.append(("doubled input", module(x)))
    with module.register_forward_pre_hook(lambda m, args: args[0] + 1):  # a bare value
        record.append(("input + 1", module(x)))
    with module.register_forward_hook(lambda m, args, out: out - 1):
        record.append(("output - 1", module(x)))
    record.append(("no hooks", module(x)))
    pre = module.register_forward_pre_hook(lambda m, args, kwargs: ((args[0] * 3,), kwargs),
                                           with_kwargs=True)
    post = module.register_forward_hook(lambda m, args, kwargs, out: (out, kwargs),
                                        with_kwargs=True)
    result, kwargs = module(x)
    record.append(("with_kwargs", result, sorted(kwargs)))
    pre.remove()
    post.remove()
    pre.remove()  # twice is harmless
    return record


def test_issue12_forward_hooks_match_torch():
    got, expected = (_values(_forward_hooks_scenario(lib)) for lib in (cn, torch))
    _assert_records_equal(got, expected, "forward hook records")


def test_issue12_forward_pre_hook_with_kwargs_must_return_a_pair():
    for lib in (cn, torch):
        module = lib.nn.ReLU()
        module.register_forward_pre_hook(lambda m, a, k: a, with_kwargs=True)
        with pytest.raises(RuntimeError, match="forward pre-hook must return None or a tuple"):
            module(lib.ones(2))


# -- full backward hooks --------------------------------------------------------------------


def _backward_hooks_scenario(lib, kind, seed):
    module = _build(lib, kind, seed)
    record = []
    backward = module.register_full_backward_hook(
        lambda m, grad_input, grad_output: record.append(("hook", grad_input, grad_output)))
    pre = module.register_full_backward_pre_hook(
        lambda m, grad_output: record.append(("pre", grad_output)))
    x = _input(lib, kind, seed)
    out = module(x)
    weights = lib.tensor(np.random.default_rng(seed + 1).standard_normal(tuple(out.shape)))
    (out * weights).sum().backward()
    record.append(("x.grad", x.grad))
    record.append(("parameter grads", [p.grad for p in module.parameters()]))

    # the hooks' answers replace the gradients
    backward.remove()
    pre.remove()
    module.zero_grad()
    x.grad = None
    with module.register_full_backward_pre_hook(lambda m, go: (go[0] * 3,)), \
            module.register_full_backward_hook(lambda m, gi, go: (gi[0] * 10,)):
        (module(x) * weights).sum().backward()
    record.append(("replaced x.grad", x.grad))
    record.append(("replaced parameter grads", [p.grad for p in module.parameters()]))

    if not list(module.parameters()):
        return record
    # no input that needs grad: the hook fires with grad_input (None,), and warns
    with module.register_full_backward_hook(
            lambda m, gi, go: record.append(("no input grad", gi, go))):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            (module(x.detach()) * weights).sum().backward()
    record.append(("warned", any("Full backward hook is firing" in str(w.message)
                                 for w in caught)))
    return record


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(sorted(INPUT_SHAPES)), seed=st.integers(0, 2**16))
def test_issue12_full_backward_hooks_see_and_replace_torchs_gradients(kind, seed):
    got, expected = (_values(_backward_hooks_scenario(lib, kind, seed)) for lib in (cn, torch))
    _assert_records_equal(got, expected, f"backward hook records of {kind}")


def test_issue12_full_backward_hook_with_a_non_tensor_argument():
    class Scale(torch.nn.Module):
        def forward(self, x, factor):
            return x * factor

    class CnScale(cn.nn.Module):
        def forward(self, x, factor):
            return x * factor

    records = []
    for lib, module in ((cn, CnScale()), (torch, Scale())):
        record = []
        module.register_full_backward_hook(lambda m, gi, go, r=record: r.append((gi, go)))
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        module(x, 3.0).sum().backward()
        records.append(_values(record))
    _assert_records_equal(records[0], records[1], "grad_input with a float argument")
    assert records[0][0][0][1] is None


def _several_tensors_scenario(lib, seed):
    """A module with two tensor inputs (and a float) and three outputs, one of them unused."""

    class Several(lib.nn.Module):
        def forward(self, a, b, scale):
            return a * b * scale, (a + b).tanh(), a.sum()

    rng = np.random.default_rng(seed)
    module = Several()
    record = []
    module.register_full_backward_pre_hook(lambda m, go: record.append(("pre", go)))
    module.register_full_backward_hook(lambda m, gi, go: record.append(("hook", gi, go)))
    a = lib.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = lib.tensor(rng.standard_normal(3), requires_grad=True)
    weights = lib.tensor(rng.standard_normal((2, 3)))
    p, q, _ = module(a, b, 2.0)
    (p * weights + q * 3).sum().backward()
    record += [("a.grad", a.grad), ("b.grad", b.grad)]
    a.grad = b.grad = None
    module.register_full_backward_hook(lambda m, gi, go: (gi[0] * 0, gi[1] * 2, None))
    p, q, r = module(a, b, 2.0)
    (p + q + r).sum().backward()
    record += [("replaced a.grad", a.grad), ("replaced b.grad", b.grad)]
    return record


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_issue12_full_backward_hooks_with_several_inputs_and_outputs_match_torch(seed):
    got, expected = (_values(_several_tensors_scenario(lib, seed)) for lib in (cn, torch))
    _assert_records_equal(got, expected, "several tensors")


def test_issue12_packed_hook_gradients_match_finite_differences():
    """Two hooked inputs and two outputs go through new pack / unpack ops: float64 central
    differences agree with their gradients."""

    class Several(cn.nn.Module):
        def forward(self, a, b):
            return a * b.exp(), (a - b) ** 2

    module = Several()
    module.register_full_backward_hook(lambda m, gi, go: None)
    rng = np.random.default_rng(9)
    a0, b0 = rng.standard_normal(4), rng.standard_normal(4)
    w1, w2 = rng.standard_normal(4), rng.standard_normal(4)

    def loss(a, b):
        p, q = module(a, b)
        return (p * cn.tensor(w1) + q * cn.tensor(w2)).sum()

    a, b = cn.tensor(a0, requires_grad=True), cn.tensor(b0, requires_grad=True)
    loss(a, b).backward()
    for which, analytic in ((0, a.grad), (1, b.grad)):
        numeric = np.zeros(4)
        for i in range(4):
            args_up, args_down = [a0.copy(), b0.copy()], [a0.copy(), b0.copy()]
            args_up[which][i] += 1e-6
            args_down[which][i] -= 1e-6
            numeric[i] = (float(loss(*map(cn.tensor, args_up)))
                          - float(loss(*map(cn.tensor, args_down)))) / 2e-6
        np.testing.assert_allclose(numpy_of(analytic), numeric, rtol=1e-6, atol=1e-8)


def test_issue12_backward_hooks_return_the_wrong_number_of_gradients():
    for lib in (cn, torch):
        module = lib.nn.Linear(2, 2)
        module.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
        with pytest.raises(RuntimeError, match="invalid number of grad_input"):
            module(lib.ones(1, 2, requires_grad=True)).sum().backward()


# -- Tensor.register_hook and retain_grad ------------------------------------------------------


def _tensor_hooks_scenario(lib, values):
    record = []
    a = lib.tensor(values, dtype=lib.float64, requires_grad=True)
    b = a * 2
    b.retain_grad()
    doubled = b.register_hook(lambda g: g * 100)  # replaces the gradient flowing on to a
    a.register_hook(lambda g: record.append(("a sees", g)))
    (b * b).sum().backward()
    record += [("a.grad", a.grad), ("b.grad (hooked, retained)", b.grad)]

    a.grad = None
    doubled.remove()
    b = a * 2
    b.retain_grad()
    (b * b).sum().backward()
    record += [("a.grad after remove", a.grad), ("b.grad", b.grad)]

    c = lib.tensor(values, dtype=lib.float64, requires_grad=True)
    c.register_hook(lambda g: g + 1)  # hooks run in the order registered
    c.register_hook(lambda g: g * 2)
    (c * 3).sum().backward()
    record.append(("two hooks on a leaf", c.grad))

    leaf = lib.tensor(values, dtype=lib.float64, requires_grad=True)
    middle = leaf.exp()
    middle.retain_grad()
    middle.register_hook(lambda g: g * 5)
    (middle.tanh()).sum().backward()
    record += [("middle.grad", middle.grad), ("leaf.grad", leaf.grad),
               ("retains_grad", middle.retains_grad)]
    return record


@settings(max_examples=25, deadline=None)
@given(values=st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=5))
def test_issue12_tensor_hooks_and_retain_grad_match_torch(values):
    got, expected = (_values(_tensor_hooks_scenario(lib, values)) for lib in (cn, torch))
    _assert_records_equal(got, expected, "tensor hook records")


def test_issue12_tensor_hook_errors_match_torch():
    for lib in (cn, torch):
        with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't "
                                               "require gradient"):
            lib.ones(2).register_hook(lambda g: g)
        x = lib.ones(2, requires_grad=True)
        x.register_hook(lambda g: g.sum())
        with pytest.raises(RuntimeError, match="has changed the size of value"):
            (x * 2).sum().backward()


# -- containers --------------------------------------------------------------------------------


def _module_list_scenario(lib):
    nn = lib.nn
    record = []
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU(), nn.Linear(2, 3)])
    record += [repr(layers), list(layers.state_dict()), len(layers)]
    record += [repr(layers[1:3]), type(layers[1:3]).__name__, repr(layers[-1]),
               repr(layers[::2])]
    joined = layers + nn.ModuleList([nn.Tanh()])
    record += [type(joined).__name__, len(joined), list(joined._modules)]
    del layers[0]
    record += [list(layers._modules), repr(layers)]
    layers.insert(1, nn.Sigmoid())
    layers.append(nn.ReLU())
    layers.extend([nn.Tanh(), nn.Sigmoid()])
    layers += [nn.ReLU()]
    layers[0] = nn.Identity()
    record += [repr(layers), [type(m).__name__ for m in layers], list(layers.state_dict())]
    record.append(repr(nn.ModuleList()))
    try:
        layers[20]
    except IndexError as err:
        record.append(("IndexError", str(err)))
    try:
        nn.ModuleList([1])
    except TypeError as err:
        record.append(("TypeError", str(err)))

    heads = nn.ModuleDict({"b": nn.Linear(1, 1), "a": nn.ReLU()})
    heads["c"] = nn.Linear(1, 2)
    heads.update([("d", nn.Tanh())])
    record += [repr(heads), list(heads.keys()), list(heads.state_dict()), "a" in heads,
               len(heads), [type(m).__name__ for m in heads.values()]]
    del heads["a"]
    record.append(list(heads))
    popped = heads.pop("d")
    record += [type(popped).__name__, list(heads)]
    try:
        heads["zzz"]
    except KeyError as err:
        record.append(("KeyError", str(err)))

    plist = nn.ParameterList([nn.Parameter(lib.ones(3, 3)), lib.zeros(3)])
    plist.append(lib.ones(2, dtype=lib.float64))
    record += [repr(plist), list(plist.state_dict()), [type(p).__name__ for p in plist],
               len(plist), [p.requires_grad for p in plist]]
    pdict = nn.ParameterDict({"w": nn.Parameter(lib.ones(2)), "b": lib.zeros(1)})
    pdict["c"] = lib.ones(1, 2)
    record += [repr(pdict), list(pdict.state_dict()), list(pdict.keys()), "w" in pdict,
               type(pdict["b"]).__name__]

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
            self.scales = nn.ParameterList([nn.Parameter(lib.ones(1))])
            self.heads = nn.ModuleDict({"out": nn.Linear(2, 1)})
            self.extra = nn.ParameterDict({"shift": nn.Parameter(lib.zeros(1))})

    holder = Holder()
    record += [repr(holder), list(holder.state_dict()),
               [name for name, _ in holder.named_parameters()]]
    return record


def test_issue12_containers_match_torch():
    got = _module_list_scenario(cn)
    expected = _module_list_scenario(torch)
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert a == b, f"item {i}:\n{a}\n!=\n{b}"


def test_issue12_gradients_through_containers_match_torch():
    rng = np.random.default_rng(5)
    weights = [rng.standard_normal((3, 3)) for _ in range(2)]
    scales = rng.standard_normal(3)
    x = rng.standard_normal((4, 3))
    results = []
    for lib in (cn, torch):
        nn = lib.nn
        layers = nn.ModuleList([nn.Linear(3, 3).double() for _ in range(2)])
        for layer, w in zip(layers, weights, strict=True):
            layer.weight = nn.Parameter(lib.tensor(w))
            layer.bias = nn.Parameter(lib.tensor(w[0]))
        scale = nn.ParameterList([lib.tensor(scales)])
        shift = nn.ParameterDict({"b": lib.tensor(scales * 2)})
        y = lib.tensor(x)
        for layer in layers:
            y = layer(y).tanh()
        (y * scale[0] + shift["b"]).sum().backward()
        optimizer = lib.optim.SGD([*layers.parameters(), *scale, *shift.values()], lr=0.1)
        optimizer.step()
        results.append([layers[0].weight.grad, layers[1].bias.grad, scale[0].grad,
                        shift["b"].grad, layers[0].weight])
    for i, (a, b) in enumerate(zip(*results, strict=True)):
        assert_same(a, b, f"gradient {i}")


def test_issue12_hooked_module_gradient_matches_finite_differences():
    """The identity op that backward hooks attach to is a new backward: float64 central
    differences of a hooked convolution's output agree with the gradient it gives."""
    module = _build(cn, "conv")
    seen = []
    module.register_full_backward_hook(lambda m, gi, go: seen.append(gi[0]))
    module.register_forward_hook(lambda m, args, out: out * 1.5)
    x0 = np.random.default_rng(7).standard_normal(INPUT_SHAPES["conv"])
    weights = np.random.default_rng(8).standard_normal((2, 3, 3, 2))

    def loss(array):
        return float((module(cn.tensor(array)) * cn.tensor(weights)).sum())

    x = cn.tensor(x0, requires_grad=True)
    (module(x) * cn.tensor(weights)).sum().backward()
    step, numeric = 1e-6, np.zeros_like(x0)
    for index in np.ndindex(x0.shape):
        up, down = x0.copy(), x0.copy()
        up[index] += step
        down[index] -= step
        numeric[index] = (loss(up) - loss(down)) / (2 * step)
    np.testing.assert_allclose(numpy_of(x.grad), numeric, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(numpy_of(seen[0]), numeric, rtol=1e-6, atol=1e-8)


def _sequential_scenario(lib):
    from collections import OrderedDict

    nn = lib.nn
    record = []
    seq = nn.Sequential(OrderedDict(a=nn.ReLU(), b=nn.Tanh(), c=nn.Sigmoid()))
    record.append(repr(seq[1:3]))
    del seq[0]
    record.append(list(seq._modules))
    seq.insert(1, nn.ReLU())
    seq[0] = nn.Identity()
    record += [repr(seq), list(seq._modules)]
    joined = seq + nn.Sequential(nn.ReLU())
    record += [repr(joined), type(joined).__name__]
    seq.extend([nn.ReLU()])
    record += [repr(seq.pop(1)), list(seq._modules)]
    seq += nn.Sequential(nn.Tanh())
    record += [repr(seq), len(seq)]
    return record


def test_issue12_sequential_list_operations_match_torch():
    assert _sequential_scenario(cn) == _sequential_scenario(torch)


def test_issue12_in_place_change_of_a_hooked_output_is_refused_as_torch():
    """The hooked output shares memory with the module's own output: changing it in place
    must not silently corrupt a saved value (PyTorch refuses at once, corrnet at backward)."""
    for lib in (cn, torch):
        module = lib.nn.Sigmoid()
        module.register_full_backward_hook(lambda *args: None)
        x = lib.ones(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="inplace"):
            module(x).mul_(2).sum().backward()
