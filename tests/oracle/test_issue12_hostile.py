"""Issue 12's API under hostile arguments, compared with PyTorch: each table is a class of
defect a probe of the new ops found (corrnet computing where PyTorch refuses, refusing where
it computes, a different value, or an error from inside NumPy or Python), widened to its
class. Where both raise, corrnet's error must be one of PyTorch's types and come from
corrnet's own checks."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from fuzz.worker import is_clear  # tests/ is on sys.path (tests/conftest.py)

import corrnet

CORRNET_DIR = os.path.dirname(os.path.abspath(corrnet.__file__))


def _clear(exc, expected=None) -> bool:
    """A clear error in the fuzzer's sense (tests/fuzz/worker.py): one of PyTorch's error types
    with a message, raised by a ``raise`` statement of corrnet's own source. A KeyError is
    clear where PyTorch's dict-like containers raise one too."""
    if isinstance(expected, KeyError) and isinstance(exc, KeyError):
        return True
    return is_clear(exc, CORRNET_DIR)


def _both(fn):
    """fn(lib) with torch and corrnet: ('ok', value) or ('raised', exception)."""
    out = []
    for lib in (torch, corrnet):
        try:
            out.append(("ok", fn(lib)))
        except Exception as exc:  # noqa: BLE001 - the outcome is compared
            out.append(("raised", exc))
    return out


def _namespace(lib):
    rng = np.random.default_rng(0)
    x2 = rng.normal(size=(3, 4)).astype(np.float32)
    return {"lib": lib, "F": lib.nn.functional, "nn": lib.nn, "np": np,
            "x2": lib.tensor(x2), "s": lib.tensor(np.float32(1.5)),
            "x4": lib.tensor(rng.normal(size=(2, 4, 3, 3)).astype(np.float32)),
            "e": lib.zeros(0, 3), "e4": lib.zeros(0, 4, 3, 3),
            "idx": lib.tensor(np.array([[0, 1], [2, 0], [1, 1]]))}


class _T(tuple):
    """A tensor's (dtype, shape, values)."""


def _values(value):
    if isinstance(value, (tuple, list)):
        return [_values(v) for v in value]
    if hasattr(value, "detach"):
        return _T((str(value.dtype), tuple(value.shape), value.detach().numpy()))
    return value


def _assert_close(g, e, call):
    if isinstance(e, _T):
        assert isinstance(g, _T), f"{call}: corrnet gave {g!r}"
        assert g[:2] == e[:2], f"{call}: {g[:2]} != PyTorch's {e[:2]}"
        np.testing.assert_allclose(g[2].astype(float), e[2].astype(float), rtol=1e-6,
                                   atol=1e-6, err_msg=call)
    elif isinstance(e, list):
        assert isinstance(g, list) and len(g) == len(e), f"{call}: {g!r} != PyTorch's {e!r}"
        for a, b in zip(g, e, strict=True):
            _assert_close(a, b, call)
    else:
        assert type(g) is type(e) and g == e, f"{call}: {g!r} != PyTorch's {e!r}"


def _same(call, **extra):
    """The call agrees with PyTorch: both return the same dtype, shape and values (to 1e-6),
    or both raise, corrnet an error of a clear type with a message."""
    def run(lib):
        namespace = _namespace(lib)
        namespace.update({k: v(lib) for k, v in extra.items()})
        return eval(call, namespace)  # noqa: S307 - the test's own table

    expected, got = _both(run)
    if expected[0] == "raised":
        assert got[0] == "raised", f"{call}: corrnet returned, PyTorch raised {expected[1]!r}"
        assert _clear(got[1]), f"{call}: {got[1]!r}"
        return
    assert got[0] == "ok", f"{call}: corrnet raised {got[1]!r}, PyTorch computed"
    _assert_close(_values(got[1]), _values(expected[1]), call)


# -- gather / scatter / scatter_add: negative indices, int32 indices --------------------------


