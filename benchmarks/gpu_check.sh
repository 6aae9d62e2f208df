#!/usr/bin/env bash
# The one prepared run for a lent GPU machine (the `device` tool): it installs nothing (CuPy,
# numba-cuda, PyTorch with CUDA, pytest and hypothesis are there), runs corrnet from this copied
# tree (PYTHONPATH=src), and writes everything under $OUT:
#
#   env.log              nvidia-smi, the Python packages' versions, what corrnet sees
#   test-gpu.log         make test-gpu's command (tests/gpu_suite.py): the oracle suite, the
#                        seeds and the device tests with corrnet's tensors on cuda
#   bench-gpu.log        benchmarks/gpu.py --quick: LeNet training, the layer suite, pooling
#   BENCHMARKS-gpu.md    the benchmark's markdown (a section for BENCHMARKS.md)
#   summary.txt          each step's exit status and the lines that count
#
# Each step has its own time limit (TEST_LIMIT, BENCH_LIMIT seconds; about 7 minutes in all
# with the defaults), so one that hangs cannot take the others' time. Usage:
#
#   bash benchmarks/gpu_check.sh                      # on the GPU machine
#   OUT=/tmp/check bash benchmarks/gpu_check.sh --standin --subset   # a dry run without a GPU
#
# --standin runs both steps on corrnet's stand-in device (numbers meaningless); --subset runs
# only the fixed subset of the oracle suite (tests/gpu_suite.py --subset). The seed notebooks
# are found beside the checkout (../shared/seeds) or inside it (shared/seeds, a copy that
# travels); Fashion-MNIST likewise (else the benchmark uses random images).
set -u
cd "$(dirname "$0")/.." || exit 2
STANDIN=0
SUBSET=""
for arg in "$@"; do
    case "$arg" in
        --standin) STANDIN=1 ;;
        --subset) SUBSET="--subset" ;;
        *) echo "gpu_check.sh: unknown argument $arg (expected --standin, --subset)" >&2; exit 2 ;;
    esac
done
OUT="${OUT:-build/gpu-check}"
mkdir -p "$OUT" || exit 2
PY="${PYTHON:-python3}"
TEST_LIMIT="${TEST_LIMIT:-240}"
BENCH_LIMIT="${BENCH_LIMIT:-150}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export CORRNET_NO_DOWNLOAD=1  # nothing can be fetched there
export CORRNET_CACHE_DIR="${TMPDIR:-/tmp}/corrnet-gpu-check-cache"  # the planner's file
if [ "$STANDIN" = 1 ]; then
    export CORRNET_STANDIN_CUDA=1
fi
for seeds in ../shared/seeds shared/seeds; do
    if [ -d "$seeds" ]; then
        CORRNET_SEEDS_DIR="$(cd "$seeds" && pwd)"
        export CORRNET_SEEDS_DIR
        break
    fi
done
started=$(date +%s)

# -- 1. the machine --------------------------------------------------------------------------
{
    echo "== gpu_check.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), standin=$STANDIN"
    nvidia-smi || echo "(nvidia-smi: not found or failed)"
    timeout -k 5 60 "$PY" - <<'EOF'
import importlib, platform
print("Python", platform.python_version())
for name in ("numpy", "scipy", "numba", "cupy", "torch", "pytest", "hypothesis", "xdist"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '?')}")
    except Exception as exc:  # absent or broken: said, not fatal
        print(f"{name}: not importable ({type(exc).__name__}: {exc})")
try:
    import torch
    print("torch CUDA", torch.version.cuda, "available:", torch.cuda.is_available(),
          "cuDNN", torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None)
except Exception as exc:
    print("torch: ", exc)
import corrnet
print("corrnet", corrnet.__version__, "| CUDA library:", corrnet.devices.library(),
      "| devices:", corrnet.cuda.device_count())
if corrnet.cuda.is_available():
    print("cuda:0 is", corrnet.cuda.get_device_name(0), corrnet.cuda.get_device_properties(0))
EOF
} >"$OUT/env.log" 2>&1
cat "$OUT/env.log"

# pytest-xdist (there on the lent machines) spreads the oracle suite over a few processes
XDIST=""
if [ -z "$SUBSET" ] && "$PY" -c "import xdist" 2>/dev/null; then
    XDIST="-n 8"
fi

# -- 2. make test-gpu's command --------------------------------------------------------------
echo "== test-gpu (limit ${TEST_LIMIT} s)"
# shellcheck disable=SC2086  # XDIST and SUBSET are lists of words
timeout -k 10 "$TEST_LIMIT" "$PY" tests/gpu_suite.py $SUBSET $XDIST -p no:cacheprovider -rfE \
    --tb=short >"$OUT/test-gpu.log" 2>&1
test_status=$?
tail -n 40 "$OUT/test-gpu.log"

# -- 3. the benchmark ------------------------------------------------------------------------
echo "== bench-gpu (limit ${BENCH_LIMIT} s)"
bench_args=(--quick --out "$OUT/BENCHMARKS-gpu.md")
if [ "$STANDIN" = 1 ]; then
    bench_args+=(--standin)
fi
timeout -k 10 "$BENCH_LIMIT" "$PY" benchmarks/gpu.py "${bench_args[@]}" >"$OUT/bench-gpu.log" 2>&1
bench_status=$?
tail -n 60 "$OUT/bench-gpu.log"

# -- 4. the summary --------------------------------------------------------------------------
explain() {  # an exit status in words
    case "$1" in
        0) echo "passed" ;;
        124 | 137) echo "TIMED OUT" ;;
        *) echo "failed (exit $1)" ;;
    esac
}
{
    echo "gpu_check.sh: $(( $(date +%s) - started )) s, standin=$STANDIN"
    head -n 1 "$OUT/test-gpu.log"
    echo "test-gpu: $(explain "$test_status") (limit ${TEST_LIMIT} s)"
    grep -E "^(=+ )?[0-9]+ (passed|failed)|(passed|failed|error).* in [0-9.]+s" \
        "$OUT/test-gpu.log" || true
    echo "bench-gpu: $(explain "$bench_status") (limit ${BENCH_LIMIT} s)"
    grep -E "^(GPU:|corrnet [0-9n]|Geometric mean)" "$OUT/bench-gpu.log" || true
    grep -E "Target:" "$OUT/BENCHMARKS-gpu.md" 2>/dev/null || true
} >"$OUT/summary.txt"
echo "== summary"
cat "$OUT/summary.txt"
if [ "$test_status" != 0 ]; then
    exit "$test_status"
fi
exit "$bench_status"
