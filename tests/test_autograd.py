"""Reverse-mode autograd against PyTorch: engine semantics (accumulation, retain_graph, no_grad,
in-place and version-counter errors, deep graphs) and, for every differentiable op, input
gradients compared with torch's for the same inputs and the same random upstream gradient.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import corrnet as cn

from torch_compare import (
    FLOAT_DTYPES,
    NP_DTYPES,
    assert_grad,
    assert_same,
    both,
    draw_reshape_target,
    numpy_of,
    seeds,
)

GRAD = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DAG = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_array(rng, shape, dtype: str, kind: str = "any") -> np.ndarray:
    """'any': U(-2, 2); 'positive': U(0.5, 2); 'nonzero': +-U(0.5, 2); 'unitish': +-U(0.7, 1.3);
    'with_zero': unitish with one element set to 0; 'distinct': no ties, spaced >= 0.05 apart."""
    shape = tuple(shape)
    if kind == "positive":
        v = rng.uniform(0.5, 2.0, shape)
    elif kind == "nonzero":
        v = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    elif kind == "unitish":
        v = rng.uniform(0.7, 1.3, shape) * rng.choice([-1.0, 1.0], shape)
    elif kind == "with_zero":
        v = rng.uniform(0.7, 1.3, shape) * rng.choice([-1.0, 1.0], shape)
        v.flat[rng.integers(0, v.size)] = 0.0
    elif kind == "distinct":
        n = math.prod(shape)
        v = ((rng.permutation(n) - n / 2) * 0.25 + rng.uniform(-0.1, 0.1, n)).reshape(shape)
    else:
        v = rng.uniform(-2.0, 2.0, shape)
    return np.asarray(v, dtype=NP_DTYPES[dtype])


def shapes(min_dims=0, max_dims=4, min_side=1, max_side=3):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def compare_grads(inputs, fn, dtype, seed, what=""):
    """Run fn on fresh leaves in both libraries; backward the same random upstream gradient."""
    rng = np.random.default_rng(seed)
    arrays = [make_array(rng, shape, dtype, kind) for shape, kind in inputs]
    xs_cn = [cn.tensor(a, requires_grad=True) for a in arrays]
    xs_th = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_cn = fn(cn, *xs_cn)
    out_th = fn(torch, *xs_th)
    assert_same(out_cn, out_th, f"{what} forward")
    assert out_cn.requires_grad
    upstream = rng.standard_normal(tuple(out_th.shape)).astype(out_th.detach().numpy().dtype)
    out_cn.backward(gradient=cn.tensor(upstream))
    out_th.backward(gradient=torch.tensor(upstream))
    for i, (x_cn, x_th) in enumerate(zip(xs_cn, xs_th, strict=True)):
        assert_grad(x_cn.grad, x_th.grad, f"{what} grad of input {i} {tuple(x_th.shape)}")


# --------------------------------------------------------------------------- op cases


def _bcast(n=2, max_dims=4):
    return hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=max_dims,
                                             max_side=3)


def binary(fn, kind_a="any", kind_b="any"):
    return _bcast().map(lambda bs: ([(bs.input_shapes[0], kind_a),
                                     (bs.input_shapes[1], kind_b)], fn))


def unary(fn, kind="any", min_dims=0, max_dims=4):
    return shapes(min_dims=min_dims, max_dims=max_dims).map(lambda s: ([(s, kind)], fn))


@st.composite
def reduction(draw, name, kind="any", max_dims=4, keyword_dim=True):
    shape = draw(shapes(min_dims=0, max_dims=max_dims))
    dims = [None] + list(range(-len(shape), len(shape)))
    dim = draw(st.sampled_from(dims))
    keepdim = draw(st.booleans())

    def fn(M, x):
        if dim is None:
            return getattr(x, name)()
        if keyword_dim:
            return getattr(x, name)(dim=dim, keepdim=keepdim)
        return getattr(x, name)(dim, keepdim)

    return [(shape, kind)], fn


@st.composite
def extreme_along_dim(draw, name, part):
    shape = draw(shapes(min_dims=1))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    keepdim = draw(st.booleans())

    def fn(M, x):
        res = getattr(x, name)(dim, keepdim=keepdim)
        return res.values if part == "values" else res[0]

    return [(shape, "distinct")], fn


@st.composite
def matmul_case(draw, form):
    n, k, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    if form == "mm":
        return [((n, k), "any"), ((k, m), "any")], lambda M, a, b: M.mm(a, b)
    a_core = draw(st.sampled_from([(k,), (n, k)]))
    b_core = draw(st.sampled_from([(k,), (k, m)]))
    bs = draw(_bcast(max_dims=2))
    a_batch = () if len(a_core) == 1 else tuple(bs.input_shapes[0])
    b_batch = () if len(b_core) == 1 else tuple(bs.input_shapes[1])
    fns = {"matmul": lambda M, a, b: M.matmul(a, b), "at": lambda M, a, b: a @ b,
           "matmul_method": lambda M, a, b: a.matmul(b)}
    return [(a_batch + a_core, "any"), (b_batch + b_core, "any")], fns[form]


@st.composite
def reshape_case(draw, method):
    shape = draw(shapes(min_dims=0, max_dims=4))
    target = draw_reshape_target(draw, shape)
    permute_first = method == "reshape" and len(shape) >= 2 and draw(st.booleans())

    def fn(M, x):
        if permute_first:
            x = x.transpose(0, -1)
        return getattr(x, method)(target)

    return [(shape, "any")], fn


@st.composite
def permute_case(draw):
    shape = draw(shapes(min_dims=1))
    perm = tuple(draw(st.permutations(range(len(shape)))))
    return [(shape, "any")], lambda M, x: x.permute(*perm)


@st.composite
def transpose_case(draw):
    shape = draw(shapes(min_dims=1))
    d0 = draw(st.integers(-len(shape), len(shape) - 1))
    d1 = draw(st.integers(-len(shape), len(shape) - 1))
    return [(shape, "any")], lambda M, x: x.transpose(d0, d1)


@st.composite
def flatten_case(draw):
    shape = draw(shapes(min_dims=0))
    nd = max(len(shape), 1)
    s = draw(st.integers(0, nd - 1))
    e = draw(st.integers(s, nd - 1))
    return [(shape, "any")], lambda M, x: x.flatten(s, e)


@st.composite
def squeeze_case(draw):
    shape = draw(shapes(min_dims=0, max_side=2))
    if shape and draw(st.booleans()):
        d = draw(st.integers(-len(shape), len(shape) - 1))
        return [(shape, "any")], lambda M, x: x.squeeze(d)
    return [(shape, "any")], lambda M, x: x.squeeze()


@st.composite
def unsqueeze_case(draw):
    shape = draw(shapes(min_dims=0))
    d = draw(st.integers(-len(shape) - 1, len(shape)))
    return [(shape, "any")], lambda M, x: x.unsqueeze(d)


@st.composite
def expand_case(draw):
    shape = draw(shapes(min_dims=0, max_dims=3, max_side=2))
    target = tuple(draw(st.sampled_from([1, 2, 3, -1])) if s == 1 else -1 for s in shape)
    target = tuple(draw(st.lists(st.integers(1, 3), max_size=2))) + target
    if not target:
        target = (2,)
    return [(shape, "any")], lambda M, x: x.expand(*target)


@st.composite
def stack_case(draw):
    shape = draw(shapes(min_dims=0, max_dims=3))
    n = draw(st.integers(1, 3))
    d = draw(st.integers(-len(shape) - 1, len(shape)))
    return [(shape, "any")] * n, lambda M, *xs: M.stack(xs, dim=d)


@st.composite
def cat_case(draw):
    shape = draw(shapes(min_dims=1, max_dims=3))
    d = draw(st.integers(-len(shape), len(shape) - 1))
    inputs = []
    for size in draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)):
        s = list(shape)
        s[d] = size
        inputs.append((tuple(s), "any"))
    return inputs, lambda M, *xs: M.cat(list(xs), dim=d)


@st.composite
def basic_index_case(draw):
    shape = draw(shapes(min_dims=1, max_side=4))
    index = []
    for size in shape:
        kind = draw(st.sampled_from(["int", "slice", "full"]))
        if kind == "int":
            index.append(draw(st.integers(-size, size - 1)))
        elif kind == "slice":
            index.append(slice(draw(st.none() | st.integers(-size, size)),
                               draw(st.none() | st.integers(-size, size)),
                               draw(st.sampled_from([None, 1, 2]))))
        else:
            index.append(slice(None))
    if draw(st.booleans()):
        index.insert(draw(st.integers(0, len(index))), None)
    index = tuple(index)
    return [(shape, "any")], lambda M, x: x[index]


@st.composite
def advanced_index_case(draw):
    """Integer-array indexing with repeated indices: their gradients must accumulate."""
    shape = draw(shapes(min_dims=1, max_side=4))
    d = draw(st.integers(0, len(shape) - 1))
    idx = draw(st.lists(st.integers(-shape[d], shape[d] - 1), min_size=1, max_size=6))
    as_tensor = draw(st.booleans())

    def fn(M, x):
        i = M.tensor(idx) if as_tensor else list(idx)
        return x[(slice(None),) * d + (i,)]

    return [(shape, "any")], fn


@st.composite
def mask_index_case(draw):
    shape = draw(shapes(min_dims=1))
    rng = np.random.default_rng(draw(seeds))
    mask = rng.random(shape) < 0.5
    return [(shape, "any")], lambda M, x: x[M.tensor(mask)]


def _nonempty_basic_index(draw, shape):
    index = []
    for size in shape:
        kind = draw(st.sampled_from(["int", "slice", "full"]))
        if kind == "int":
            index.append(draw(st.integers(-size, size - 1)))
        elif kind == "slice":
            index.append(slice(draw(st.integers(0, size - 1)), None,
                               draw(st.sampled_from([None, 2]))))
        else:
            index.append(slice(None))
    index = tuple(index)
    return index, np.zeros(shape)[index].shape


@st.composite
def setitem_case(draw):
    """y = x.clone(); y[index] = v  (torch's CopySlices): grads to both x and v."""
    shape = draw(shapes(min_dims=1, max_side=4))
    index, target = _nonempty_basic_index(draw, shape)
    vshape = draw(st.sampled_from([target, target[-1:], ()]))

    def fn(M, x, v):
        y = x.clone()
        y[index] = v
        return y

    return [(shape, "any"), (vshape, "any")], fn


@st.composite
def view_inplace_case(draw):
    """In-place arithmetic through a view of a non-leaf: y[index] += w; y[index] *= v."""
    shape = draw(shapes(min_dims=1, max_side=4))
    index, target = _nonempty_basic_index(draw, shape)
    wshape = draw(st.sampled_from([target, target[-1:], ()]))
    vshape = draw(st.sampled_from([target, target[-1:], ()]))

    def fn(M, x, w, v):
        y = x * 1.5
        y[index] += w
        y[index] *= v
        return y

    return [(shape, "any"), (wshape, "any"), (vshape, "any")], fn


@st.composite
def where_case(draw):
    bs = draw(_bcast())
    return ([(bs.input_shapes[0], "any"), (bs.input_shapes[1], "any")],
            lambda M, x, y: M.where(x > 0.3, x, y))


@st.composite
def inplace_case(draw):
    """In-place arithmetic on a non-leaf (+=, *=, -=, /=), then backward to all operands."""
    shape = draw(shapes(min_dims=1))
    others = [draw(st.sampled_from([shape, shape[-1:], ()])) for _ in range(3)]

    def fn(M, x, z, w, u):
        y = x.clone()
        y += z
        y *= w
        y -= 0.5 * z
        y /= u
        return y

    return [(shape, "any"), (others[0], "any"), (others[1], "any"), (others[2], "nonzero")], fn


def _conversion(fn):
    return shapes().map(lambda s: ([(s, "any")], fn))


GRAD_CASES = {
    # elementwise binary, broadcasting
    "add": binary(lambda M, a, b: a + b),
    "sub": binary(lambda M, a, b: a - b),
    "mul": binary(lambda M, a, b: a * b),
    "div": binary(lambda M, a, b: a / b, "any", "nonzero"),
    "pow": binary(lambda M, a, b: a ** b, "positive", "any"),
    "add_method": binary(lambda M, a, b: a.add(b)),
    "mul_method": binary(lambda M, a, b: a.mul(b)),
    "where": where_case(),
    "where_scalar": unary(lambda M, x: M.where(x > 0, x, 0.0)),
    # python scalars on either side
    "add_scalar": unary(lambda M, x: x + 2.5),
    "radd_scalar": unary(lambda M, x: 2.5 + x),
    "sub_scalar": unary(lambda M, x: x - 1.5),
    "rsub_scalar": unary(lambda M, x: 1.5 - x),
    "mul_scalar": unary(lambda M, x: x * -0.5),
    "rmul_scalar": unary(lambda M, x: 3 * x),
    "div_scalar": unary(lambda M, x: x / 4.0),
    "rdiv_scalar": unary(lambda M, x: 2.0 / x, "nonzero"),
    "pow_scalar_2": unary(lambda M, x: x ** 2),
    "pow_scalar_3": unary(lambda M, x: x ** 3),
    "pow_scalar_half": unary(lambda M, x: x ** 0.5, "positive"),
    "pow_scalar_neg": unary(lambda M, x: x ** -1.5, "positive"),
    "rpow_scalar": unary(lambda M, x: 2.0 ** x),
    "neg": unary(lambda M, x: -x),
    # unary
    "abs": unary(lambda M, x: x.abs(), "nonzero"),
    "abs_builtin": unary(lambda M, x: abs(x), "nonzero"),
    "exp": unary(lambda M, x: x.exp()),
    "exp_fn": unary(lambda M, x: M.exp(x)),
    "log": unary(lambda M, x: x.log(), "positive"),
    "log_fn": unary(lambda M, x: M.log(x), "positive"),
    "sqrt": unary(lambda M, x: x.sqrt(), "positive"),
    "clamp": unary(lambda M, x: x.clamp(-0.5, 0.7)),
    "clamp_min": unary(lambda M, x: x.clamp(min=0.2)),
    "clamp_max": unary(lambda M, x: x.clamp(max=-0.3)),
    "clamp_fn": unary(lambda M, x: M.clamp(x, min=-1.0, max=1.0)),
    # matrix products
    "mm": matmul_case("mm"),
    "matmul": matmul_case("matmul"),
    "matmul_operator": matmul_case("at"),
    "matmul_method": matmul_case("matmul_method"),
    # reductions
    "sum": reduction("sum"),
    "sum_positional": reduction("sum", keyword_dim=False),
    "mean": reduction("mean"),
    "prod": reduction("prod", "unitish", max_dims=3),
    "prod_with_a_zero": reduction("prod", "with_zero", max_dims=3),
    "norm": reduction("norm"),
    "max_all": unary(lambda M, x: x.max(), "distinct"),
    "min_all": unary(lambda M, x: x.min(), "distinct"),
    "max_dim_values": extreme_along_dim("max", "values"),
    "max_dim_item0": extreme_along_dim("max", "item0"),
    "min_dim_values": extreme_along_dim("min", "values"),
    "sum_fn": unary(lambda M, x: M.sum(x)),
    "mean_fn": unary(lambda M, x: M.mean(x)),
    # shape
    "reshape": reshape_case("reshape"),
    "view": reshape_case("view"),
    "permute": permute_case(),
    "transpose": transpose_case(),
    "t": unary(lambda M, x: x.t(), max_dims=2),
    "flatten": flatten_case(),
    "squeeze": squeeze_case(),
    "unsqueeze": unsqueeze_case(),
    "expand": expand_case(),
    "contiguous": unary(lambda M, x: x.transpose(0, -1).contiguous(), min_dims=1),
    "stack": stack_case(),
    "cat": cat_case(),
    # indexing
    "getitem_basic": basic_index_case(),
    "getitem_advanced_repeated": advanced_index_case(),
    "getitem_mask": mask_index_case(),
    "setitem": setitem_case(),
    "view_inplace": view_inplace_case(),
    "iterate_rows": unary(lambda M, x: M.stack([r * (i + 1) for i, r in enumerate(x)]),
                          min_dims=1),
    # copies and casts
    "clone": unary(lambda M, x: x.clone()),
    "float": _conversion(lambda M, x: x.float() * 1),
    "double": _conversion(lambda M, x: x.double() * 1),
    "to_float64": _conversion(lambda M, x: x.to(M.float64) * 1),
    "to_float32": _conversion(lambda M, x: x.to(dtype=M.float32) * 1),
    # in-place on non-leaves
    "inplace_arith": inplace_case(),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
@GRAD
@given(data=st.data(), dtype=st.sampled_from(FLOAT_DTYPES), seed=seeds)
def test_op_gradients_match_torch(name, data, dtype, seed):
    inputs, fn = data.draw(GRAD_CASES[name], label="case")
    compare_grads(inputs, fn, dtype, seed, f"{name} {inputs}")


@st.composite
def programs(draw):
    leaf_shapes = draw(st.lists(st.sampled_from([(2, 3), (3,), (), (2, 1)]), min_size=1,
                                max_size=3))
    steps = draw(st.lists(st.tuples(st.sampled_from(["add", "sub", "mul", "div", "exp"]),
                                    st.integers(0, 1000), st.integers(0, 1000)),
                          min_size=1, max_size=15))
    return leaf_shapes, steps


def run_program(M, leaves, steps):
    nodes = list(leaves)
    for op, i, j in steps:
        a, b = nodes[i % len(nodes)], nodes[j % len(nodes)]
        if op == "add":
            r = a + b
        elif op == "sub":
            r = a - b
        elif op == "mul":
            r = a * b
        elif op == "div":
            r = a / (1.5 + b.abs())
        else:
            r = (a * 0.5).exp() - b
        nodes.append(r / (1 + r.abs()))
    out = nodes[-1].sum()
    for k, node in enumerate(nodes[len(leaves):-1]):
        out = out + node.sum() * (0.5 + 0.1 * k)
    return out


@DAG
@given(program=programs(), dtype=st.sampled_from(FLOAT_DTYPES), seed=seeds)
def test_random_graphs_match_torch(program, dtype, seed):
    """Random DAGs with shared subexpressions and broadcasting: every path must be summed."""
    leaf_shapes, steps = program
    rng = np.random.default_rng(seed)
    arrays = [make_array(rng, s, dtype) for s in leaf_shapes]
    leaves_cn = [cn.tensor(a, requires_grad=True) for a in arrays]
    leaves_th = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_cn, out_th = run_program(cn, leaves_cn, steps), run_program(torch, leaves_th, steps)
    assert_same(out_cn, out_th, "forward")
    out_cn.backward()
    out_th.backward()
    for i, (a, b) in enumerate(zip(leaves_cn, leaves_th, strict=True)):
        assert_grad(a.grad, b.grad, f"leaf {i}")


# --------------------------------------------------------------------------- semantics


def test_requires_grad_flags():
    for M in (cn, torch):
        x = M.tensor([1.0, 2.0])
        assert not x.requires_grad and x.grad is None and x.grad_fn is None
        w = M.tensor([1.0, 2.0], requires_grad=True)
        assert w.requires_grad and w.grad is None and w.grad_fn is None
        y = x * w
        assert y.requires_grad and y.grad_fn is not None
        z = x * 2
        assert not z.requires_grad and z.grad_fn is None


@pytest.mark.parametrize(
    "make",
    [
        lambda M: M.tensor([1.0, 2.0], requires_grad=True),
        lambda M: M.zeros(2, requires_grad=True),
        lambda M: M.ones((2, 3), requires_grad=True),
        lambda M: M.randn(2, 2, requires_grad=True),
        lambda M: M.rand(3, requires_grad=True),
        lambda M: M.normal(0, 0.01, size=(2, 1), requires_grad=True),
        lambda M: M.full((2,), 0.5, requires_grad=True),
    ],
    ids=["tensor", "zeros", "ones", "randn", "rand", "normal", "full"],
)
def test_factories_accept_requires_grad(make):
    """The d2l idiom `w = torch.normal(0, 0.01, size=(2, 1), requires_grad=True)`."""
    x = make(cn)
    expected = make(torch)
    assert x.requires_grad and x.grad_fn is None
    assert str(x.dtype) == str(expected.dtype) and tuple(x.shape) == tuple(expected.shape)
    (x * 2).sum().backward()
    assert_same(x.grad, torch.full(tuple(expected.shape), 2.0), "grad of sum(2x)")


def test_requires_grad_setter_and_method():
    arr = np.array([1.0, -2.0, 3.0], dtype=np.float32)
    grads = []
    for M in (cn, torch):
        x = M.tensor(arr)
        assert x.requires_grad_() is x
        assert x.requires_grad
        (x * x).sum().backward()
        grads.append(x.grad)
        y = M.tensor(arr)
        y.requires_grad = True
        assert y.requires_grad
        y.requires_grad_(False)
        assert not y.requires_grad
    assert_same(grads[0], grads[1], "grad after requires_grad_()")


def test_backward_on_scalar_without_arguments():
    arr = np.array([[1.0, 2.0], [3.0, -4.0]], dtype=np.float32)
    x_cn, x_th = both(arr, requires_grad=True)
    (x_cn * x_cn).mean().backward()
    (x_th * x_th).mean().backward()
    assert_same(x_cn.grad, x_th.grad, "grad of mean(x*x)")


@pytest.mark.parametrize("style", ["keyword", "positional"])
def test_backward_with_gradient_argument(style):
    rng = np.random.default_rng(0)
    arr = rng.standard_normal((2, 3)).astype(np.float32)
    g = rng.standard_normal((2, 3)).astype(np.float32)
    x_cn, x_th = both(arr, requires_grad=True)
    for M, x in ((cn, x_cn), (torch, x_th)):
        y = x * x
        if style == "keyword":
            y.backward(gradient=M.tensor(g))
        else:
            y.backward(M.tensor(g))
    assert_same(x_cn.grad, x_th.grad, "grad with explicit upstream")


def test_backward_non_scalar_without_gradient_raises():
    x = cn.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError):
        (x * 2).backward()


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError):
        cn.tensor([1.0, 2.0]).sum().backward()