@pytest.mark.parametrize("call", [
    "lib.gather(x2, 1, -idx - 1)",
    "lib.gather(x2, 0, -idx - 1)",
    "lib.gather(x2, 1, idx - 4)",
    "lib.scatter(x2, 1, -idx - 1, 2.0)",
    "lib.scatter(x2, 0, -idx - 1, x2)",
    "lib.scatter_add(x2, 1, -idx - 1, x2)",
    "x2.clone().scatter_(1, -idx - 1, 1.0)",
    "x2.clone().scatter_add_(1, -idx - 1, x2)",
    "lib.gather(x2, 1, idx.to(lib.int32))",
    "lib.gather(x2, 0, idx.to(lib.int32))",
    "lib.scatter(x2, 1, idx.to(lib.int32), 2.0)",
    "lib.scatter(x2, 1, idx.to(lib.int32), x2)",
    "lib.scatter_add(x2, 1, idx.to(lib.int32), x2)",
    "lib.gather(x2, 1, idx.to(lib.int16))",
    "lib.gather(x2, 1, idx.float())",
    "lib.gather(x2, 1, idx + 4)",
])
def test_issue12_gather_scatter_indices_as_torch(call):
    """A negative index is out of bounds for gather/scatter (PyTorch does not wrap it, where
    corrnet read from the end); int32 indices are taken as int64 ones."""
    _same(call)


# -- split of an empty dimension -------------------------------------------------------------


@pytest.mark.parametrize("call", [
    "lib.split(e, 1)", "lib.split(e, 2, 0)", "lib.split(e, 5)", "lib.split(e, 0)",
    "lib.split(e, [0])", "lib.split(e, 3, 1)", "lib.chunk(e, 3)", "e.split(1)",
])
def test_issue12_split_of_an_empty_dimension_is_one_empty_piece(call):
    _same(call)


# -- interpolate: non-finite scale factors, sizes beyond int64, 'area' to size 0 -------------


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic", "nearest-exact", "area"])
@pytest.mark.parametrize("arg", [
    "scale_factor=float('nan')", "scale_factor=float('inf')", "scale_factor=-float('inf')",
    "scale_factor=(2.0, float('nan'))", "scale_factor=1e300", "size=2**62", "size=(2**40, 2**40)",
    "scale_factor=0", "size=0", "scale_factor=0.1", "scale_factor=-1",
])
@pytest.mark.parametrize("x", ["x4", "e4"])
def test_issue12_interpolate_hostile_sizes_as_torch(mode, arg, x):
    _same(f"F.interpolate({x}, {arg}, mode={mode!r})")


# -- layer_norm's normalized_shape, prelu of a 0-d input --------------------------------------


@pytest.mark.parametrize("shape", ["4", "4.0", "None", "'4'", "(4,)", "[4]", "(4.0,)", "(3, 4)",
                                   "x2.shape[1:]", "()", "(True,)"])
@pytest.mark.parametrize("x", ["x2", "s", "e"])
def test_issue12_layer_norm_normalized_shape_as_torch(shape, x):
    """F.layer_norm takes a tuple or list of ints only (nn.LayerNorm takes a bare int)."""
    _same(f"F.layer_norm({x}, {shape})")


def test_issue12_layer_norm_module_takes_an_int():
    _same("nn.LayerNorm(4)(x2)")


@pytest.mark.parametrize("call", [
    "F.prelu(s, lib.ones(1))", "F.prelu(s, lib.ones(()))", "F.prelu(x2, lib.ones(1) * 0.25)",
    "F.prelu(x4, lib.ones(4) * 0.25)", "F.prelu(lib.zeros(0), lib.ones(1))",
    "nn.PReLU()(s)", "F.prelu(s, lib.ones(2))",
])
def test_issue12_prelu_output_has_the_input_shape(call):
    _same(call)


# -- the new_* constructors' requires_grad ----------------------------------------------------


@pytest.mark.parametrize("call", [
    "x2.new_zeros((2, 3), requires_grad=1)", "x2.new_ones(2, requires_grad=1)",
    "x2.new_full((2,), 2.5, requires_grad=1)", "x2.new_tensor([1.0], requires_grad=1)",
    "x2.new_empty((2,), requires_grad=1).shape", "x2.new_zeros((2,), requires_grad=None)",
    "x2.new_ones((2,), requires_grad='yes')", "x2.new_zeros((2,), requires_grad=True)",
])
def test_issue12_new_constructors_requires_grad_is_a_bool(call):
    _same(call)


# -- clip_grad_norm_ / clip_grad_value_: their limits and parameters --------------------------


def _params(lib):
    a = lib.nn.Parameter(lib.tensor([[3.0, -4.0], [1.0, 2.0]]))
    b = lib.nn.Parameter(lib.tensor([0.5, -12.0]))
    a.grad, b.grad = lib.tensor([[3.0, -4.0], [1.0, 2.0]]), lib.tensor([0.5, -12.0])
    return [a, b]


