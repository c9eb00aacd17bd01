#!/usr/bin/env bash
# Every GPU check of the speed issue in one call, sized for a ~9-minute lease (each step has its own
# time limit, so a slow step cannot eat the others):
#
#   bash benchmarks/gpu_suite.sh [OUT_DIR]      # default: $OUT if set, else benchmarks/results
#
# 1. the CUDA tests (fast paths vs the eager path on the GPU, CPU vs CUDA on the same parameters);
# 2. benchmarks/throughput.py (Triton color kernel on) and again with PRIME_AUGMENT_DISABLE_TRITON=1;
# 3. benchmarks/training_overhead.py (ResNet-50 bf16 B=256 and CIFAR ResNet-18 B=128 steps).
# Runs from the checkout without installing it (PYTHONPATH), with the machine's own torch. Writes
# the JSON results, the test log and a summary of the environment to OUT_DIR.
set -u -o pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-benchmarks/results}}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"
status=0

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log, remember a failure
    local name="$1" limit="$2"
    shift 2
    echo "=== $name (limit ${limit}s)"
    local t0=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "=== $name: exit $rc after $((SECONDS - t0)) s"
    [ "$rc" -eq 0 ] || status=1
}

"$py" - <<'EOF' | tee "$out/environment.txt"
import platform, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "python", platform.python_version())
print("device", torch.cuda.get_device_name() if torch.cuda.is_available() else "NO CUDA DEVICE")
try:
    import triton
    print("triton", triton.__version__)
except ImportError:
    print("triton not installed")
EOF

step cuda_tests 180 "$py" -m pytest -q -m cuda tests -p no:cacheprovider
step throughput 150 "$py" benchmarks/throughput.py --device cuda --out "$out/throughput.json"
step training_overhead 150 "$py" benchmarks/training_overhead.py --device cuda --out "$out/training_overhead.json"
PRIME_AUGMENT_DISABLE_TRITON=1 step throughput_eager 90 \
    "$py" benchmarks/throughput.py --device cuda --out "$out/throughput_eager.json"
exit "$status"