def test_gradients_accumulate_over_backward_calls():
    rng = np.random.default_rng(1)
    arr, w_arr = rng.standard_normal((3,)), rng.standard_normal((3,))
    grads = []
    for M in (cn, torch):
        x = M.tensor(arr, requires_grad=True)
        w = M.tensor(w_arr)
        for _ in range(3):
            (x * w).sum().backward()
        (x ** 2).sum().backward()
        grads.append(x.grad)
    assert_same(grads[0], grads[1], "accumulated grad")


def test_grad_reset_to_none_and_zero_():
    arr = np.array([1.0, 2.0, -1.0])
    grads = []
    for M in (cn, torch):
        x = M.tensor(arr, requires_grad=True)
        (x * 3).sum().backward()
        x.grad = None
        (x * x).sum().backward()
        first = x.grad.clone()
        x.grad.zero_()
        (x * 5).sum().backward()
        grads.append((first, x.grad))
    assert_same(grads[0][0], grads[1][0], "after grad = None")
    assert_same(grads[0][1], grads[1][1], "after grad.zero_()")


def test_unreachable_leaf_grad_stays_none():
    for M in (cn, torch):
        a = M.tensor([1.0, 2.0], requires_grad=True)
        b = M.tensor([3.0, 4.0], requires_grad=True)
        (a * 2).sum().backward()
        assert a.grad is not None
        assert b.grad is None


