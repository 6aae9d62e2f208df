"""Fuzz cases: (seed, index) -> one API call, written as Python code for both libraries.

A case is a few lines of Python that use the names ``lib`` (``corrnet`` or ``torch``), ``F``
(``lib.nn.functional``), ``nn`` (``lib.nn``), ``np`` and ``arr`` (below), and leave their
outcome in ``result``: a dict of the things to compare (the output, the inputs after an
in-place op, the leaves' gradients). The same text runs under corrnet and under torch, so
the repro printed for a case is exactly what was run. Cases whose oracle is SciPy (the image
filters) carry a second text for the oracle side.

Everything is drawn from ``np.random.default_rng([seed, index])``: the same (seed, index)
gives the same case in every process and every mode. Inputs are made by `arr` from a seed of
their own, so a case's text stays short even for large tensors.

The generators lean on what breaks code: zero-size dims, non-finite values, ties, float16,
integer and bool dtypes, broadcasting, and hostile arguments (None, floats where ints are
expected, strings, huge and negative ints, sequences of the wrong length) in place of a valid
one, about one argument in ten.
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np


def arr(shape, dtype, kind, seed):
    """A deterministic NumPy array: `kind` 'normal' (standard normal), 'pos' (|normal| + 0.1),
    'special' (normal with NaN, +-inf, 0, +-1e30 sprinkled in), 'onenan' (one NaN or +-inf:
    how far it spreads must match), 'big' (normal * 1e19), 'ties' (rounded to halves, so
    maxima repeat); ints in [-5, 5] (uint8 in [0, 10]); bools."""
    r = np.random.default_rng(seed)
    shape = tuple(shape)
    if dtype == "bool":
        return r.random(shape) < 0.5
    if dtype.startswith("int") or dtype == "uint8":
        low = 0 if dtype == "uint8" else -5
        return r.integers(low, low + 11, shape).astype(dtype)
    a = r.standard_normal(shape)
    if kind == "pos":
        a = np.abs(a) + 0.1
    elif kind == "special" and a.size:
        values = np.array([np.nan, np.inf, -np.inf, 0.0, 1e30, -1e30])
        where = r.random(shape) < 0.15
        a[where] = values[r.integers(0, len(values), int(where.sum()))]
    elif kind == "big":
        a = a * 1e19
    elif kind == "ties":
        a = np.round(a * 2) / 2
    elif kind == "onenan" and a.size:
        a.flat[r.integers(a.size)] = (np.nan, np.inf, -np.inf)[r.integers(3)]
    return a.astype(dtype)


# Stand-ins for a valid argument, as code: what a hostile or careless caller passes.
HOSTILE = ("None", "2.5", "'2'", "10**20", "2**31", "2**63", "-1", "-(2**31)", "0", "(1, 2, 3)",
           "()", "[1]", "True", "float('nan')", "float('inf')", "1e300", "'abc'", "[[1]]",
           "object()")
HOSTILE_DIM = ("None", "1.0", "'0'", "10**20", "-100", "(0, 0)", "(0, 9)", "[]", "True")

FLOAT_DTYPES = ("float32", "float32", "float32", "float64", "float16")
ALL_DTYPES = ("float32", "float32", "float64", "float16", "int64", "int32", "bool", "uint8")


@dataclasses.dataclass
class Case:
    """One call: the code run with `lib` = corrnet and torch (or `oracle_code` on the oracle
    side, with `scipy` in scope); `compare` 'values' or 'shape' (random ops: only dtype and
    shape must agree)."""
    seed: int
    index: int
    op: str
    code: str
    oracle: str = "torch"          # 'torch' or 'scipy'
    oracle_code: str | None = None
    compare: str = "values"

    def repro(self, mode: str = "on") -> str:
        """A standalone script that runs the case with both libraries and prints each
        outcome."""
        env = {"on": "", "off": "CORRNET_NUMBA=0 ",
               "bounds": "NUMBA_BOUNDSCHECK=1 NUMBA_CACHE_DIR=/tmp/numba-bounds "}[mode]
        body = "\n".join("    " + line for line in self.code.splitlines())
        lines = [f"# fuzz case seed={self.seed} index={self.index} op={self.op} mode={mode}",
                 f"# run as: {env}python this_file.py",
                 "import numpy as np", "import scipy.signal", "import torch", "import corrnet",
                 "", inspect.getsource(arr), "",
                 "def case(lib):", "    F, nn = lib.nn.functional, lib.nn", body,
                 "    return result", ""]
        if self.oracle_code is not None:
            oracle_body = "\n".join("    " + line for line in self.oracle_code.splitlines())
            lines += ["def oracle():", oracle_body, "    return result", "",
                      "runs = [('scipy', oracle), ('corrnet', lambda: case(corrnet))]"]
        else:
            lines += ["runs = [('torch', lambda: case(torch)), ('corrnet', lambda: case(corrnet))]"]
        lines += ["for name, run in runs:", "    try:", "        print(name, run())",
                  "    except Exception as e:",
                  "        print(name, 'raised', type(e).__name__ + ':', e)", ""]
        return "\n".join(lines)


class Gen:
    """The drawing state of one case: its random stream, the lines written so far, the
    tensors whose gradients are compared."""

    def __init__(self, seed: int, index: int):
        self.seed, self.index = seed, index
        self.rng = np.random.default_rng([seed, index])
        self.lines: list[str] = []
        self.leaves: list[str] = []
        self.count = 0
        self.hostile_p = 0.1

    # -- drawing ---------------------------------------------------------------------------
    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def int(self, low: int, high: int) -> int:
        """An int in [low, high] (low when the range is empty)."""
        return int(self.rng.integers(low, max(low, high) + 1))

    def hostile(self, valid, p: float | None = None, pool=HOSTILE) -> str:
        """The code of `valid` (a value, or a string of code: a string value must come as its
        repr), or now and then a hostile stand-in."""
        code = valid if isinstance(valid, str) else repr(valid)
        return self.pick(pool) if self.chance(self.hostile_p if p is None else p) else code

    def shape(self, ndim: int, low: int = 1, high: int = 5, zero_p: float = 0.04) -> tuple:
        return tuple(0 if self.chance(zero_p) else self.int(low, high) for _ in range(ndim))

    def dtype(self, choices=FLOAT_DTYPES) -> str:
        return self.pick(choices)

    def kind(self) -> str:
        return self.pick(("normal",) * 7 + ("special", "onenan", "big", "ties", "pos"))

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def emit(self, line: str) -> None:
        self.lines.append(line)

    def tensor(self, shape, dtype: str = "float32", kind: str | None = None,
               grad: bool | None = None, prefix: str = "x") -> str:
        """A line making a tensor from `arr`; float ones require grad about half the time
        (then their gradients are compared)."""
        name = self.name(prefix)
        kind = kind or self.kind()
        seed = int(self.rng.integers(2**31))
        floating = dtype.startswith("float")
        if grad is None:
            grad = floating and self.chance(0.5)
        grad = grad and floating
        extra = ", requires_grad=True" if grad else ""
        self.emit(f"{name} = lib.tensor(arr({tuple(shape)!r}, {dtype!r}, {kind!r}, {seed}){extra})")
        if grad:
            self.leaves.append(name)
        return name

    # -- finishing -------------------------------------------------------------------------
    def finish(self, op: str, out: str = "out", backward_of: str | None = None,
               extra: dict | None = None, compare: str = "values",
               force_backward: bool = False) -> Case:
        """Close the case: backward through `backward_of` (default `out`) when there are
        leaves, and the `result` dict."""
        self.emit(f"out = {out}")
        parts = {"out": "out", **(extra or {})}
        if self.leaves or force_backward:
            target = backward_of or "out"
            seed = int(self.rng.integers(2**31))
            self.emit(f"_y = {target}")
            self.emit("if isinstance(_y, lib.Tensor) and _y.requires_grad:")
            self.emit(f"    _y.backward(lib.tensor(arr(tuple(_y.shape), 'float64', 'normal', "
                      f"{seed})).to(_y.dtype))")
            for leaf in self.leaves:
                parts[f"grad {leaf}"] = f"{leaf}.grad"
        self.emit("result = {" + ", ".join(f"{k!r}: {v}" for k, v in parts.items()) + "}")
        return Case(self.seed, self.index, op, "\n".join(self.lines), compare=compare)


# -----------------------------------------------------------------------------------------
# generators: each draws one call of a family and returns its Case
# -----------------------------------------------------------------------------------------

def gen_creation(g: Gen) -> Case:
    dt = g.pick(("None", "lib.float32", "lib.float64", "lib.int64", "lib.int32", "lib.bool",
                 "lib.float16", "lib.uint8"))
    dt = g.hostile(dt, 0.05, ("'float32'", "np.float32", "float", "int", "1"))
    shape = g.shape(g.int(0, 3), 0, 4)
    sh = ", ".join(g.hostile(s) for s in shape)
    which = g.pick(("zeros", "ones", "empty", "full", "arange", "linspace", "eye", "tensor",
                    "like", "rand", "randn", "randint", "randperm", "as_tensor", "from_numpy",
                    "size_kw"))
    compare = "values"
    if which in ("zeros", "ones"):
        call = f"lib.{which}({sh}{', ' if sh else ''}dtype={dt})"
    elif which == "size_kw":
        call = f"lib.{g.pick(('zeros', 'ones'))}(size={g.hostile(shape)}, dtype={dt})"
    elif which == "empty":
        call, compare = f"lib.empty({sh}{', ' if sh else ''}dtype={dt})", "shape"
    elif which == "full":
        fill = g.hostile(g.pick((1.5, 2, True, -3, "float('nan')", 1e40)))
        call = f"lib.full({g.hostile(shape)}, {fill}, dtype={dt})"
    elif which == "arange":
        a, b = g.pick((0, 1, -3, 2.5)), g.pick((5, 10, 0, 7.5, -2))
        step = g.hostile(g.pick((1, 2, 0.5, -1, 3)))
        call = f"lib.arange({g.hostile(a)}, {g.hostile(b)}, {step}, dtype={dt})"
    elif which == "linspace":
        start, end, steps = g.hostile(-1.0), g.hostile(2), g.hostile(g.int(0, 6))
        call = f"lib.linspace({start}, {end}, {steps}, dtype={dt})"
    elif which == "eye":
        call = f"lib.eye({g.hostile(g.int(0, 4))}, {g.hostile(g.int(0, 4))}, dtype={dt})"
    elif which == "tensor":
        data = g.pick(("[1, 2, 3]", "[[1.5, 2], [3, 4]]", "[]", "[[1, 2], [3]]", "3.5", "True",
                       "[True, False]", "[1, 2.5, True]", "[[[]]]", "'abc'", "[float('nan')]",
                       "[2**63]", "[1e40]", "((1, 2), (3, 4))", "[None]", "np.float32(2.5)",
                       "np.arange(6).reshape(2, 3)", "np.ones((2, 0))"))
        call = f"lib.tensor({data}, dtype={dt})"
    elif which == "like":
        dtype = g.dtype(ALL_DTYPES)
        x = g.tensor(shape, dtype, grad=False)
        fn = g.pick(("zeros_like", "ones_like", "full_like", "empty_like", "rand_like",
                     "randn_like"))
        fill = f", {g.hostile(g.pick((2, 1.5, True)))}" if fn == "full_like" else ""
        compare = "shape" if fn in ("empty_like", "rand_like", "randn_like") else "values"
        call = f"lib.{fn}({x}{fill}, dtype={dt})"
    elif which in ("rand", "randn"):
        call, compare = f"lib.{which}({sh}{', ' if sh else ''}dtype={dt})", "shape"
    elif which == "randint":
        call = f"lib.randint({g.hostile(0)}, {g.hostile(5)}, {g.hostile(shape)}, dtype={dt})"
        compare = "shape"
    elif which == "randperm":
        call, compare = f"lib.randperm({g.hostile(g.int(0, 6))}, dtype={dt})", "shape"
    elif which == "as_tensor":
        a = g.pick(("arr((2, 3), 'float64', 'normal', 1)", "[1, 2]",
                    "arr((0,), 'int32', 'normal', 2)"))
        call = f"lib.as_tensor({a}, dtype={dt})"
    else:
        a = g.pick(("arr((2, 3), 'float32', 'normal', 1)", "arr((3,), 'int64', 'normal', 2)",
                    "arr((2, 2), 'bool', 'normal', 3)",
                    "arr((2, 3), 'float32', 'normal', 4)[:, ::2]",
                    "arr((2,), 'float32', 'normal', 5).byteswap().view(np.dtype('>f4'))",
                    "[1, 2]", "np.array(['a'])", "np.zeros(3, dtype=complex)"))
        call = f"lib.from_numpy({a})"
        if "complex" in a:
            which = "from_numpy_complex"  # corrnet has no complex dtypes (worker.UNSUPPORTED)
    return g.finish(f"creation.{which}", call, compare=compare)


UNARY_METHODS = ("abs", "neg", "exp", "log", "sqrt", "sigmoid", "tanh", "relu", "isnan",
                 "isfinite", "float", "double", "half", "long", "int", "bool", "clone",
                 "detach", "contiguous",
                 # ops.UNARY's functions
                 "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "log2", "log10",
                 "log1p", "expm1", "exp2", "rsqrt", "reciprocal", "frac", "square", "deg2rad",
                 "rad2deg",
                 # PyTorch's other names, signs, infinities, logical and bitwise not
                 "sign", "sgn", "isinf", "isposinf", "isneginf", "logical_not", "bitwise_not",
                 "negative", "absolute", "erf", "erfc", "nan_to_num", "positive",
                 "count_nonzero", "signbit", "logit", "nansum", "nanmean", "rot90",
                 # the fourth batch
                 "nonzero", "argwhere", "unique", "unique_consecutive", "ravel", "sinc",
                 "median", "nanmedian")
# in place, on a clone (the input stays as generated)
UNARY_IN_PLACE = ("abs_", "neg_", "exp_", "log_", "sqrt_", "sigmoid_", "tanh_", "sin_", "cos_",
                  "reciprocal_", "rsqrt_", "log1p_", "expm1_", "square_")


def gen_unary(g: Gen) -> Case:
    dtype = g.dtype(ALL_DTYPES)
    kind = g.pick(("normal", "special", "pos", "big", "normal"))
    x = g.tensor(g.shape(g.int(0, 3)), dtype, kind)
    which = g.pick(UNARY_METHODS + ("clamp", "pow", "softmax", "log_softmax", "neg_op", "abs_op",
                                    "invert", "pos_op", "lib_fn", "to", "type", "clip",
                                    "in_place", "in_place"))
    if which == "in_place":
        which = g.pick(UNARY_IN_PLACE)
        call = f"{x}.clone().{which}()"
    elif which == "clamp" or which == "clip":
        lo = g.hostile(g.pick((None, -0.5, 0, -1)))
        hi = g.hostile(g.pick((None, 0.5, 1, 2)))
        call = f"{x}.{which}(min={lo}, max={hi})"
    elif which == "pow":
        call = f"{x}.pow({g.hostile(g.pick((2, 0.5, -1, 3, 0, 2.0, -2)))})"
    elif which in ("softmax", "log_softmax"):
        call = f"{x}.{which}({g.hostile(g.int(-2, 1), pool=HOSTILE_DIM)})"
    elif which == "neg_op":
        call = f"-{x}"
    elif which == "abs_op":
        call = f"abs({x})"
    elif which == "invert":
        call = f"~{x}"
    elif which == "pos_op":
        call = f"+{x}"
    elif which == "lib_fn":
        fn = g.pick(("abs", "exp", "log", "sqrt", "sigmoid", "tanh", "relu", "neg", "isnan",
                     "isfinite", "clone", "numel", "sin", "cos", "log1p", "rsqrt", "square",
                     "reciprocal", "frac", "atan"))
        call = f"lib.{fn}({x})"
    elif which == "to":
        target = g.pick(("lib.float64", "lib.int32", "lib.bool", "lib.float16", "lib.float32"))
        target = g.hostile(target, 0.15, ("'cpu'", "'cpu:0'", "'cpu:x'", "'cuda'", "None", "3"))
        call = f"{x}.to({target})"
    elif which == "type":
        call = f"{x}.type({g.pick(('lib.float64', 'lib.int32', 'None'))})"
        if "None" in call:
            call = f"{x}.type()"
    else:
        call = f"{x}.{which}()"
    return g.finish(f"unary.{which}", call)


BINARY_OPS = ("+", "-", "*", "/", "//", "%", "**", "&", "|", "^", "==", "!=", "<", "<=", ">",
              ">=")
BINARY_METHODS = ("add", "sub", "mul", "div", "maximum", "minimum", "pow", "eq", "ne", "lt",
                  "le", "gt", "ge", "allclose", "equal",
                  # PyTorch's other names, logical and bitwise operations
                  "multiply", "subtract", "divide", "true_divide", "greater", "less_equal",
                  "not_equal", "logical_and", "logical_xor", "bitwise_and", "bitwise_or",
                  "clamp_min", "clamp_max", "div_floor", "div_trunc", "atan2", "fmod", "hypot",
                  "isclose", "logaddexp", "copysign", "xlogy", "float_power")


def _broadcast_partner(g: Gen, shape: tuple) -> tuple:
    """A shape that broadcasts with `shape` (mostly), or one that does not."""
    if g.chance(0.08):
        return g.shape(g.int(1, 3), 2, 4)
    out = list(shape[g.int(0, len(shape)):])
    out = [1 if g.chance(0.3) else s for s in out]
    if g.chance(0.2):
        out = [g.int(1, 2)] + out
    return tuple(out)


def gen_binary(g: Gen) -> Case:
    shape = g.shape(g.int(0, 3))
    a = g.tensor(shape, g.dtype(ALL_DTYPES), g.pick(("normal", "special", "pos", "ties")))
    form = g.pick(("tt", "tt", "ts", "st", "method", "inplace", "inplace_method"))
    if form in ("ts", "st") or g.chance(0.1):
        b = g.hostile(g.pick((2, 0.5, -1, 0, True, 3.0, 1e40, "float('nan')", -2)))
    else:
        b = g.tensor(_broadcast_partner(g, shape), g.dtype(ALL_DTYPES),
                     g.pick(("normal", "special", "pos", "ties")))
    op = g.pick(BINARY_OPS + ("@",) if form in ("tt", "ts", "st") else BINARY_OPS)
    extra = None
    if form in ("tt", "ts"):
        call, name = f"{a} {op} {b}", op
    elif form == "st":
        call, name = f"{b} {op} {a}", "r" + op
    elif form == "method":
        m = g.pick(BINARY_METHODS)
        alpha = ""
        if m in ("add", "sub", "subtract") and g.chance(0.4):
            alpha = f", alpha={g.hostile(g.pick((2, 0.5, -1)))}"
        elif m.startswith("div_"):      # div with a rounding mode
            alpha = f", rounding_mode={g.hostile(repr(m[4:]), 0.1, ('None', repr('x')))}"
            m = "div"
        call, name = f"{a}.{m}({b}{alpha})", m
        if g.chance(0.3) and m in ("add", "sub", "mul", "div", "maximum", "minimum", "pow",
                                   "multiply", "subtract", "divide", "logical_and",
                                   "bitwise_and", "clamp_min"):
            call = f"lib.{m}({a}, {b}{alpha})"
    else:
        # in place: on a fresh non-leaf copy (a leaf that requires grad refuses, as in torch)
        g.emit(f"y = {a} * 1" if g.chance(0.8) else f"y = {a}")
        if form == "inplace":
            iop = g.pick(("+=", "-=", "*=", "/="))
            g.emit(f"y {iop} {b}")
            call, name = "y", iop
        else:
            m = g.pick(("add_", "sub_", "mul_", "div_", "clamp_", "fill_", "zero_", "copy_"))
            if m == "clamp_":
                call = f"y.clamp_({g.hostile(-0.5)}, {g.hostile(0.5)})"
            elif m == "zero_":
                call = "y.zero_()"
            elif m == "fill_":
                call = f"y.fill_({g.hostile(g.pick((1.5, 2, True)))})"
            else:
                call = f"y.{m}({b})"
            call, name = f"({call}, y)[1]", m
        extra = {"a": a}
    return g.finish(f"binary.{name}", call, extra=extra)


def gen_reduction(g: Gen) -> Case:
    ndim = g.int(0, 4)
    x = g.tensor(g.shape(ndim, 1, 4, 0.06), g.dtype(ALL_DTYPES),
                 g.pick(("normal", "special", "ties", "big", "pos")))
    m = g.pick(("sum", "mean", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "norm",
                "std", "var", "all", "any", "cumprod", "cummax", "cummin", "median", "nanmedian",
                "kthvalue", "diff", "logcumsumexp", "mode"))
    args = []
    if g.chance(0.75):
        if g.chance(0.2) and ndim >= 2 and m not in ("argmax", "argmin", "max", "min"):
            dim = (g.int(-ndim, ndim - 1), g.int(-ndim, ndim - 1))
        else:
            dim = g.int(-max(ndim, 1), max(ndim, 1) - 1)
        args.append(f"dim={g.hostile(dim, pool=HOSTILE_DIM)}")
        if g.chance(0.5):
            args.append(f"keepdim={g.hostile(g.chance(0.5), 0.05)}")
    if m == "norm" and g.chance(0.6):
        p = g.hostile(g.pick((1, 2, 0, 3, "float('inf')", 0.5, "'fro'", -1)))
        args.insert(0, f"p={p}")
    if m in ("std", "var") and g.chance(0.5):
        args.append(g.pick((f"unbiased={g.chance(0.5)}", f"correction={g.hostile(g.int(0, 2))}")))
    if m == "kthvalue":
        args.insert(0, f"{g.hostile(g.int(1, 3))}")
    if m in ("sum", "mean", "prod") and g.chance(0.2):
        args.append(f"dtype={g.pick(('lib.float64', 'lib.int64', 'lib.float32'))}")
    call = f"{x}.{m}({', '.join(args)})"
    if m == "mode":
        # (NaN out: PyTorch's mode sorts a slice holding NaN in no consistent order)
        call = f"{x}.nan_to_num(0.0).mode({', '.join(args)})"
    backward_of = "out[0] if isinstance(out, tuple) else out"
    if m in ("kthvalue", "median", "nanmedian"):
        # which of equal elements these return the index of is left open by PyTorch (its
        # CPU kernels select in place): the values alone are compared, and no gradient (it
        # goes to that index; test_torch_names_more.py checks it on distinct values)
        call = f"(lambda r: r.values if isinstance(r, tuple) else r)({call})"
        backward_of = "None"
    if g.chance(0.15) and m in ("sum", "mean", "prod", "max", "min", "norm", "std", "var"):
        call = f"lib.{m}({x}{', ' if args else ''}{', '.join(args)})"
    return g.finish(f"reduce.{m}", call, backward_of=backward_of)


def gen_indexing(g: Gen) -> Case:
    ndim = g.int(1, 3)
    shape = g.shape(ndim, 1, 5, 0.05)
    x = g.tensor(shape, g.dtype(ALL_DTYPES))
    s = shape[0]
    idx = g.pick((
        f"{g.int(-s - 1, s)}", f"{g.int(-s, s)}:{g.int(-s, s + 1)}", f"::{g.int(1, 3)}",
        "::-1", "...", f"..., {g.int(-1, 0)}", "None", "None, ..., None",
        f"[{g.int(-s, s)}, {g.int(-s, s - 1)}]", f"[[0, {g.int(-1, s)}], [{g.int(0, s)}, 0]]",
        f"lib.tensor([{g.int(-s, s)}, 0])", f"lib.tensor(arr({shape!r}, 'bool', '', 7))",
        f"lib.tensor(arr(({s},), 'bool', '', 8))", "lib.tensor([True])", "[]", "()",
        f"{g.int(0, 2)}, {g.int(0, 2)}", "1.5", "'a'", "lib.tensor(1)", "lib.tensor([1.0])",
        "slice(None, None, 0)", f"0:{s}:{g.int(1, 2)}, None", "[True, False]",
        "lib.tensor([[0, 1]])", "2**40", "[0, 1], [0, 1]", "..., ...",
    ))
    if g.chance(0.25):
        value = g.hostile(g.pick(("1.5", "0", "True", "lib.tensor(2.0)", "lib.tensor([1.0, 2.0])",
                                  "float('nan')")), 0.1)
        g.emit(f"y = {x} * 1 if {x}.dtype != lib.bool else {x}.clone()")
        g.emit(f"y[{idx}] = {value}")
        return g.finish("index.setitem", "y")
    return g.finish("index.getitem", f"{x}[{idx}]")


def gen_shape(g: Gen) -> Case:
    ndim = g.int(0, 4)
    shape = g.shape(ndim, 1, 4, 0.05)
    x = g.tensor(shape, g.dtype(ALL_DTYPES))
    n = int(np.prod(shape)) if shape else 1
    m = g.pick(("reshape", "view", "flatten", "permute", "transpose", "t", "squeeze", "unsqueeze",
                "expand", "repeat", "cat", "stack", "where", "T", "mT", "swapaxes", "size",
                "numel", "item", "tolist", "view_as", "expand_as", "len", "iter", "split_dim"))
    d = max(ndim, 1)
    if m in ("reshape", "view"):
        target = g.pick(((n,), (-1,), (1, n), (n, 1, 1), (-1, 1), (2, -1), (n + 1,), (-1, -1), (0,),
                         tuple(reversed(shape))))
        target = tuple(g.hostile(t) for t in target)
        call = (f"{x}.{m}({', '.join(target)})" if g.chance(0.7) or not target
                else f"{x}.{m}(({', '.join(target)},))")
        if m == "view" and g.chance(0.3):
            g.emit(f"y = {x}.transpose(0, -1) if {x}.dim() > 1 else {x}")
            call = call.replace(f"{x}.", "y.", 1)
    elif m == "flatten":
        start = g.hostile(g.int(-d, d - 1), pool=HOSTILE_DIM)
        end = g.hostile(g.int(-d, d - 1), pool=HOSTILE_DIM)
        call = f"{x}.flatten({start}, {end})"
    elif m == "permute":
        perm = list(g.rng.permutation(ndim)) if ndim else []
        perm = [g.hostile(int(p), pool=HOSTILE_DIM) for p in perm]
        if g.chance(0.1):
            perm = perm[:-1]
        call = f"{x}.permute({', '.join(perm)})"
    elif m in ("transpose", "swapaxes"):
        d0 = g.hostile(g.int(-d, d - 1), pool=HOSTILE_DIM)
        d1 = g.hostile(g.int(-d, d - 1), pool=HOSTILE_DIM)
        call = f"{x}.{m}({d0}, {d1})"
    elif m in ("t", "T", "mT"):
        call = f"{x}.t()" if m == "t" else f"{x}.{m}"
    elif m == "squeeze":
        dim = g.hostile(g.int(-d, d - 1), pool=HOSTILE_DIM) if g.chance(0.6) else ""
        call = f"{x}.squeeze({dim})"
    elif m == "unsqueeze":
        call = f"{x}.unsqueeze({g.hostile(g.int(-d - 1, d), pool=HOSTILE_DIM)})"
    elif m == "expand":
        target = [g.pick((-1, s, 3)) if s == 1 else g.pick((-1, s, s)) for s in shape]
        if g.chance(0.3):
            target = [2] + target
        call = f"{x}.expand({', '.join(g.hostile(t) for t in target)})"
    elif m == "repeat":
        reps = [g.int(0, 3) for _ in range(ndim + g.int(0, 1))]
        call = f"{x}.repeat({', '.join(g.hostile(r) for r in reps)})"
    elif m in ("cat", "stack"):
        other = list(shape)
        if ndim and g.chance(0.6) and m == "cat":
            other[g.int(0, ndim - 1)] = g.int(0, 3)
        y = g.tensor(tuple(other), g.dtype(ALL_DTYPES))
        dim = g.hostile(g.int(-d, d - 1), pool=HOSTILE_DIM)
        seq = g.pick((f"[{x}, {y}]", f"({x}, {y})", f"[{x}]", "[]", f"[{x}, 1.0]"))
        call = f"lib.{m}({seq}, dim={dim})"
    elif m == "where":
        c = g.tensor(shape, "bool")
        y = g.tensor(_broadcast_partner(g, shape), g.dtype(ALL_DTYPES))
        call = g.pick((f"lib.where({c}, {x}, {y})", f"lib.where({c})",
                       f"lib.where({c}, {x}, {g.hostile(0.5)})", f"lib.where({x} > 0, {x}, {y})",
                       # (the method: missing until seed 20261215's where case was checked)
                       f"{x}.where({c}, {y})", f"{x}.where({c}, {g.hostile(0.5)})"))
    elif m == "size":
        call = f"{x}.size({g.hostile(g.int(-d, d - 1), pool=HOSTILE_DIM) if g.chance(0.7) else ''})"
    elif m == "numel":
        call = f"{x}.numel()"
    elif m == "item":
        call = f"{x}.item()"
    elif m == "tolist":
        call = f"{x}.tolist()"
    elif m in ("view_as", "expand_as"):
        y = g.tensor(g.pick((shape, (n,), (2,) + shape, (1,))), "float32", grad=False)
        call = f"{x}.{m}({y})"
    elif m == "len":
        call = f"len({x})"
    elif m == "iter":
        call = f"list({x})"
    else:
        call = f"{x}.sum({g.hostile(tuple(range(ndim)))})"
    return g.finish(f"shape.{m}", call, backward_of="out if isinstance(out, lib.Tensor) else None")


def gen_matmul(g: Gen) -> Case:
    n, k, m = g.int(0, 4), g.int(0, 4), g.int(0, 4)
    dt = g.dtype(FLOAT_DTYPES + ("int64", "float32"))
    dt2 = dt if g.chance(0.85) else g.dtype(ALL_DTYPES)
    shapes = g.pick(([(n, k), (k, m)], [(k,), (k,)], [(n, k), (k,)], [(k,), (k, m)],
                     [(2, n, k), (2, k, m)], [(2, n, k), (k, m)], [(n, k), (3, k, m)],
                     [(n, k), (k + 1, m)], [(2, 1, n, k), (3, k, m)], [(), (k,)]))
    a = g.tensor(shapes[0], dt)
    b = g.tensor(shapes[1], dt2)
    which = g.pick(("mm", "matmul", "@", "lib.mm", "lib.matmul", "linear", "mm_scalar", "dot",
                    "mv", "outer", "bmm", "lib.dot", "lib.bmm"))
    if which == "@":
        call = f"{a} @ {b}"
    elif which == "linear":
        w = g.tensor(g.pick(((m, k), (m, k + 1), (k,))), dt)
        bias = g.pick(("None", g.tensor((m,), dt) if True else ""))
        call = f"F.linear({a}, {w}, {bias})"
    elif which == "mm_scalar":
        call = f"{a}.mm({g.hostile(2, 1.0)})"
    elif which.startswith("lib."):
        call = f"{which}({a}, {b})"
    else:
        call = f"{a}.{which}({b})"
    return g.finish(f"matmul.{which}", call)


def _ints_arg(g: Gen, values: tuple, p: float | None = None) -> str:
    """A geometry argument: an int, a tuple of them, or a hostile stand-in."""
    if len(values) == 1 or (len(set(values)) == 1 and g.chance(0.5)):
        return g.hostile(values[0], p)
    return g.hostile(tuple(values), p)


def gen_conv(g: Gen) -> Case:
    dims = g.pick((1, 2, 2))
    transposed = g.chance(0.35)
    dt = g.dtype(FLOAT_DTYPES + ("float32",)) if g.chance(0.97) else g.dtype(ALL_DTYPES)
    groups = g.pick((1, 1, 1, 2, 3)) if g.chance(0.9) else g.pick((0, -1, 4))
    per_group = max(groups, 1)     # channel counts stay valid shapes when groups is not
    # 'sized': shapes where the planner's other algorithms (Winograd, FFT, depthwise,
    # pointwise, direct) apply, and may be forced
    sized = g.chance(0.3)
    most = 12 if sized else 3
    cin = per_group * g.int(0 if g.chance(0.05) else 1, most)
    cout = (per_group if g.chance(0.9) else 1) * g.int(0 if g.chance(0.03) else 1, most)
    if g.chance(0.05):
        cin += 1
    big = g.chance(0.15)
    if sized:
        sizes = tuple(g.int(6, 40) for _ in range(dims))
        kernel = (g.pick((1, 3, 3, 3, 5, 7, 9, 11)),) * dims
        if g.chance(0.3):
            groups, per_group, cout = cin, max(cin, 1), cin * g.pick((1, 1, 2))   # depthwise
    else:
        sizes = tuple(g.int(0 if g.chance(0.05) else 1, 24 if big else 9) for _ in range(dims))
        kernel = tuple(g.int(0 if g.chance(0.03) else 1, 5) for _ in range(dims))
    stride = tuple(g.pick((1, 1, 1, 1, 2) if sized else (1, 1, 2, 3)) for _ in range(dims))
    dilation = tuple(g.pick((1, 1, 1, 1, 1, 2) if sized else (1, 1, 2, 3)) for _ in range(dims))
    padding = tuple(g.pick((0, 0, 1, 2)) for _ in range(dims))
    extreme = g.chance(0.07)
    if extreme:   # values that drive loops or sizes: the answer must come fast
        which = g.pick(("stride", "dilation", "padding"))
        val = g.pick((10**4, 2**31, 10**6, 2**63)) if which != "padding" else g.pick((10**4, 2**31))
        if which == "stride":
            stride = (val,) * dims
        elif which == "dilation":
            dilation = (val,) * dims
        else:
            padding = (val,) * dims
    batched = g.chance(0.9)
    xshape = ((g.int(1, 3),) if batched else ()) + (cin,) + sizes
    kinds = ("normal",) * 6 + ("special", "ties", "onenan", "onenan")
    x = g.tensor(xshape, dt, g.pick(kinds + ("onenan",) * 4 if sized else kinds))
    if transposed:
        wshape = (cin, cout // per_group) + kernel
    else:
        wshape = (cout, cin // per_group) + kernel
    w = g.tensor(wshape, dt if g.chance(0.97) else g.dtype(ALL_DTYPES), "normal")
    bias = "None"
    if g.chance(0.6):
        channels = wshape[1] * per_group if transposed else cout
        bias = g.tensor((g.pick((channels,) * 9 + (channels + 1,)),), dt, "normal")
    args = [x, w, bias]
    kw = [f"stride={_ints_arg(g, stride, 0 if extreme else None)}",
          f"padding={_ints_arg(g, padding, 0 if extreme else None)}"]
    if transposed:
        op_max = [max(s, d) - 1 for s, d in zip(stride, dilation, strict=True)]
        outpad = tuple(g.int(0, min(o + (1 if g.chance(0.1) else 0), 10**3)) for o in op_max)
        kw.append(f"output_padding={_ints_arg(g, outpad, 0 if extreme else None)}")
    kw.append(f"dilation={_ints_arg(g, dilation, 0 if extreme else None)}")
    kw.append(f"groups={g.hostile(groups, 0 if extreme else 0.05)}")
    if not transposed and g.chance(0.1):
        kw[1] = "padding=" + g.pick(("'same'", "'valid'", "'full'"))
    name = f"conv_transpose{dims}d" if transposed else f"conv{dims}d"
    if sized and g.chance(0.6):   # corrnet only: force an algorithm, or a tiny memory budget
        algorithm = g.pick(("gemm", "pointwise", "depthwise", "direct", "winograd", "winograd",
                            "fft", "fft"))
        g.emit(f"if lib.__name__ == 'corrnet':\n    lib.backends.conv.algorithm = {algorithm!r}")
    if sized and g.chance(0.1):
        g.emit("if lib.__name__ == 'corrnet':\n    lib.backends.conv.memory_budget = 2**14")
    if g.chance(0.03):
        g.emit("lib.backends.cudnn.benchmark = True")
    if g.chance(0.1):
        layer = f"nn.{'ConvTranspose' if transposed else 'Conv'}{dims}d"
        construct = f"{layer}({cin}, {cout}, {kernel!r}, {', '.join(kw)}, bias={bias != 'None'})"
        return _layer_case(g, layer, construct, x)
    return g.finish(f"F.{name}", f"F.{name}({', '.join(args)}, {', '.join(kw)})")


def gen_pool(g: Gen) -> Case:
    dims = g.pick((1, 2, 2))
    kind = g.pick(("max", "avg", "adaptive_max", "adaptive_avg", "max", "avg", "unpool"))
    dt = g.dtype(FLOAT_DTYPES) if g.chance(0.95) else g.dtype(ALL_DTYPES)
    batched = g.chance(0.85)
    sizes = tuple(g.int(0 if g.chance(0.04) else 1, 12) for _ in range(dims))
    xshape = ((g.int(1, 2),) if batched else ()) + (g.int(0 if g.chance(0.03) else 1, 3),) + sizes
    x = g.tensor(xshape, dt, g.pick(("normal",) * 5 + ("special", "ties", "ties", "onenan")))
    if kind.startswith("adaptive"):
        outs = tuple(g.pick((1, 2, 3, 4, 5, s, s + 1, 0, None if dims == 2 else 1)) for s in sizes)
        osz = _ints_arg(g, outs)
        ri = ""
        if kind == "adaptive_max" and g.chance(0.4):
            ri = ", return_indices=True"
        name = f"{kind}_pool{dims}d"
        return g.finish(f"F.{name}", f"F.{name}({x}, {osz}{ri})",
                        backward_of="out[0] if isinstance(out, tuple) else out")
    kernel = tuple(g.int(0 if g.chance(0.03) else 1, 4) for _ in range(dims))
    stride = tuple(g.int(1, 4) for _ in range(dims))
    padding = tuple(g.int(0, max(k // 2, 0) + (1 if g.chance(0.1) else 0)) for k in kernel)
    extreme = g.chance(0.05)
    if extreme:
        stride = (g.pick((10**4, 2**31, 2**63)),) * dims
    kw = [f"kernel_size={_ints_arg(g, kernel)}"]
    if g.chance(0.8):
        kw.append(f"stride={_ints_arg(g, stride, 0 if extreme else None)}")
    kw.append(f"padding={_ints_arg(g, padding)}")
    if kind == "max" and g.chance(0.4):
        kw.append(f"dilation={_ints_arg(g, tuple(g.int(1, 3) for _ in range(dims)))}")
    if g.chance(0.4):
        kw.append(f"ceil_mode={g.hostile(g.chance(0.5), 0.05)}")
    if kind == "avg":
        if g.chance(0.4):
            kw.append(f"count_include_pad={g.chance(0.5)}")
        if dims == 2 and g.chance(0.3):
            kw.append(f"divisor_override={g.hostile(g.pick((None, 1, 2, 3, 0)))}")
    name = f"{'max' if kind == 'unpool' else kind}_pool{dims}d"
    if kind == "unpool":
        g.emit(f"_v, _i = F.max_pool{dims}d({x}, {', '.join(kw)}, return_indices=True)")
        osz = ""
        if g.chance(0.3):
            osz = f", output_size={g.hostile(tuple(xshape[-dims:]))}"
        geometry = ", ".join(k for k in kw if not k.startswith(("dilation", "ceil")))
        call = f"F.max_unpool{dims}d(_v, _i, {geometry}{osz})"
        return g.finish(f"F.max_unpool{dims}d", call)
    if kind == "max" and g.chance(0.4):
        kw.append("return_indices=True")
    if g.chance(0.08):
        layer = f"nn.{'MaxPool' if kind == 'max' else 'AvgPool'}{dims}d"
        return _layer_case(g, layer, f"{layer}({', '.join(kw)})", x)
    return g.finish(f"F.{name}", f"F.{name}({x}, {', '.join(kw)})",
                    backward_of="out[0] if isinstance(out, tuple) else out")


def gen_pad(g: Gen) -> Case:
    which = g.pick(("pad", "pad", "pad", "unfold", "fold", "padlayer"))
    dt = g.dtype(FLOAT_DTYPES) if g.chance(0.9) else g.dtype(ALL_DTYPES)
    if which == "pad" or which == "padlayer":
        ndim = g.int(1, 5)
        shape = g.shape(ndim, 1, 6, 0.05)
        x = g.tensor(shape, dt, g.pick(("normal",) * 5 + ("special",)))
        mode = g.hostile(repr(g.pick(("constant", "constant", "reflect", "replicate", "circular"))),
                         0.05)
        npad = g.pick((2, 2, 4, 4, 6, 0, 1, 3, 8))
        pads = tuple(g.int(-2, 4) for _ in range(npad))
        if which == "padlayer":
            layer = g.pick(("ZeroPad", "ConstantPad", "ReflectionPad", "ReplicationPad",
                            "CircularPad")) + g.pick(("1d", "2d"))
            arg = g.hostile(g.pick((g.int(0, 3), pads[:2], pads[:4], 2.5)))
            extra = f", {g.hostile(1.5)}" if layer.startswith("ConstantPad") else ""
            return _layer_case(g, f"nn.{layer}", f"nn.{layer}({arg}{extra})", x)
        value = ""
        if g.chance(0.3):
            value = ", value=" + g.hostile(g.pick((0.5, None, -1, "float('nan')")))
        if g.chance(0.9):
            padarg = g.hostile(pads, 0.05)
        else:
            padarg = g.pick(("[1, 1]", "(1.5, 1)", "()", "(2**31, 0)"))
        return g.finish("F.pad", f"F.pad({x}, {padarg}, mode={mode}{value})")
    c = g.int(0 if g.chance(0.05) else 1, 3)
    k = tuple(g.int(1, 3) for _ in range(2))
    dil = tuple(g.int(1, 2) for _ in range(2))
    pad = tuple(g.int(0, 1) for _ in range(2))
    st = tuple(g.int(1, 2) for _ in range(2))
    geo = (f"kernel_size={_ints_arg(g, k)}, dilation={_ints_arg(g, dil)}, "
           f"padding={_ints_arg(g, pad)}, stride={_ints_arg(g, st)}")
    if which == "unfold":
        x = g.tensor((g.int(1, 2), c, g.int(1, 6), g.int(1, 6)) if g.chance(0.9) else (c, 4, 4), dt)
        return g.finish("F.unfold", f"F.unfold({x}, {geo})")
    out_size = (g.int(1, 6), g.int(1, 6))
    blocks = 1
    for o, kk, d, p, s in zip(out_size, k, dil, pad, st, strict=True):
        blocks *= max((o + 2 * p - d * (kk - 1) - 1) // s + 1, 0)
    if g.chance(0.1):
        blocks += 1
    x = g.tensor((g.int(1, 2), c * k[0] * k[1], blocks), dt)
    return g.finish("F.fold", f"F.fold({x}, {_ints_arg(g, out_size)}, {geo})")


def gen_activation(g: Gen) -> Case:
    x = g.tensor(g.shape(g.int(0, 4)), g.dtype(FLOAT_DTYPES + ("int64",)),
                 g.pick(("normal", "special", "big", "normal")))
    which = g.pick(("relu", "sigmoid", "tanh", "softmax", "log_softmax", "dropout", "relu_inplace",
                    "layer"))
    if which in ("softmax", "log_softmax"):
        dim = g.hostile(g.int(-2, 1), pool=HOSTILE_DIM)
        dtype = f", dtype={g.pick(('lib.float64', 'lib.float32'))}" if g.chance(0.2) else ""
        call = f"F.{which}({x}, dim={dim}{dtype})"
    elif which == "dropout":
        p = g.hostile(g.pick((0.0, 0.5, 1.0, 1.5, -0.1)))
        call = f"F.dropout({x}, p={p}, training={g.pick((False, True))})"
        if "training=True" in call and "p=0.0" not in call:
            call = f"F.dropout({x}, p={g.hostile(g.pick((1.5, -0.1, 1.0)))}, training=True)"
    elif which == "relu_inplace":
        g.emit(f"y = {x} * 1")
        call = "(F.relu(y, inplace=True), y)[1]"
    elif which == "layer":
        layer = g.pick(("nn.ReLU()", "nn.Sigmoid()", "nn.Tanh()", f"nn.Softmax(dim={g.int(-1, 0)})",
                        f"nn.LogSoftmax(dim={g.int(-1, 0)})", "nn.Flatten()", "nn.Identity()",
                        "nn.Dropout(0.5).eval()", f"nn.Flatten({g.int(0, 1)}, {g.int(-1, 1)})"))
        return _layer_case(g, layer.split("(")[0], layer, x)
    else:
        call = f"F.{which}({x})"
    return g.finish(f"F.{which}", call)


def gen_loss(g: Gen) -> Case:
    which = g.pick(("cross_entropy", "cross_entropy", "nll_loss", "mse_loss", "ce_probs", "module"))
    n, c = g.int(0 if g.chance(0.05) else 1, 4), g.int(1, 4)
    dt = g.dtype(FLOAT_DTYPES)
    extra_dims = g.shape(g.int(0, 2), 1, 3) if g.chance(0.2) else ()
    batched = g.chance(0.9)
    ishape = ((n,) if batched else ()) + (c,) + extra_dims
    x = g.tensor(ishape, dt, g.pick(("normal",) * 5 + ("special", "big")))
    kw = []
    if g.chance(0.5):
        kw.append(f"reduction={g.hostile(repr(g.pick(('mean', 'sum', 'none'))), 0.05)}")
    if which == "mse_loss":
        y = g.tensor(_broadcast_partner(g, ishape) if g.chance(0.1) else ishape, dt)
        return g.finish("F.mse_loss", f"F.mse_loss({x}, {y}{''.join(', ' + k for k in kw)})")
    tshape = ((n,) if batched else ()) + extra_dims
    if which == "ce_probs":
        t = g.tensor(ishape, dt, "pos", grad=False)
        g.emit(f"{t} = {t} / {t}.sum(dim={1 if batched else 0}, keepdim=True)")
    else:
        seed = int(g.rng.integers(2**31))
        hi = c + (1 if g.chance(0.05) else 0)
        tdt = g.pick(("int64",) * 9 + ("int32",))
        t = g.name("t")
        g.emit(f"{t} = lib.tensor(np.random.default_rng({seed}).integers(0, {hi}, {tshape!r})"
               f".astype({tdt!r}))")
        if g.chance(0.2):
            kw.append(f"ignore_index={g.hostile(g.pick((0, 1, -100, -1)))}")
    if g.chance(0.3):
        wt = g.tensor(g.pick(((c,),) * 5 + ((c + 1,),)), dt, "pos", grad=False)
        kw.append(f"weight={wt}")
    if which in ("cross_entropy", "ce_probs") and g.chance(0.3):
        kw.append(f"label_smoothing={g.hostile(g.pick((0.1, 0.0, 0.5, 1.0, 1.5)))}")
    if which == "module":
        cls = g.pick(("CrossEntropyLoss", "NLLLoss", "MSELoss"))
        if cls == "MSELoss":
            kw = [k for k in kw if k.startswith("reduction")]
            t = g.tensor(ishape, dt, grad=False)
        else:
            kw = [k for k in kw if not k.startswith("label") or cls == "CrossEntropyLoss"]
        return g.finish(f"nn.{cls}", f"nn.{cls}({', '.join(kw)})({x}, {t})")
    fn = "cross_entropy" if which == "ce_probs" else which
    return g.finish(f"F.{which}", f"F.{fn}({x}, {t}{''.join(', ' + k for k in kw)})")


def _layer_case(g: Gen, op: str, construct: str, x: str) -> Case:
    """A layer built by `construct`, its parameters set from `arr` (in order), called on x;
    the parameters' gradients are compared too."""
    seed = int(g.rng.integers(2**31))
    g.emit(f"m = {construct}")
    g.emit("_params = list(m.parameters())")
    g.emit("for _k, _p in enumerate(_params):")
    g.emit(f"    _p.data = lib.tensor(arr(tuple(_p.shape), 'float64', 'normal', {seed} + _k))"
           ".to(_p.dtype)")
    if op.startswith("nn.BatchNorm"):
        g.emit(f"m.{g.pick(('train', 'eval'))}()")
    extra = {"param shapes": "[tuple(_p.shape) for _p in _params]"}
    case = g.finish(op, f"m({x})", backward_of="out[0] if isinstance(out, tuple) else out",
                    extra=extra, force_backward=True)
    if "_y.backward" in case.code:
        case.code = case.code.replace(
            "result = {", "result = {'param grads': [_p.grad for _p in _params], ", 1)
    return case