@pytest.mark.parametrize("fn", ["clip_grad_norm_", "clip_grad_value_"])
@pytest.mark.parametrize("limit", ["1.0", "1", "True", "lib.tensor(1.0)", "lib.tensor([1.0])",
                                   "lib.tensor(2.0, dtype=lib.float64)", "lib.tensor([1.0, 2.0])",
                                   "'a'", "None", "float('inf')"])
@pytest.mark.parametrize("params", ["ps", "ps[0]", "iter(ps)", "None", "3", "[]", "[1.0]"])
def test_issue12_clip_grad_arguments_as_torch(fn, limit, params):
    """The limit may be a one-element tensor (PyTorch takes float() of it); parameters that
    are not tensors are a TypeError from corrnet's check. The gradients after clipping agree."""
    def call(lib):
        ps = _params(lib)
        namespace = {"lib": lib, "ps": ps}
        out = eval(f"lib.nn.utils.{fn}({params}, {limit})", namespace)  # noqa: S307
        return [out, [p.grad for p in ps]]

    expected, got = _both(call)
    if expected[0] == "raised":
        if fn == "clip_grad_value_" and params == "[]" and got[0] == "ok":
            # PyTorch's foreach kernel fails on an empty list ("Expected
            # !nested_tensorlist[0].empty()"), where its clip_grad_norm_ returns 0: corrnet
            # follows the documented rule (nothing to clip)
            assert got[1][0] is None, got
            return
        assert got[0] == "raised" and _clear(got[1]), got
        return
    assert got[0] == "ok", got
    _assert_close(_values(got[1]), _values(expected[1]), f"{fn}({params}, {limit})")


# -- schedulers: what a lambda returns, OneCycleLR's factors, ReduceLROnPlateau's metric -------


def _schedule(lib, name, kwargs, metric=1.0):
    p = lib.nn.Parameter(lib.ones(2))
    p.grad = lib.ones(2)
    opt = lib.optim.SGD([p], lr=0.1, momentum=0.9)
    scheduler = getattr(lib.optim.lr_scheduler, name)(opt, **kwargs)
    lrs = []
    for _ in range(6):
        opt.step()
        scheduler.step(metric) if name == "ReduceLROnPlateau" else scheduler.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


@pytest.mark.parametrize("name, kwargs, metric", [
    ("LambdaLR", {"lr_lambda": lambda e: "a"}, None),
    ("LambdaLR", {"lr_lambda": lambda e: None}, None),
    ("LambdaLR", {"lr_lambda": lambda e: [1.0]}, None),
    ("LambdaLR", {"lr_lambda": lambda e: 0.5 ** e}, None),
    ("LambdaLR", {"lr_lambda": lambda e: e}, None),
    ("OneCycleLR", {"max_lr": 1.0, "total_steps": 10, "div_factor": 0}, None),
    ("OneCycleLR", {"max_lr": 1.0, "total_steps": 10, "final_div_factor": 0}, None),
    ("OneCycleLR", {"max_lr": "a", "total_steps": 10}, None),
    ("OneCycleLR", {"max_lr": None, "total_steps": 10}, None),
    ("OneCycleLR", {"max_lr": 1.0, "total_steps": 10, "div_factor": "a"}, None),
    ("OneCycleLR", {"max_lr": 1.0, "total_steps": 10, "div_factor": 2, "final_div_factor": 3},
     None),
    ("ReduceLROnPlateau", {"patience": 0}, "a"),
    ("ReduceLROnPlateau", {"patience": 0}, None),
    ("ReduceLROnPlateau", {"patience": 0}, [1.0]),
    ("ReduceLROnPlateau", {"patience": 0}, 2),
])
def test_issue12_scheduler_arguments_as_torch(name, kwargs, metric):
    """A refusal is corrnet's own error of PyTorch's type (PyTorch's comes from Python: a
    ZeroDivisionError for a zero factor, where corrnet's is a ValueError); values agree."""
    expected, got = _both(lambda lib: _schedule(lib, name, kwargs, metric))
    if expected[0] == "raised":
        assert got[0] == "raised" and _clear(got[1]), got
        return
    assert got[0] == "ok", got
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-12)


# -- containers and datasets given what they cannot hold --------------------------------------