@pytest.mark.parametrize(
    "build",
    [lambda x: (x * x).sum(), lambda x: x.exp().sum(), lambda x: (x.log() * x).sum(),
     lambda x: (x @ x).sqrt()],
    ids=["mul", "exp", "log_mul", "matmul_sqrt"],
)
def test_second_backward_through_freed_graph_raises(build):
    x = cn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = build(x)
    y.backward()
    with pytest.raises(RuntimeError):
        y.backward()


def test_retain_graph_allows_second_backward():
    arr = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    grads = []
    for M in (cn, torch):
        x = M.tensor(arr, requires_grad=True)
        y = (x * x).sum() + x.exp().sum()
        y.backward(retain_graph=True)
        y.backward(retain_graph=True)
        y.backward()
        grads.append(x.grad)
    assert_same(grads[0], grads[1], "grad after three backwards with retain_graph")


def test_no_grad_context_manager():
    x = cn.tensor([1.0, 2.0], requires_grad=True)
    with cn.no_grad():
        y = x * 2 + 1
        assert not y.requires_grad and y.grad_fn is None
        with cn.no_grad():
            z = y.exp()
        assert not z.requires_grad
        w = x.sum()
        assert not w.requires_grad
    v = x * 2
    assert v.requires_grad and v.grad_fn is not None
    with pytest.raises(ZeroDivisionError), cn.no_grad():
        raise ZeroDivisionError
    assert (x * 2).requires_grad, "grad mode must be restored after an exception"