def gen_layer(g: Gen) -> Case:
    which = g.pick(("Linear", "BatchNorm1d", "BatchNorm2d", "Sequential"))
    dt = g.dtype(("float32", "float32", "float64"))
    if which == "Linear":
        fin, fout = g.int(0, 4), g.int(0, 4)
        x = g.tensor(g.shape(g.int(0, 2), 1, 3) + (fin if g.chance(0.9) else fin + 1,), dt)
        construct = (f"nn.Linear({g.hostile(fin)}, {g.hostile(fout)}, bias={g.chance(0.7)}, "
                     f"dtype=lib.{dt})")
        return _layer_case(g, "nn.Linear", construct, x)
    if which.startswith("BatchNorm"):
        c = g.int(1, 4)
        shape = (g.int(1, 4), c)
        shape += (g.int(1, 3),) if which == "BatchNorm1d" and g.chance(0.5) else ()
        shape += (g.int(1, 3), g.int(1, 3)) if which == "BatchNorm2d" else ()
        if g.chance(0.1):
            shape = shape[:-1]
        x = g.tensor(shape, dt, g.pick(("normal",) * 5 + ("special", "big")))
        eps = g.hostile(1e-5, 0.05)
        momentum = g.hostile(g.pick((0.1, None, 0.5)), 0.05)
        kw = (f"eps={eps}, momentum={momentum}, affine={g.chance(0.7)}, "
              f"track_running_stats={g.chance(0.8)}, dtype=lib.{dt}")
        case = _layer_case(g, f"nn.{which}", f"nn.{which}({g.hostile(c, 0.05)}, {kw})", x)
        case.code = case.code.replace(
            "result = {", "result = {'running': [getattr(m, 'running_mean', None), "
            "getattr(m, 'running_var', None)], ", 1)
        return case
    c = g.int(1, 3)
    x = g.tensor((g.int(1, 2), c, g.int(4, 9), g.int(4, 9)), dt)
    construct = (f"nn.Sequential(nn.Conv2d({c}, 4, 3, padding=1, dtype=lib.{dt}), nn.ReLU(), "
                 "nn.MaxPool2d(2), nn.Flatten(), nn.Identity())")
    return _layer_case(g, "nn.Sequential", construct, x)


