"""The short fuzz run of `make test`: 80 calls of the differential fuzz suite (tests/fuzz;
`make fuzz` runs the nightly size) in each mode — compiled kernels on, off and bounds-checked
— each in a bounded worker subprocess. Strict: no call may end cryptic, wrong, crash or hang
(the classes are defined in tests/fuzz/worker.py). A failure lists each bad call with the
command that prints its repro."""

from __future__ import annotations

import os

import numpy as np
from fuzz import runner
from fuzz.cases import SELF_TEST

CALLS_PER_MODE = int(os.environ.get("CORRNET_FUZZ_SHORT", "80"))
SEED = 11


def _describe(r: dict) -> str:
    what = r.get("detail") or r.get("error") or ""
    if r.get("oracle_error"):
        what += f" (oracle: {r['oracle_error'][:100]})"
    return (f"{r['class']}/{r.get('sub', '')} {r.get('op', '?')} [{r['mode']}]: {what[:260]}\n"
            f"    repro: PYTHONPATH=tests python -m fuzz repro {SEED} {r['index']} "
            f"--mode {r['mode']}")


def test_fuzz_short_run_has_no_failing_calls():
    results = runner.run(SEED, CALLS_PER_MODE * len(runner.MODES), jobs=2, timeout=20.0,
                         chunk=CALLS_PER_MODE)
    assert len(results) == CALLS_PER_MODE * len(runner.MODES)
    bad = [r for r in results if r["class"] in runner.FAILING]
    assert not bad, (f"{len(bad)} of {len(results)} fuzz calls failed:\n"
                     + "\n".join(_describe(r) for r in bad[:60]))


def test_fuzz_harness_tells_each_outcome_apart():
    """The self-test cases (seed -1): one that agrees, one wrong, one cryptic, one that gives
    the right value with a NumPy floating-point warning (cryptic too), one that kills the
    worker (SIGABRT), one that sleeps past the time limit, and one whose oracle call leaves
    the process to die in corrnet's (skip) — each classified as such, the worker restarted
    after the crash and the hang."""
    results = runner.run(-1, len(SELF_TEST), modes=("off",), jobs=1, timeout=2.0,
                         retry_hangs=False)
    assert {r["op"]: r["class"] for r in results} == {
        f"selftest.{name}": expected for name, expected, _ in SELF_TEST}
    warned = next(r for r in results if r["op"] == "selftest.numpy_warning")
    assert warned["sub"] == "NumPy warning" and "encountered in reduce" in warned["detail"]
    corrupted = next(r for r in results if r["op"] == "selftest.oracle_corrupts")
    assert corrupted["sub"] == "oracle corrupted the process"
    crash = next(r for r in results if r["class"] == "crash")
    assert crash["sub"] == "signal SIGABRT"