def _decorated_sgd_step(M):
    @M.no_grad()
    def step(params, lr):
        for p in params:
            p -= lr * p.grad
            p.grad.zero_()
        return params[0] * 2

    return step


def test_no_grad_decorator():
    arr = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    results = []
    for M in (cn, torch):
        step = _decorated_sgd_step(M)
        w = M.tensor(arr, requires_grad=True)
        (w ** 2).sum().backward()
        out = step([w], 0.1)
        assert not out.requires_grad
        assert w.requires_grad and w.grad_fn is None
        assert (w * 2).requires_grad, "grad mode must be back on after the decorated call"
        results.append(w)
    assert_same(results[0].detach(), results[1].detach(), "w after decorated sgd step")


def test_no_grad_bare_decorator():
    """torch also accepts `@torch.no_grad` without parentheses."""
    @cn.no_grad
    def double(x):
        return x * 2

    y = double(cn.tensor([1.0], requires_grad=True))
    assert not y.requires_grad and y.grad_fn is None
    assert (cn.tensor([1.0], requires_grad=True) * 2).requires_grad


INPLACE_ON_LEAF = {
    "iadd": lambda M, x: x.__iadd__(1.0),
    "isub": lambda M, x: x.__isub__(1.0),
    "imul": lambda M, x: x.__imul__(2.0),
    "itruediv": lambda M, x: x.__itruediv__(2.0),
    "setitem": lambda M, x: x.__setitem__(0, 5.0),
    "setitem_slice": lambda M, x: x.__setitem__(slice(1, None), 0.0),
    "fill_": lambda M, x: x.fill_(3.0),
    "zero_": lambda M, x: x.zero_(),
    "copy_": lambda M, x: x.copy_(M.tensor([7.0, 8.0, 9.0])),
}