def gen_autograd(g: Gen) -> Case:
    x = g.tensor(g.shape(g.int(1, 3)), g.dtype(("float32", "float64")), grad=True)
    which = g.pick(("twice", "retain", "accumulate", "no_grad", "detach", "grad_of_nonscalar",
                    "chain", "floor_mod", "retain_grad", "inplace_leaf", "inplace_saved"))
    if which == "twice":
        g.emit(f"y = ({x} * {x}).sum()")
        g.emit("y.backward()")
        g.emit("y.backward()")
        call = f"{x}.grad"
    elif which == "retain":
        g.emit(f"y = ({x}.exp() * 2).sum()")
        g.emit("y.backward(retain_graph=True)")
        g.emit("y.backward()")
        call = f"{x}.grad"
    elif which == "accumulate":
        g.emit(f"({x} * 3).sum().backward()")
        g.emit(f"({x} ** 2).sum().backward()")
        call = f"{x}.grad"
    elif which == "no_grad":
        g.emit("with lib.no_grad():")
        g.emit(f"    y = {x} * 2")
        call = "(y.requires_grad, y.is_leaf, y)"
    elif which == "detach":
        call = f"({x}.detach() * 2 + {x}).sum()"
    elif which == "grad_of_nonscalar":
        g.emit(f"({x} * 2).backward()")
        call = f"{x}.grad"
    elif which == "chain":
        call = f"(({x}.tanh() * {x}.sigmoid()).relu() / ({x}.abs() + 1)).log_softmax(-1)"
    elif which == "floor_mod":
        op = g.pick(("%", "//"))
        other = g.pick(("1.0", "0.7", "-2", f"({x}.detach() + 3)"))
        call = f"(({x} {op} {other}) * 3 + {x})"
    elif which == "retain_grad":
        g.emit(f"y = {x} * 2")
        g.emit("y.retain_grad()")
        g.emit("(y * y).sum().backward()")
        call = f"(y.grad, {x}.grad)"
    elif which == "inplace_leaf":
        call = f"{x}.add_(1)"
    else:
        g.emit(f"y = {x} * 1")
        g.emit("z = y.exp()")
        g.emit("y.add_(1)")
        g.emit("z.sum().backward()")
        call = f"{x}.grad"
    return g.finish(f"autograd.{which}", call)


