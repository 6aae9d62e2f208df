"""``make test-gpu``: the oracle suite and the seeds with corrnet's tensors on ``cuda``.

Runs pytest with ``CORRNET_TEST_DEVICE=cuda`` (the switch in ``torch_compare.py`` that the
oracle helpers read: corrnet's inputs and modules go to the device, results come back with
``.cpu()`` before they are compared with PyTorch on the CPU), over the oracle suite, the
seed notebooks (run as written, ``.cuda()`` calls kept) and the device tests. Where PyTorch
has CUDA too, `SUBSET` runs a second time against PyTorch on its GPU
(``CORRNET_TEST_TORCH_DEVICE=cuda``).

Where CuPy sees a GPU, corrnet uses it; elsewhere the run uses corrnet's stand-in CUDA device
(``CORRNET_STANDIN_CUDA=1``: NumPy arrays that refuse implicit host conversion, as CuPy does),
and the first line of the output says so: it checks placement and transfers, not GPU kernels.

    python tests/gpu_suite.py [--subset] [--no-seeds] [pytest arguments ...]

``--subset`` runs only `SUBSET` (the CI-size form, which tests/test_issue15_around.py runs
on the stand-in). Test paths among the pytest arguments (``tests/oracle/test_x.py::test_y``)
replace the suite: the run is then only those, under the switch. The tests in `DESELECTED`
(each with the reason it cannot mean anything on a device) are left out of every run.
Exit status: 0 when every pass succeeded, else the first failing pytest's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The whole of ``make test-gpu``: the oracle suite, the seeds, the device tests.
SUITE = ["tests/oracle", "tests/test_seeds.py", "tests/test_issue15_device.py",
         "tests/test_issue15_around.py", "tests/test_issue15_gpu_kernels.py",
         "tests/test_issue15_suite.py"]

#: A small fixed part of the oracle suite (tensor ops, layers, losses, convolution, pooling):
#: the CI-size run on the stand-in, and the pass against PyTorch's own CUDA build.
SUBSET = [
    "tests/oracle/test_tensor_ops.py::test_broadcasting_arithmetic",
    "tests/oracle/test_tensor_ops.py::test_unary_ops",
    "tests/oracle/test_tensor_ops.py::test_matmul",
    "tests/oracle/test_tensor_ops.py::test_reductions",
    "tests/oracle/test_layers_oracle.py::test_linear",
    "tests/oracle/test_layers_oracle.py::test_softmax_and_log_softmax",
    "tests/oracle/test_layers_oracle.py::test_cross_entropy_class_indices",
    "tests/oracle/test_layers_oracle.py::test_mse_loss",
    "tests/oracle/test_conv_pool.py::test_conv2d_fixed_cases",
    "tests/oracle/test_conv_pool.py::test_max_pool2d_fixed_cases",
    "tests/oracle/test_conv_pool.py::test_avg_pool2d_fixed_cases",
    "tests/oracle/test_conv_pool.py::test_corr2d_d2l_example",
]


#: Tests that cannot make sense with corrnet's tensors on a device, with the reason.
DESELECTED = {
    "tests/oracle/test_algorithms.py::test_autotune_times_once_per_shape_and_keeps_the_winner":
        "it counts the CPU autotuner's timed runs (plan.run) of the CPU algorithms; on a "
        "device every pass is im2col + GEMM (kernels/device_conv.py): nothing is autotuned "
        "there and plan.run is never called",
}


def _is_test_path(argument: str) -> bool:
    """Whether a pytest argument names tests (a file or node id under tests/)."""
    return argument.split("::")[0].startswith(("tests/", "tests" + os.sep)) and (
        (ROOT / argument.split("::")[0]).exists())


def cuda_backend() -> tuple[str, str]:
    """('cupy', a description of the GPUs) where CuPy sees a GPU, else ('standin', why)."""
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # not installed, no driver, no GPU
        return "standin", f"no CuPy with a GPU here ({type(exc).__name__}: {exc})"
    if count == 0:
        return "standin", "CuPy sees no GPU"
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    return "cupy", f"CuPy {cupy.__version__}, {count} GPU(s), cuda:0 is {name}"


def torch_has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _pytest(paths, env, extra) -> int:
    deselect = [a for nodeid in DESELECTED for a in ("--deselect", nodeid)]
    command = [sys.executable, "-m", "pytest", "-q", *paths, *deselect, *extra]
    print("$", " ".join(command), flush=True)
    return subprocess.call(command, cwd=ROOT, env=env)


def main(argv: list[str]) -> int:
    subset = "--subset" in argv
    seeds = "--no-seeds" not in argv
    extra = [a for a in argv if a not in ("--subset", "--no-seeds")]
    chosen = [a for a in extra if _is_test_path(a)]
    extra = [a for a in extra if a not in chosen]
    env = dict(os.environ, CORRNET_TEST_DEVICE="cuda")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)
    backend, what = cuda_backend()
    if backend == "cupy":
        env.pop("CORRNET_STANDIN_CUDA", None)
        print(f"make test-gpu: corrnet on the GPU through {what}", flush=True)
    else:
        env["CORRNET_STANDIN_CUDA"] = env.get("CORRNET_STANDIN_CUDA") or "1"
        print(f"make test-gpu: {what}: corrnet runs on its STAND-IN CUDA device (NumPy arrays "
              f"that refuse implicit host conversion, CORRNET_STANDIN_CUDA="
              f"{env['CORRNET_STANDIN_CUDA']}); this checks placement and transfers, not GPU "
              "kernels", flush=True)
    torch_cuda = torch_has_cuda()
    also = ", then on its CUDA device (SUBSET)" if torch_cuda else ""
    print(f"PyTorch as the oracle: on the CPU{also}", flush=True)
    paths = chosen or (SUBSET if subset else [p for p in SUITE
                                              if seeds or "test_seeds" not in p])
    status = _pytest(paths, env, extra)
    if torch_cuda:
        print("\n-- the same SUBSET against PyTorch on CUDA (TF32 off) --", flush=True)
        second = _pytest(SUBSET, dict(env, CORRNET_TEST_TORCH_DEVICE="cuda"), extra)
        status = status or second
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