@pytest.mark.parametrize("name", sorted(INPLACE_ON_LEAF))
def test_inplace_on_leaf_requiring_grad_raises(name):
    x = cn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError):
        INPLACE_ON_LEAF[name](cn, x)


def test_inplace_on_view_of_leaf_requiring_grad_raises():
    x = cn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError):
        x[1:].zero_()


@pytest.mark.parametrize("name", sorted(INPLACE_ON_LEAF))
def test_inplace_on_leaf_allowed_under_no_grad(name):
    arr = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    x_cn, x_th = both(arr, requires_grad=True)
    with cn.no_grad():
        INPLACE_ON_LEAF[name](cn, x_cn)
    with torch.no_grad():
        INPLACE_ON_LEAF[name](torch, x_th)
    assert_same(x_cn.detach(), x_th.detach(), name)
    assert x_cn.requires_grad and x_cn.grad_fn is None
    (x_cn * x_cn).sum().backward()
    (x_th * x_th).sum().backward()
    assert_same(x_cn.grad, x_th.grad, f"grad after no_grad {name}")


VERSION_ERRORS = {
    "mul_operand_modified": lambda M, x, c: _modify_after(M, x, c, lambda: x * c, c),
    "exp_result_modified": lambda M, x, c: _modify_result(x.exp()),
    "pow_base_modified": lambda M, x, c: _modify_base(x, lambda h: h ** 2),
    "matmul_operand_modified": lambda M, x, c: _modify_after(M, x, c, lambda: c @ x, c),
    "setitem_after_use": lambda M, x, c: _modify_base(x, lambda h: h * h, setitem=True),
    "leaf_modified_under_no_grad": lambda M, x, c: _modify_leaf_under_no_grad(M, x),
}


