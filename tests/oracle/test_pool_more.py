"""Oracle tests: max_unpool, adaptive pooling, 1-D pooling and the pooling layers vs PyTorch.

(max_pool2d / avg_pool2d are in test_conv_pool.py.)  Every comparison goes through
`helpers.check_op` (or `check_functional` / `check_module`): values, shapes, dtypes, every
gradient, integer index outputs (``return_indices``) exactly, and the verdict.  Max-pool
inputs have no ties (`distinct_array`) so that the gradient is unambiguous; ties are the
subject of the dedicated regression test in test_regressions.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch as tt
import torch.nn.functional as tF
from hypothesis import assume, given
from hypothesis import strategies as st

from pool_geometry import pool_out_len, pool_windows_touch_input
from torch_compare import seeds

try:  # works both as a package module and with pytest's rootdir/prepend import mode
    from .helpers import (
        assert_accepted,
        check_functional,
        check_module,
        distinct_array,
        drop_none,
        free_int,
        int_or_pair,
        note_verdict,
        oracle_settings,
        random_array,
        rarely,
    )
except ImportError:  # pragma: no cover - depends on how pytest imports the file
    from helpers import (
        assert_accepted,
        check_functional,
        check_module,
        distinct_array,
        drop_none,
        free_int,
        int_or_pair,
        note_verdict,
        oracle_settings,
        random_array,
        rarely,
    )

FLOAT_DTYPES = st.sampled_from([np.float32, np.float64])


def _lead(draw, channels: int | None = None) -> tuple[int, ...]:
    """Leading (N, C) or (C,) dims: batch 1, batch > 1 and unbatched inputs."""
    c = draw(st.integers(1, 3)) if channels is None else channels
    batch = draw(st.sampled_from([None, 1, 2, 3]))
    return (c,) if batch is None else (batch, c)


# ---------------------------------------------------------------- pooling window knobs
@st.composite
def pool_dim(draw, dilation: bool, ceil_mode: bool):
    """One spatial dimension of a valid pooling config whose windows all touch the input:
    (size, kernel, stride, padding, dilation)."""
    k = draw(st.integers(1, 5))
    s = draw(st.integers(1, 3)) if draw(st.booleans()) else k
    p = draw(st.integers(0, k // 2))
    d = draw(st.integers(1, 2)) if dilation else 1
    size = draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 12))
    assume(pool_out_len(size, k, s, p, d, ceil_mode) >= 1)
    assume(pool_windows_touch_input(size, k, s, p, d, ceil_mode))
    return size, k, s, p, d


# ------------------------------------------------------------------------ max_pool1d
@st.composite
def max_pool1d_configs(draw, free: bool = False):
    ceil_mode = draw(st.booleans())
    if free:
        k = free_int(draw, 1, 5, [0, -1])
        s = free_int(draw, 1, 3, [0, -1]) if draw(st.booleans()) else None
        p = free_int(draw, 0, max(k, 0) // 2, [-1, max(k, 0) // 2 + 1])
        d = free_int(draw, 1, 2, [0])
        size = draw(st.integers(1, 10))
        if min(k, s or k, d) >= 1 and p >= 0 and pool_out_len(size, k, s or k, p, d,
                                                             ceil_mode) >= 1:
            assume(pool_windows_touch_input(size, k, s or k, p, d, ceil_mode))
        lead = (draw(st.integers(1, 2)),) * draw(st.integers(0, 3))  # rank 1..4
    else:
        size, k, s, p, d = draw(pool_dim(True, ceil_mode))
        s = None if s == k and draw(st.booleans()) else s
        lead = _lead(draw)
    kwargs = drop_none(
        stride=s,
        padding=None if p == 0 and draw(st.booleans()) else p,
        dilation=None if d == 1 and draw(st.booleans()) else d,
        ceil_mode=ceil_mode if ceil_mode or draw(st.booleans()) else None,
        return_indices=draw(st.sampled_from([None, False, True])),
    )
    return (*lead, size), k, kwargs, draw(FLOAT_DTYPES), draw(seeds)


@oracle_settings(120)
@given(max_pool1d_configs())
def test_max_pool1d_matches_torch(cfg):
    x_shape, k, kwargs, dtype, seed = cfg
    x = distinct_array(np.random.default_rng(seed), x_shape, dtype)
    assert_accepted(check_functional("max_pool1d", x, k, seed=seed, **kwargs))


@oracle_settings(80)
@given(max_pool1d_configs(free=True))
def test_max_pool1d_any_config_accepted_or_rejected_like_torch(cfg):
    x_shape, k, kwargs, dtype, seed = cfg
    x = distinct_array(np.random.default_rng(seed), x_shape, dtype)
    note_verdict(check_functional("max_pool1d", x, k, seed=seed, **kwargs))


# ------------------------------------------------------------------------ avg_pool1d
@st.composite
def avg_pool1d_configs(draw, free: bool = False):
    if free:
        k = free_int(draw, 1, 5, [0, -1])
        s = free_int(draw, 1, 3, [0, -1]) if draw(st.booleans()) else None
        p = free_int(draw, 0, max(k, 0) // 2, [-1, max(k, 0) // 2 + 1])
        size = draw(st.integers(1, 10))
        lead = (draw(st.integers(1, 2)),) * draw(st.integers(0, 3))
    else:
        k = draw(st.integers(1, 5))
        s = draw(st.integers(1, 3)) if draw(st.booleans()) else None
        p = draw(st.integers(0, k // 2))
        size = draw(st.integers(max(1, k - 2 * p), 12))
        lead = _lead(draw)
    kwargs = drop_none(
        stride=s,
        padding=None if p == 0 and draw(st.booleans()) else p,
        ceil_mode=draw(st.sampled_from([None, False, True])),
        count_include_pad=draw(st.sampled_from([None, False, True])),
    )
    return (*lead, size), k, kwargs, draw(FLOAT_DTYPES), draw(seeds)


@oracle_settings(120)
@given(avg_pool1d_configs())
def test_avg_pool1d_matches_torch(cfg):
    x_shape, k, kwargs, dtype, seed = cfg
    x = random_array(np.random.default_rng(seed), x_shape, dtype)
    assert_accepted(check_functional("avg_pool1d", x, k, seed=seed, **kwargs))


@oracle_settings(80)
@given(avg_pool1d_configs(free=True))
def test_avg_pool1d_any_config_accepted_or_rejected_like_torch(cfg):
    x_shape, k, kwargs, dtype, seed = cfg
    x = random_array(np.random.default_rng(seed), x_shape, dtype)
    note_verdict(check_functional("avg_pool1d", x, k, seed=seed, **kwargs))


# ---------------------------------------------------------------------- max_unpool
def _torch_pool_indices(x: np.ndarray, nd: int, k, s, p, ceil_mode: bool):
    """PyTorch's (pooled values, indices) for x: the inputs of max_unpool (oracle data)."""
    pool = tF.max_pool2d if nd == 2 else tF.max_pool1d
    y, idx = pool(tt.tensor(x), k, s, p, 1, ceil_mode, True)
    return y.numpy().copy(), idx.numpy().copy()