class _Numbers(torch.utils.data.Dataset):
    """A map-style dataset that both libraries accept (PyTorch's base class; corrnet's only
    needs __len__ and __getitem__)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i * 10


@pytest.mark.parametrize("call", [
    "nn.ModuleList([nn.ReLU()])['a']", "nn.ModuleList([nn.ReLU()])[1.0]",
    "nn.ModuleList([nn.ReLU()])[None]", "nn.ModuleList([nn.ReLU()])[0].__class__.__name__",
    "nn.ModuleList([nn.ReLU()]).extend(3)", "nn.ModuleList(3)", "nn.ModuleList(None).__len__()",
    "len(nn.ModuleList([nn.ReLU()]) + [nn.Tanh()])", "nn.ModuleList([nn.ReLU()]) + 3",
    "len(nn.ModuleList([nn.ReLU()]) + (nn.Tanh(),))",
    "nn.ModuleDict(3)", "nn.ModuleDict({'a': nn.ReLU()}).update(3)",
    "nn.ModuleDict({'a': nn.ReLU()}).update([('b',)])", "nn.ModuleDict(None).__len__()",
    "nn.ParameterList(3)", "nn.ParameterList([lib.ones(2)]).extend(3)",
    "nn.ParameterList([lib.ones(2)])['a']", "nn.ParameterList([lib.ones(2)])[2]",
    "nn.ParameterDict(3)", "nn.ParameterDict({'a': lib.ones(2)}).update(3)",
    "nn.ParameterDict({1: lib.ones(2)})", "nn.ParameterDict({'a.b': lib.ones(2)})",
    "nn.ParameterDict({'': lib.ones(2)})", "nn.ParameterDict([(2, lib.ones(2))])",
    "sorted(nn.ParameterDict({'b': lib.ones(2), 'a': lib.ones(1)}).keys())",
])
def test_issue12_containers_refuse_what_torch_refuses(call):
    """A TypeError (or KeyError, as PyTorch's dict-like containers) from corrnet's own check,
    not Python's from inside the container's code."""
    expected, got = _both(lambda lib: eval(call, _namespace(lib)))  # noqa: S307
    assert expected[0] == got[0], (call, expected, got)
    if expected[0] == "raised":
        assert _clear(got[1], expected[1]), (call, got)
    else:
        assert got[1] == expected[1] or not isinstance(expected[1], (int, str, list)), call


@pytest.mark.parametrize("call", [
    "len(data.ConcatDataset([N(3), N(2)]))", "data.ConcatDataset(None)",
    "data.ConcatDataset(3)", "data.ConcatDataset([3])", "data.ConcatDataset([N(3), 5])",
    "data.random_split(list(range(5)), None)", "data.random_split(list(range(5)), 3)",
    "[len(p) for p in data.random_split(list(range(5)), [3, 2])]",
    "data.WeightedRandomSampler('ab', 5)", "data.WeightedRandomSampler([[1.0, 'a']], 5)",
    "data.WeightedRandomSampler(None, 5)", "len(data.WeightedRandomSampler([1.0, 2.0], 5))",
])
def test_issue12_datasets_refuse_what_torch_refuses(call):
    def run(lib):
        namespace = {"data": lib.utils.data, "N": _Numbers, "lib": lib}
        return eval(call, namespace)  # noqa: S307

    expected, got = _both(run)
    assert expected[0] == got[0], (call, expected, got)
    if expected[0] == "raised":
        assert _clear(got[1]), (call, got)
    else:
        assert got[1] == expected[1], call


# -- tensor-op arguments PyTorch's function forms refuse ---------------------------------------


@pytest.mark.parametrize("call", [
    "lib.argsort(x2, stable=None)", "lib.argsort(x2, stable=1)", "lib.argsort(x2, stable=True)",
    "x2.argsort(stable='yes')",
    "lib.logsumexp(x2, None)", "lib.logsumexp(s, None)", "x2.logsumexp(None)",
    "lib.logsumexp(x2, 1)", "lib.logsumexp(x2, (0, 1))", "lib.logsumexp(x2, (), keepdim=True)",
    "lib.cumsum(x2, 0, dtype=lib.bool)", "lib.cumsum(idx, 1, dtype=lib.bool)",
    "lib.cumsum(idx > 0, 1)", "lib.cumsum(x2, 1, dtype=lib.float64)",
    "lib.cumsum(s, 0, dtype=lib.bool)", "lib.cumsum(e, 1, dtype=lib.bool)",
    "lib.gather(x2, 1, idx, sparse_grad=False)", "x2.gather(1, idx, sparse_grad=False)",
    "lib.gather(x2, 1, idx, sparse_grad=1)", "lib.gather(x2, 1, idx, sparse_grad=None)",
    "lib.flip(x2, 0)", "lib.flip(s, -1)", "lib.flip(x2, (0,))", "lib.flip(x2, [0, 1])",
    "lib.flip(x2, None)", "lib.flip(x2, (0, 0))", "x2.flip(0)", "x2.flip(0, 1)", "s.flip(0)",
])
def test_issue12_tensor_op_arguments_as_torch(call):
    _same(call)


# -- softplus where exp overflows the dtype ----------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("beta, threshold", [(1.0, 20.0), (2.0, 1e30), (1.0, float("inf")),
                                             (0.5, 20.0), (1.0, 5.0), (3.0, 1e4)])
def test_issue12_softplus_where_exp_overflows_as_torch(dtype, beta, threshold):
    """float16 softplus between log(65504) = 11.09 and the threshold (20 by default) was inf
    with NaN gradients (PyTorch computes in float32); a threshold beyond the dtype's range was
    refused by the clamp inside."""
    x0 = np.array([-30, -15, -1, 0, 1, 5, 11.05, 11.08, 12, 15, 19, 25, 60, 100, 400, 800],
                  dtype=np.float64)
    seen = []
    for lib in (torch, corrnet):
        x = lib.tensor(x0).to(getattr(lib, dtype)).requires_grad_()
        y = lib.nn.functional.softplus(x, beta, threshold)
        y.backward(lib.ones_like(y))
        seen.append((y.detach().double().numpy(), x.grad.double().numpy(), str(y.dtype)))
    (ty, tg, tdt), (cy, cg, cdt) = seen
    assert cdt == tdt
    rtol = {"float16": 2e-3, "float32": 1e-6, "float64": 1e-12}[dtype]
    np.testing.assert_allclose(cy, ty, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(cg, tg, rtol=rtol, atol=rtol)


# -- instance_norm with statistics or affine parameters of another float dtype ----------------


@pytest.mark.parametrize("x_dtype, p_dtype", [("float16", "float32"), ("float32", "float64"),
                                              ("float64", "float32"), ("float32", "float16")])
@pytest.mark.parametrize("use_input_stats", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_issue12_instance_norm_mixed_float_dtypes_as_torch(x_dtype, p_dtype, use_input_stats,
                                                           affine):
    """PyTorch's instance_norm computes in the input's dtype with running statistics (and
    weight, bias) of another float dtype, updating the statistics in their own; corrnet
    refused ("expected running_mean to have the same dtype as input")."""
    rng = np.random.default_rng(3)
    x0 = rng.normal(size=(2, 3, 4, 4))
    w0, b0 = rng.uniform(0.5, 2, 3), rng.normal(size=3)
    def run(lib):
        pd = getattr(lib, p_dtype)
        x = lib.tensor(x0).to(getattr(lib, x_dtype)).requires_grad_()
        rm, rv = lib.zeros(3, dtype=pd), lib.ones(3, dtype=pd)
        w = lib.tensor(w0).to(pd).requires_grad_() if affine else None
        b = lib.tensor(b0).to(pd).requires_grad_() if affine else None
        y = lib.nn.functional.instance_norm(x, rm, rv, w, b, use_input_stats=use_input_stats)
        y.backward(lib.ones_like(y) * 0.5 + x.detach())
        return [(str(t.dtype), t.detach().double().numpy())
                for t in (y, x.grad, rm, rv) + ((w.grad, b.grad) if affine else ())]

    seen = _both(run)
    if seen[0][0] == "raised":  # a weight of another dtype, but float32 with float16 input
        assert seen[1][0] == "raised" and _clear(seen[1][1]), seen
        return
    assert seen[1][0] == "ok", seen
    seen = [seen[0][1], seen[1][1]]
    rtol = 2e-2 if "float16" in (x_dtype, p_dtype) else 1e-5
    for (tdt, t), (cdt, c) in zip(*seen, strict=True):
        assert cdt == tdt
        np.testing.assert_allclose(c, t, rtol=rtol, atol=rtol)