def gen_filter(g: Gen) -> Case:
    """corrnet.corr2d / convolve2d against scipy.signal.correlate2d / convolve2d."""
    fn = g.pick(("corr2d", "convolve2d"))
    sp = {"corr2d": "correlate2d", "convolve2d": "convolve2d"}[fn]
    mode = g.pick(("valid", "same", "full"))
    boundary = g.pick(("fill", "wrap", "symm"))
    h, w = g.int(1, 12), g.int(1, 12)
    kh, kw = g.int(1, 5), g.int(1, 5)
    if mode == "valid":
        kh, kw = min(kh, h), min(kw, w)
    if mode != "valid" and boundary == "wrap":   # scipy wraps at most once around
        kh, kw = min(kh, h), min(kw, w)
    dt = g.pick(("float64", "float64", "float32", "int64"))
    kind = g.pick(("normal",) * 6 + ("special",))
    xs, ks = int(g.rng.integers(2**31)), int(g.rng.integers(2**31))
    fill = g.pick((0, 0, 1.5, -2)) if boundary == "fill" else 0
    args = f"mode={mode!r}, boundary={boundary!r}, fillvalue={fill!r}"
    code = (f"X = arr({(h, w)!r}, {dt!r}, {kind!r}, {xs})\n"
            f"K = arr({(kh, kw)!r}, {dt!r}, 'normal', {ks})\n"
            f"out = lib.{fn}(lib.tensor(X), lib.tensor(K), {args})\n"
            "result = {'out': out}")
    oracle = (f"X = arr({(h, w)!r}, {dt!r}, {kind!r}, {xs})\n"
              f"K = arr({(kh, kw)!r}, {dt!r}, 'normal', {ks})\n"
              f"out = scipy.signal.{sp}(X, K, {args})\n"
              "result = {'out': out}")
    return Case(g.seed, g.index, f"filter.{fn}", code, oracle="scipy", oracle_code=oracle)