@st.composite
def max_unpool_configs(draw, nd: int, free: bool = False):
    """(y, indices, kernel, kwargs, seed): y and indices from torch's max_pool on a tie-free
    input; output_size left out, the default, or any size the stride allows (and, for free
    configs, sometimes too small or too large, or a corrupted index)."""
    ceil_mode = draw(st.booleans())
    dims = [draw(pool_dim(False, ceil_mode)) for _ in range(nd)]
    sizes, ks, ss, ps = ([d[i] for d in dims] for i in range(4))
    dtype, seed = draw(FLOAT_DTYPES), draw(seeds)
    x = distinct_array(np.random.default_rng(seed), (*_lead(draw), *sizes), dtype)
    k = ks[0] if nd == 1 else int_or_pair(draw, *ks)
    s = ss[0] if nd == 1 else int_or_pair(draw, *ss)
    p = ps[0] if nd == 1 else int_or_pair(draw, *ps)
    y, idx = _torch_pool_indices(x, nd, k, s, p, ceil_mode)
    default = [(n - 1) * st_ - 2 * pa + kk
               for n, kk, st_, pa in zip(y.shape[-nd:], ks, ss, ps, strict=True)]
    choice = draw(st.sampled_from(["none", "default", "reachable", "reachable"]))
    out = None
    if choice != "none":
        out = [dflt + (draw(st.integers(0, st_ - 1)) if choice == "reachable" else 0)
               for dflt, st_ in zip(default, ss, strict=True)]
        if free and rarely(draw):  # anywhere from a stride below to a stride above
            out = [o + draw(st.integers(-st_ - 1, st_ + 1)) for o, st_ in zip(out, ss,
                                                                              strict=True)]
        if draw(st.integers(0, 3)) == 0:
            out = [*y.shape[:-nd], *out]
        out = tuple(out) if draw(st.booleans()) else list(out)
    if free and idx.size and rarely(draw):
        flat = idx.reshape(-1)
        flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from([-1, 10**6]))
    kwargs = drop_none(
        stride=None if ss == ks and draw(st.booleans()) else s,
        padding=None if set(ps) == {0} and draw(st.booleans()) else p,
        output_size=out,
    )
    return y, idx, k, kwargs, seed