def _modify_leaf_under_no_grad(M, x):
    out = (x * x).sum()
    with M.no_grad():
        x -= 0.1
    return out


def _modify_after(M, x, c, build, victim):
    out = build()
    victim += 1.0
    return out.sum()


def _modify_result(y):
    out = y * 1
    y += 1.0
    return out.sum() + y.sum()


def _modify_base(x, build, setitem=False):
    h = x * 1.0
    out = build(h)
    if setitem:
        h[0] = 5.0
    else:
        h += 1.0
    return out.sum()


def _version_case(build, seed):
    """[(x, loss) in torch, (x, loss) in corrnet]: `build(M, x, c)` on the same random leaf x
    (requiring grad) and constant c in both libraries."""
    rng = np.random.default_rng(seed)
    arr = rng.standard_normal(3).astype(np.float32)
    c_arr = rng.standard_normal(3).astype(np.float32)
    cases = []
    for M in (torch, cn):
        x = M.tensor(arr, requires_grad=True)
        cases.append((x, build(M, x, M.tensor(c_arr))))
    return cases


@pytest.mark.parametrize("name", sorted(VERSION_ERRORS))
def test_modifying_saved_tensor_then_backward_raises(name):
    (_, loss_th), (_, loss_cn) = _version_case(VERSION_ERRORS[name], seed=2)
    # torch first: proves this really is an error in torch.
    with pytest.raises(RuntimeError):
        loss_th.backward()
    with pytest.raises(RuntimeError):
        loss_cn.backward()


