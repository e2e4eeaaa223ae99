#!/usr/bin/env bash
# One prepared GPU check for a fresh Linux machine with an NVIDIA GPU, nvcc, CMake, and Python with
# numpy, pybind11 and scikit-build-core, and no network:
#   bash tools/gpu_check.sh [OUT_DIR]
# The pinned llama.cpp source must already be unpacked in third_party/llama.cpp (it travels with
# the working tree), and packages the machine lacks (gguf and its needs) lie as wheels in .whl/.
# Builds led_cpp for sm_90 only (library targets), then runs tools/gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-benchmarks/results}}"
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
start=$(date +%s)
if [ -z "${LED_GPU_CHECK_CPU:-}" ]; then  # LED_GPU_CHECK_CPU=1: a CPU rehearsal of this script
  export CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90 ${CMAKE_ARGS:-}"
fi
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
rm -rf /tmp/led_cpp_build
python3 -m pip install --no-build-isolation --no-deps --target /tmp/led_cpp_build . > "$OUT_DIR/build.log" 2>&1 || { tail -40 "$OUT_DIR/build.log"; exit 1; }
export PYTHONPATH="/tmp/led_cpp_build${PYTHONPATH:+:$PYTHONPATH}"
echo "build: $(( $(date +%s) - start )) s" | tee "$OUT_DIR/build_time.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT_DIR/gpu.txt" || true
cd /tmp && PYTHONUNBUFFERED=1 python3 "$OLDPWD/tools/gpu_check.py" --out "$OUT_DIR" "${@:2}"