def test_fuzz_oracle_defect_rules_are_narrow():
    """The nightly run's cases where PyTorch contradicts itself are not counted against
    corrnet, and only those: the same refusal for another op, or without the argument that
    triggers PyTorch's defect, is still `wrong`."""
    import os

    import torch
    from fuzz import worker
    from fuzz.cases import Case

    import corrnet

    corrnet_dir = os.path.dirname(os.path.abspath(corrnet.__file__))

    def verdict(op, code):
        case = Case(seed=0, index=0, op=op, code=code)
        return worker.judge(case, worker._run(code, torch), worker._run(code, corrnet),
                            corrnet_dir)

    # (float64: PyTorch's own kernel, on any CPU; in float16 a CPU with AVX512-FP16 sends
    # the call to oneDNN, which tries to allocate the 2**32-long output and runs out of memory)
    overflow = ("x1 = lib.tensor(arr((3, 2, 8), 'float64', 'normal', 1))\n"
                "x2 = lib.tensor(arr((1, 2, 4), 'float64', 'normal', 2))\n"
                "out = F.conv1d(x1, x2, None, padding=2**31, dilation=2)\n"
                "result = {'out': out}\n")
    assert verdict("F.conv1d", overflow)["sub"].startswith("oracle defect: int32")
    assert verdict("F.other", overflow)["class"] == "wrong"
    transposed = ("x1 = lib.tensor(arr((2, 2, 1, 3), 'float32', 'normal', 1))\n"
                  "x2 = lib.tensor(arr((2, 3, 1, 1), 'float32', 'normal', 2))\n"
                  "out = F.conv_transpose2d(x1, x2, None, stride=(3, 1), padding=(1, 0), "
                  "output_padding=(2, 0), dilation=0)\nresult = {'out': out}\n")
    assert verdict("F.conv_transpose2d", transposed)["sub"].startswith("oracle defect")
    assert verdict("F.conv2d", transposed)["class"] == "wrong"
    matmul = ("x1 = lib.tensor(arr((2, 0, 1), 'float64', 'normal', 1))\n"
              "x2 = lib.tensor(arr((2, 1, 3), 'float16', 'normal', 2))\n"
              "result = {'out': x1.matmul(x2)}\n")
    assert verdict("matmul.matmul", matmul)["sub"].startswith("oracle defect")
    assert verdict("reduce.sum", matmul)["class"] == "wrong"
    # a max-pool window of padding only (length 2, padding 1, dilation 3): PyTorch's backward
    # adds its gradient past the channel's plane (into the next channel, or past the tensor:
    # so the rule is checked on the code alone, without running PyTorch on it)
    pool = ("x1 = lib.tensor(arr((1, 3, 2), 'float64', 'ties', 2028860031), "
            "requires_grad=True)\n"
            "out = F.max_pool1d(x1, kernel_size=2, stride=1, padding=1, dilation=3)\n")
    grad_differs = ("grad", "grad x1: 2 of 6 differ")
    assert worker._pool_window_in_padding(Case(0, 0, "F.max_pool1d", pool), grad_differs)
    assert not worker._pool_window_in_padding(Case(0, 0, "F.avg_pool1d", pool), grad_differs)
    assert not worker._pool_window_in_padding(Case(0, 0, "F.max_pool1d", pool),
                                              ("value", "out: 1 of 3 differ"))
    inside = pool.replace("dilation=3", "dilation=1")    # every window meets the input
    assert not worker._pool_window_in_padding(Case(0, 0, "F.max_pool1d", inside), grad_differs)
    module = ("x1 = lib.tensor(arr((2, 3, 1, 12), 'float32', 'normal', 1), requires_grad=True)\n"
              "m = nn.MaxPool2d(kernel_size=(2, 3), padding=1, dilation=(2, 1))\n")
    assert worker._pool_window_in_padding(Case(0, 0, "nn.MaxPool2d", module), grad_differs)
    # float32 pow with an exponent float32 cannot hold (or its gradient's exponent - 1): the
    # seed 20261220 case, whose gradient's sign PyTorch's scalar loop takes from the odd
    # exponent - 1 = -2**31 - 1; the same with a float32-exact exponent is still `wrong`
    power = ("x1 = lib.tensor(arr((4,), 'float32', 'normal', 1444154168), requires_grad=True)\n"
             "out = x1 ** -(2**31)\n"
             "out.backward(lib.tensor(arr((4,), 'float64', 'normal', 1747758825)).to(out.dtype))\n"
             "result = {'out': out, 'grad x1': x1.grad}\n")
    assert verdict("binary.**", power)["sub"].startswith("oracle defect: PyTorch's float32 pow")
    assert verdict("binary.*", power)["class"] == "wrong"
    exact = ("x1 = lib.tensor([1.5, -2.0])\nout = x1 ** 3\n"
             "result = {'out': out + (1 if lib.__name__ == 'corrnet' else 0)}\n")
    assert verdict("binary.**", exact)["class"] == "wrong"
    # a bool base of number ** tensor: PyTorch's backward fails an internal assert
    bool_base = ("x1 = lib.tensor(arr((2,), 'float16', 'special', 1461044893), "
                 "requires_grad=True)\nout = True ** x1\n"
                 "out.backward(lib.tensor(arr((2,), 'float64', 'normal', 7)).to(out.dtype))\n"
                 "result = {'out': out, 'grad x1': x1.grad}\n")
    assert verdict("binary.r**", bool_base)["sub"].startswith(
        "oracle defect: PyTorch's backward of a bool")
    assert verdict("binary.**", bool_base)["class"] == "wrong"
    assert verdict("binary.r**", bool_base.replace("True **", "1 **"))["class"] == "agrees"
    # float16 fill beyond its range: PyTorch gives inf for one element only
    half = "result = {'out': lib.full((), 1e+40, dtype=lib.float16)}\n"
    assert verdict("creation.full", half)["sub"].startswith("oracle defect: PyTorch's float16")
    assert verdict("creation.full", half.replace("()", "(2,)"))["class"] == "clear"
    assert verdict("reduce.sum", half)["class"] == "wrong"
    # a bool among a size's ints: refused by corrnet on purpose, read as 1 by PyTorch
    permute = ("x1 = lib.tensor(arr((3, 3, 3, 3), 'int32', 'normal', 501372391))\n"
               "result = {'out': x1.permute(0, 3, 2, True)}\n")
    assert verdict("shape.permute", permute)["sub"] == "deliberate: a bool in a size or dims"
    assert verdict("shape.permute", permute.replace("True", "1"))["class"] == "agrees"
    # accepted where PyTorch refuses: its oneDNN-or-not output of size 0, and prod(dim=None)
    transposed_zero = ("x1 = lib.tensor(arr((3, 1, 1, 9), 'float64', 'normal', 1))\n"
                       "x2 = lib.tensor(arr((1, 3, 3, 2), 'float64', 'normal', 2))\n"
                       "out = F.conv_transpose2d(x1, x2, None, stride=(3, 2), padding=(2, 1), "
                       "output_padding=(1, 0), dilation=(1, 2))\nresult = {'out': out}\n")
    assert verdict("F.conv_transpose2d", transposed_zero)["sub"].startswith("oracle defect")
    assert verdict("F.conv2d", transposed_zero)["class"] == "wrong"
    product = "x1 = lib.tensor([[1.0, 2.0]])\nresult = {'out': x1.prod(dim=None)}\n"
    assert verdict("reduce.prod", product)["sub"].startswith("deliberate")
    assert verdict("reduce.sum", product.replace("prod", "sum").replace("dim=None", "dim=2.5"))[
        "class"] != "agrees"
    # an adaptive average pool to 1 of an empty spatial dimension: PyTorch's global-average
    # shortcut returns NaN where it refuses every other output size (seed 20261231)
    empty = ("x1 = lib.tensor(arr((1, 1, 9, 0), 'float64', 'normal', 2089804628))\n"
             "result = {'out': F.adaptive_avg_pool2d(x1, 1)}\n")
    assert verdict("F.adaptive_avg_pool2d", empty)["sub"].startswith("oracle defect")
    assert verdict("F.adaptive_max_pool2d", empty)["class"] == "wrong"
    # atan2 of a bool and a float that requires grad: PyTorch's backward negates the bool
    bool_atan2 = ("x1 = lib.tensor(True)\nx2 = lib.tensor(0.5, requires_grad=True)\n"
                  "out = x1.atan2(x2)\nout.backward()\n"
                  "result = {'out': out, 'grad x2': x2.grad}\n")
    assert verdict("binary.atan2", bool_atan2)["sub"].startswith("oracle defect: PyTorch's atan2")
    assert verdict("binary.hypot", bool_atan2)["class"] == "wrong"
    # circular padding past what a negative pad on the other side leaves: PyTorch checks the
    # size before the crop and returns uninitialized memory (seed 20261232)
    circular = ("x1 = lib.tensor(arr((6, 2, 2), 'float64', 'normal', 459734870))\n"
                "m = nn.CircularPad2d((2, -1))\nresult = {'out': m(x1)}\n")
    assert verdict("nn.CircularPad2d", circular)["sub"].startswith(
        "oracle defect: PyTorch's circular pad")
    refusal = ("pad: circular padding may wrap around at most once: got 2 for a dimension "
               "of size 1 (after cropping)")
    assert not worker._circular_pad_past_the_crop(
        Case(0, 0, "nn.ReflectionPad2d", circular.replace("Circular", "Reflection")), refusal)
    assert not worker._circular_pad_past_the_crop(
        Case(0, 0, "nn.CircularPad2d", circular), refusal.replace(" (after cropping)", ""))
    assert verdict("nn.CircularPad2d", circular.replace("(2, -1)", "(1, -1)"))[
        "class"] == "agrees"
    # max_unpool with an empty stride: PyTorch's wrapper raises IndexError, its max_pool
    # takes () as the default (seed 20261233)
    unpool = ("x1 = lib.tensor(arr((1, 1, 4, 5), 'float32', 'ties', 914672463))\n"
              "_v, _i = F.max_pool2d(x1, kernel_size=(2, 4), stride=(), padding=(0, 1), "
              "ceil_mode=True, return_indices=True)\n"
              "out = F.max_unpool2d(_v, _i, kernel_size=(2, 4), stride=(), padding=(0, 1))\n"
              "result = {'out': out}\n")
    assert verdict("F.max_unpool2d", unpool)["sub"].startswith(
        "oracle defect: PyTorch's max_unpool")
    assert verdict("F.max_pool2d", unpool)["class"] == "wrong"
    assert not worker._unpool_of_an_empty_stride(
        Case(0, 0, "F.max_unpool2d", unpool.replace("stride=()", "stride=2")),
        "tuple index out of range")
    # Python's own TypeError at the case's line, as with PyTorch: a clear refusal
    concatenate = ("x1 = lib.tensor(arr((2, 5), 'int32', 'pos', 1145606400))\n"
                   "result = {'out': [[1]] + x1}\n")
    assert verdict("binary.r+", concatenate)["class"] == "clear"