VERSION_FINE = {
    "add_operand_modified": lambda M, x, c: _modify_after(M, x, c, lambda: x + c, c),
    "sum_input_modified": lambda M, x, c: _modify_base(x, lambda h: h.sum() * 2),
    "mul_scalar_input_modified": lambda M, x, c: _modify_base(x, lambda h: h * 3.0),
}


@pytest.mark.parametrize("name", sorted(VERSION_FINE))
def test_modifying_unsaved_tensor_is_fine(name):
    (x_th, loss_th), (x_cn, loss_cn) = _version_case(VERSION_FINE[name], seed=3)
    loss_th.backward()
    loss_cn.backward()
    assert_same(x_cn.grad, x_th.grad, name)


def test_broadcast_gradients_reduce_to_input_shapes():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((3, 1)), rng.standard_normal((1, 4))
    c, d = rng.standard_normal(()), rng.standard_normal((2, 1, 4))
    grads = []
    for M in (cn, torch):
        ts = [M.tensor(v, requires_grad=True) for v in (a, b, c, d)]
        out = (ts[0] * ts[1] + ts[2]) * ts[3] - 2.0 * ts[0]
        assert tuple(out.shape) == (2, 3, 4)
        out.sum().backward()
        grads.append([t.grad for t in ts])
    for i, (g_cn, g_th) in enumerate(zip(*grads, strict=True)):
        assert_same(g_cn, g_th, f"input {i}")