@oracle_settings(100)
@given(max_unpool_configs(2))
def test_max_unpool2d_matches_torch(cfg):
    y, idx, k, kwargs, seed = cfg
    # output_size beyond the default keeps every index valid; note torch's verdict
    note_verdict(check_functional("max_unpool2d", y, idx, k, seed=seed, **kwargs))


@oracle_settings(60)
@given(max_unpool_configs(2, free=True))
def test_max_unpool2d_any_config_accepted_or_rejected_like_torch(cfg):
    y, idx, k, kwargs, seed = cfg
    note_verdict(check_functional("max_unpool2d", y, idx, k, seed=seed, **kwargs))


@oracle_settings(80)
@given(max_unpool_configs(1))
def test_max_unpool1d_matches_torch(cfg):
    y, idx, k, kwargs, seed = cfg
    note_verdict(check_functional("max_unpool1d", y, idx, k, seed=seed, **kwargs))


@oracle_settings(40)
@given(max_unpool_configs(1, free=True))
def test_max_unpool1d_any_config_accepted_or_rejected_like_torch(cfg):
    y, idx, k, kwargs, seed = cfg
    note_verdict(check_functional("max_unpool1d", y, idx, k, seed=seed, **kwargs))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "x_shape, k, s, p, output_size",
    [
        ((1, 1, 4, 4), 2, 2, 0, None),
        ((2, 3, 5, 5), 2, 2, 0, (5, 5)),  # the dropped last row/column restored
        ((1, 2, 5, 7), (3, 2), (2, 1), (1, 0), None),
        ((1, 2, 6, 7), (3, 2), (2, 1), (1, 0), (1, 2, 6, 7)),  # full shape
        ((3, 4, 4), 3, 1, 1, None),  # unbatched, overlapping windows (repeated indices)
    ],
)
def test_max_unpool2d_fixed_cases(x_shape, k, s, p, output_size, dtype):
    x = distinct_array(np.random.default_rng(8), x_shape, dtype)
    y, idx = _torch_pool_indices(x, 2, k, s, p, False)
    assert_accepted(check_functional("max_unpool2d", y, idx, k, s, p, output_size))


# ----------------------------------------------------------------- adaptive pooling
@st.composite
def adaptive_configs(draw, nd: int, free: bool = False):
    """(x_shape, output_size, dtype, seed): any output size, dividing the input or not,
    larger than the input, with None entries (keep that size); free: 0 and -1 too."""
    sizes = [draw(st.integers(1, 11)) for _ in range(nd)]
    outs = []
    for n in sizes:
        o = draw(st.integers(1, n + 3))
        if free and rarely(draw):
            o = draw(st.sampled_from([0, -1]))
        elif nd == 2 and draw(st.integers(0, 5)) == 0:
            o = None
        outs.append(o)
    if nd == 1:
        out = outs[0] if draw(st.booleans()) else (outs[0],)
    elif outs[0] == outs[1] and outs[0] is not None and draw(st.booleans()):
        out = outs[0]
    else:
        out = tuple(outs) if draw(st.booleans()) else list(outs)
    lead = (draw(st.integers(1, 2)),) * draw(st.integers(0, 3)) if free else _lead(draw)
    return (*lead, *sizes), out, draw(FLOAT_DTYPES), draw(seeds)


@oracle_settings(100)
@given(adaptive_configs(2))
def test_adaptive_avg_pool2d_matches_torch(cfg):
    x_shape, out, dtype, seed = cfg
    x = random_array(np.random.default_rng(seed), x_shape, dtype)
    assert_accepted(check_functional("adaptive_avg_pool2d", x, out, seed=seed))


@oracle_settings(100)
@given(adaptive_configs(2), st.sampled_from([None, False, True]))
def test_adaptive_max_pool2d_matches_torch(cfg, return_indices):
    x_shape, out, dtype, seed = cfg
    x = distinct_array(np.random.default_rng(seed), x_shape, dtype)
    kwargs = drop_none(return_indices=return_indices)
    assert_accepted(check_functional("adaptive_max_pool2d", x, out, seed=seed, **kwargs))


@oracle_settings(80)
@given(adaptive_configs(1))
def test_adaptive_avg_pool1d_matches_torch(cfg):
    x_shape, out, dtype, seed = cfg
    x = random_array(np.random.default_rng(seed), x_shape, dtype)
    assert_accepted(check_functional("adaptive_avg_pool1d", x, out, seed=seed))