# family -> (generator, weight): the weights spread the calls over the API
FAMILIES = {
    "creation": (gen_creation, 6), "unary": (gen_unary, 8), "binary": (gen_binary, 12),
    "reduction": (gen_reduction, 9), "indexing": (gen_indexing, 7), "shape": (gen_shape, 9),
    "matmul": (gen_matmul, 5), "conv": (gen_conv, 14), "pool": (gen_pool, 10),
    "pad": (gen_pad, 6), "activation": (gen_activation, 5), "loss": (gen_loss, 6),
    "layer": (gen_layer, 4), "autograd": (gen_autograd, 4), "filter": (gen_filter, 4),
}
_NAMES = list(FAMILIES)
_WEIGHTS = np.array([FAMILIES[n][1] for n in _NAMES], dtype=float)
_WEIGHTS /= _WEIGHTS.sum()


# seed -1: the harness's self-test, one case of each outcome the runner must tell apart
# (name, the class it must get, code)
SELF_TEST = (
    ("agrees", "agrees", "out = lib.ones(2) * 2"),
    ("wrong", "wrong", "out = lib.tensor([1.0]) + (1 if lib.__name__ == 'corrnet' else 0)"),
    ("cryptic", "cryptic",
     "out = lib.ones(2)\nif lib.__name__ == 'corrnet':\n    np.zeros(2).reshape(3)"),
    ("numpy_warning", "cryptic",
     "out = lib.ones(2)\nif lib.__name__ == 'corrnet':\n"     # (inf + -inf: NaN, warned)
     "    lib.kernels.activation.average_pool_numpy(\n"
     "        np.array([[[[np.inf, -np.inf], [1.0, 1.0]]]]), 2)"),
    ("crash", "crash",
     "out = lib.ones(2)\nif lib.__name__ == 'corrnet':\n    import os\n    os.abort()"),
    ("hang", "hang", "out = lib.ones(2)\nif lib.__name__ == 'corrnet':\n    import time\n"
                     "    time.sleep(3600)"),
    # the oracle's call leaves the process broken, and the next call dies: not corrnet's
    ("oracle_corrupts", "skip",
     "import builtins, os\nout = lib.ones(2)\nif lib.__name__ == 'torch':\n"
     "    builtins.fuzz_self_test_broken = True\n"
     "elif getattr(builtins, 'fuzz_self_test_broken', False):\n    os.abort()"),
)


def make_case(seed: int, index: int) -> Case:
    """The case numbered `index` of the run with `seed` (the same in every process); seed -1
    gives the self-test cases."""
    if seed == -1:
        name, _, code = SELF_TEST[index]
        return Case(seed, index, f"selftest.{name}", code + "\nresult = {'out': out}")
    g = Gen(seed, index)
    family = _NAMES[int(g.rng.choice(len(_NAMES), p=_WEIGHTS))]
    return FAMILIES[family][0](g)