def test_detach_stops_gradient():
    arr = np.array([1.0, 2.0, 3.0])
    grads = []
    for M in (cn, torch):
        x = M.tensor(arr, requires_grad=True)
        (x.detach() * x).sum().backward()
        grads.append(x.grad)
    assert_same(grads[0], grads[1], "grad through x.detach() * x")


# --------------------------------------------------------------------------- item assignment


def test_setitem_with_0d_tensor_joins_graph():
    """Y[i, j] = t with t requiring grad: Y joins the graph, gradients reach t's inputs."""
    rng = np.random.default_rng(5)
    x_arr, w_arr = rng.standard_normal((2, 2)), rng.standard_normal((2, 3))
    grads = []
    for M in (cn, torch):
        x = M.tensor(x_arr, requires_grad=True)
        Y = M.zeros((2, 3), dtype=M.float64)
        assert not Y.requires_grad
        Y[0, 1] = (x * 3).sum()
        Y[1, 2] = x[0, 0] * x[1, 1]
        assert Y.requires_grad and Y.grad_fn is not None
        (Y * M.tensor(w_arr)).sum().backward()
        grads.append(x.grad)
    assert_same(grads[0], grads[1], "grad through Y[i, j] = t")


def _corr2d(M, X, K):
    h, w = K.shape
    Y = M.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def test_corr2d_loop_gradients():
    """d2l's corr2d written with item assignment; gradients to both X and K."""
    rng = np.random.default_rng(6)
    X_arr = rng.standard_normal((6, 7)).astype(np.float32)
    K_arr = rng.standard_normal((2, 3)).astype(np.float32)
    g = rng.standard_normal((5, 5)).astype(np.float32)
    results = []
    for M in (cn, torch):
        X = M.tensor(X_arr, requires_grad=True)
        K = M.tensor(K_arr, requires_grad=True)
        Y = _corr2d(M, X, K)
        Y.backward(M.tensor(g))
        results.append((Y, X.grad, K.grad))
    for what, got, expected in zip(["Y", "X.grad", "K.grad"], *results, strict=True):
        assert_same(got, expected, what)


def test_overwritten_item_gets_zero_gradient():
    results = []
    for M in (cn, torch):
        a = M.tensor(2.0, requires_grad=True)
        b = M.tensor(3.0, requires_grad=True)
        Y = M.zeros(3)
        Y[0] = a * 1
        Y[1] = a * 2
        Y[0] = b * 1
        (Y * M.tensor([1.0, 10.0, 100.0])).sum().backward()
        results.append((a.grad, b.grad))
    assert_same(results[0][0], results[1][0], "a.grad (first write overwritten)")
    assert_same(results[0][1], results[1][1], "b.grad")


def test_setitem_overwrites_gradient_of_base():
    rng = np.random.default_rng(7)
    arr = rng.standard_normal((3, 4))
    results = []
    for M in (cn, torch):
        x = M.tensor(arr, requires_grad=True)
        v = M.tensor(1.5, dtype=M.float64, requires_grad=True)
        y = x * 2
        y[:, 1:3] = v
        y[0] = y[0] * 3
        (y ** 2).sum().backward()
        results.append((x.grad, v.grad))
    assert_same(results[0][0], results[1][0], "x.grad")
    assert_same(results[0][1], results[1][1], "v.grad")


# --------------------------------------------------------------------------- deep graphs


# torch itself needs ~5 s for 100,000 autograd ops, so these two use exact arithmetic as the
# oracle: the same float64 multiplications by the same constant, in plain Python.


def test_chain_of_100k_multiplications():
    n = 100_000
    x = cn.tensor(1.0, dtype=cn.float64, requires_grad=True)
    y = x
    for _ in range(n):
        y = y * 1.0001
    y.backward()
    expected = 1.0
    for _ in range(n):
        expected *= 1.0001
    assert str(x.grad.dtype) == "torch.float64" and tuple(x.grad.shape) == ()
    assert math.isclose(x.grad.item(), expected, rel_tol=1e-10)
    assert math.isclose(y.item(), expected, rel_tol=1e-10)
    del y


def test_chain_of_100k_additions():
    n = 100_000
    x = cn.tensor([1.0, 2.0], requires_grad=True)
    y = x
    for _ in range(n):
        y = y + 0.0
    (y * cn.tensor([3.0, -1.0])).sum().backward()
    assert str(x.grad.dtype) == "torch.float32" and tuple(x.grad.shape) == (2,)
    np.testing.assert_array_equal(numpy_of(x.grad), np.array([3.0, -1.0], dtype=np.float32))
    del y