@oracle_settings(80)
@given(adaptive_configs(1), st.sampled_from([None, False, True]))
def test_adaptive_max_pool1d_matches_torch(cfg, return_indices):
    x_shape, out, dtype, seed = cfg
    x = distinct_array(np.random.default_rng(seed), x_shape, dtype)
    kwargs = drop_none(return_indices=return_indices)
    assert_accepted(check_functional("adaptive_max_pool1d", x, out, seed=seed, **kwargs))


ADAPTIVE_OPS = ["adaptive_avg_pool2d", "adaptive_max_pool2d", "adaptive_avg_pool1d",
                "adaptive_max_pool1d"]


@oracle_settings(100)
@given(st.sampled_from(ADAPTIVE_OPS), st.data())
def test_adaptive_pool_any_config_accepted_or_rejected_like_torch(op, data):
    nd = int(op[-2])
    x_shape, out, dtype, seed = data.draw(adaptive_configs(nd, free=True))
    if "avg" in op and len(x_shape) not in (nd + 1, nd + 2):
        # torch computes a 1x1 adaptive average as a mean without checking the rank (it
        # accepts a 5-D input then, and refuses it for any other size): not held against corrnet
        outs = [out] * nd if isinstance(out, int) else list(out)
        assume(all(o not in (1, None) for o in outs))
    x = distinct_array(np.random.default_rng(seed), x_shape, dtype)
    note_verdict(check_functional(op, x, out, seed=seed))


@pytest.mark.parametrize("op", ADAPTIVE_OPS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adaptive_pool_fixed_cases(op, dtype):
    """Sizes that do not divide the input (overlapping windows), larger outputs, 1x1."""
    rng = np.random.default_rng(9)
    cases = ([((1, 2, 7, 5), (3, 2)), ((2, 1, 5, 5), 3), ((1, 1, 3, 4), (5, 7)),
              ((2, 3, 6, 6), 1), ((3, 10, 7), (None, 4)), ((1, 1, 7, 9), (4, None))]
             if op.endswith("2d") else
             [((1, 2, 7), 3), ((2, 1, 5), 5), ((1, 1, 3), 8), ((3, 10), 1), ((2, 9), (4,))])
    for x_shape, out in cases:
        x = distinct_array(rng, x_shape, dtype)
        kw = {"return_indices": True} if "max" in op else {}
        assert_accepted(check_functional(op, x, out, **kw))


# --------------------------------------------------------------------------- layers
@st.composite
def pool_module_configs(draw):
    """(module name, args, kwargs, call arrays, call kwargs, dtype, seed)."""
    name = draw(st.sampled_from([
        "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "MaxUnpool2d",
        "MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d", "AdaptiveMaxPool1d", "MaxUnpool1d",
    ]))
    nd = 2 if name.endswith("2d") else 1
    dtype, seed = draw(FLOAT_DTYPES), draw(seeds)
    rng = np.random.default_rng(seed)
    if name.startswith("Adaptive"):
        x_shape, out, _, _ = draw(adaptive_configs(nd))
        kwargs = ({"return_indices": draw(st.booleans())} if "Max" in name else {})
        return name, (out,), kwargs, [distinct_array(rng, x_shape, dtype)], {}, dtype, seed
    if name.startswith("MaxUnpool"):
        y, idx, k, kwargs, _ = draw(max_unpool_configs(nd))
        y = y.astype(dtype)
        call = {"output_size": kwargs.pop("output_size")} if "output_size" in kwargs else {}
        return name, (k,), kwargs, [y, idx], call, dtype, seed
    ceil_mode = draw(st.booleans())
    dims = [draw(pool_dim(name.startswith("Max"), ceil_mode)) for _ in range(nd)]
    sizes, ks, ss, ps, ds = ([d[i] for d in dims] for i in range(5))
    pick = (lambda v: v[0]) if nd == 1 else (lambda v: int_or_pair(draw, *v))
    kwargs = {"stride": pick(ss) if ss != ks or draw(st.booleans()) else None,
              "padding": pick(ps), "ceil_mode": ceil_mode}
    if name.startswith("Max"):
        kwargs.update(dilation=pick(ds), return_indices=draw(st.booleans()))
        x = distinct_array(rng, (*_lead(draw), *sizes), dtype)
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
        if nd == 2:
            kwargs["divisor_override"] = draw(st.sampled_from([None, None, 1, 2, 3]))
        x = random_array(rng, (*_lead(draw), *sizes), dtype)
    return name, (pick(ks),), kwargs, [x], {}, dtype, seed


@oracle_settings(200)
@given(pool_module_configs())
def test_pool_modules_match_torch(cfg):
    name, args, kwargs, arrays, call, dtype, seed = cfg
    note_verdict(check_module(name, args, kwargs, arrays, call, dtype=dtype, seed=seed))