def test_fuzz_float16_convolution_rule_follows_the_cpu(monkeypatch):
    """A float16 convolution whose NaN places differ from PyTorch's is an oracle defect only
    where PyTorch sums float16 in float32 (AVX512-FP16 CPUs), and only for convolutions in
    float16: the same case counts as `wrong` where PyTorch rounds each product, and so does a
    float32 one. (Found on an Intel Xeon with AVX512-FP16: the nightly run's only `wrong`.)"""
    import os

    import numpy as np
    from fuzz import worker
    from fuzz.cases import Case

    import corrnet

    corrnet_dir = os.path.dirname(os.path.abspath(corrnet.__file__))
    # [300, 300] transposed-convolved with [300, -300]: products of 90000, beyond float16
    code = ("x1 = lib.tensor(np.array([[[300.0, 300.0]]]).astype(np.{0}))\n"
            "x2 = lib.tensor(np.array([[[300.0, -300.0]]]).astype(np.{0}))\n"
            "out = F.conv_transpose1d(x1, x2)\nresult = {{'out': out}}\n")

    def verdict(op, dtype, sums_in_float32):
        monkeypatch.setattr(worker, "_torch_sums_float16_in_float32", lambda: sums_in_float32)
        case = Case(seed=0, index=0, op=op, code=code.format(dtype))
        ours = worker._run(case.code, corrnet)
        # the oracle as the other kind of CPU computes it: its middle number NaN where
        # corrnet's is not, or a number where corrnet's is NaN
        kind, dtype_name, shape, values = ours[1]["out"]
        theirs = values.astype(np.float64).copy()
        theirs[0, 0, 1] = 0.0 if np.isnan(theirs[0, 0, 1]) else np.nan
        oracle = (True, {"out": (kind, dtype_name, shape, theirs.astype(values.dtype))})
        return worker.judge(case, oracle, ours, corrnet_dir)

    assert verdict("F.conv_transpose1d", "float16", True)["sub"].startswith(
        "oracle defect: PyTorch on this CPU sums float16")
    assert verdict("F.conv_transpose1d", "float16", False)["class"] == "wrong"
    assert verdict("F.conv_transpose1d", "float32", True)["class"] == "wrong"
    assert verdict("reduce.sum", "float16", True)["class"] == "wrong"


def test_fuzz_gradient_tolerance_follows_the_narrowest_dtype_of_the_case():
    """A float64 gradient through a float32 op is compared at float32's tolerance, and only
    then: without a narrower dtype in the case float64's holds (seed 20261216's x1 / x2, a
    float64 scalar dividing float32 values: both libraries within float32 rounding)."""
    from fuzz import worker

    def grad_of(values):
        return {"grad x2": ("T", "torch.float64", (1,), np.array(values, dtype=np.float64))}

    oracle, off_by_float32 = grad_of([-13.480371475]), grad_of([-13.480372429])
    assert worker.compare(off_by_float32, oracle, "values") is not None
    assert worker.compare(off_by_float32, oracle, "values", grad_floor="torch.float32") is None
    assert worker.compare(grad_of([-13.49]), oracle, "values",
                          grad_floor="torch.float32")[0] == "grad"
    assert worker._narrowest_float("x = arr((2,), 'float64', 'normal', 1)") is None
    assert worker._narrowest_float("x = arr((2,), 'float32', 'pos', 1)") == "torch.float32"
    assert worker._narrowest_float("a = 'float32'; b = 'float16'") == "torch.float16"
