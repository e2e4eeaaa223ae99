#!/usr/bin/env bash
# AddressSanitizer + LeakSanitizer build of led_cpp's extension (_core, with llama.cpp and
# ggml compiled into it) and a pytest run against that build.  Not part of CI.
#
#   benchmarks/sanitize.sh [PYTEST ARGS...]
#
# Default PYTEST ARGS: tests/test_generation.py tests/test_tiny_greedy.py
# tests/test_bad_input.py tests/test_led_math.py.  Paths are relative to the repository root;
# add e.g. -k "not slow" to skip tests.
#
# Environment:
#   JOBS=N          build jobs (default: number of cores)
#   PYTHON=python3  the interpreter (its pybind11 is used for the build)
#   ASAN_BUILD=DIR  build directory (default build/asan)
#   SKIP_BUILD=1    reuse the existing build
#   PYTHONMALLOC    default "malloc", so that LeakSanitizer sees (and can follow pointers
#                   through) every Python object instead of pymalloc's arenas
#
# The build lives in build/asan (cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo, -fsanitize=address
# -fno-omit-frame-pointer for C and C++); Python picks it up through build/asan/pkg/led_cpp, a
# copy of python/led_cpp with the sanitized _core symlinked in, placed first on PYTHONPATH.
# libasan is preloaded (the interpreter itself is not instrumented).
#
# Reports: every AddressSanitizer error is a failure.  LeakSanitizer reports are sorted: a
# leak with a frame in led_cpp's own code, llama.cpp or ggml (anything inside _core) is a
# failure; CPython's own allocations at exit are suppressed by build/asan/lsan.supp (whose
# patterns name only CPython internals that never call into extensions), and any other leak
# without a _core frame (the interpreter's or another extension's) is counted, not failed.
# Exit status: 0 pass, 1 sanitizer findings or test failures, 2 build/setup error.
set -u -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="${PYTHON:-python3}"
BUILD="${ASAN_BUILD:-$ROOT/build/asan}"
JOBS="${JOBS:-$(nproc)}"
PKG="$BUILD/pkg"
LOGS="$BUILD/logs"
SUPP="$BUILD/lsan.supp"
FLAGS="-fsanitize=address -fno-omit-frame-pointer"

if [ "$#" -eq 0 ]; then
    set -- tests/test_generation.py tests/test_tiny_greedy.py tests/test_bad_input.py tests/test_led_math.py
fi

die() { echo "sanitize.sh: $*" >&2; echo "RESULT: ERROR (setup)"; exit 2; }

LIBASAN="$(gcc -print-file-name=libasan.so)"
[ -e "$LIBASAN" ] || die "gcc has no libasan.so ($LIBASAN); install libasan (gcc's AddressSanitizer runtime)"
PY_EXE="$("$PY" -c "import sys; print(sys.executable)")" || die "cannot run $PY"
PYBIND11_DIR="$("$PY" -c "import pybind11; print(pybind11.get_cmake_dir())")" || die "pybind11 is not installed for $PY"

# --- build -------------------------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    launcher=()
    if command -v ccache >/dev/null; then
        launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    fi
    generator=()
    if [ ! -f "$BUILD/CMakeCache.txt" ] && command -v ninja >/dev/null; then
        generator=(-G Ninja)
    fi
    mkdir -p "$BUILD"
    echo "== configuring $BUILD"
    cmake -S "$ROOT" -B "$BUILD" "${generator[@]}" \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_C_FLAGS="$FLAGS" -DCMAKE_CXX_FLAGS="$FLAGS" \
        -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address" -DCMAKE_MODULE_LINKER_FLAGS="-fsanitize=address" \
        -DCMAKE_INTERPROCEDURAL_OPTIMIZATION=OFF -DGGML_CCACHE=OFF "${launcher[@]}" \
        -DPython_EXECUTABLE="$PY_EXE" -Dpybind11_DIR="$PYBIND11_DIR" \
        >"$BUILD/configure.log" 2>&1 || { tail -n 40 "$BUILD/configure.log"; die "cmake configure failed"; }
    echo "== building _core with $JOBS jobs (several minutes the first time)"
    start=$(date +%s)
    cmake --build "$BUILD" --target _core -j "$JOBS" >"$BUILD/build.log" 2>&1 \
        || { tail -n 60 "$BUILD/build.log"; die "the build failed (log: $BUILD/build.log)"; }
    echo "   built in $(( $(date +%s) - start )) s"
fi
SO="$(ls "$BUILD"/_core*.so 2>/dev/null | head -n 1)"
[ -n "$SO" ] || die "no _core*.so in $BUILD"

# --- the package copy ----------------------------------------------------------------------
rm -rf "$PKG"
mkdir -p "$PKG"
cp -r "$ROOT/python/led_cpp" "$PKG/led_cpp"
find "$PKG/led_cpp" \( -name "__pycache__" -o -name "_core*.so" \) -prune -exec rm -rf {} +
ln -s "$SO" "$PKG/led_cpp/$(basename "$SO")"

# CPython's own allocations at exit.  Each pattern is an interpreter-internal function that
# allocates for the interpreter itself and never runs extension code below it, so no leak
# with a _core frame can match.
cat >"$SUPP" <<'EOF'
leak:Py_InitializeFromConfig
leak:Py_RunMain
leak:_PyRuntime_Initialize
leak:pyinit_main
leak:init_interp_main
leak:_PyImport_InitCore
leak:_PyUnicode_InitEncodings
leak:PyThread_allocate_lock
leak:_PyGILState_Init
EOF

rm -rf "$LOGS"
mkdir -p "$LOGS"
SAN_ENV=(
    LD_PRELOAD="$LIBASAN${LD_PRELOAD:+:$LD_PRELOAD}"
    ASAN_OPTIONS="detect_leaks=1:log_path=$LOGS/asan:halt_on_error=1:detect_odr_violation=0:symbolize=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    LSAN_OPTIONS="suppressions=$SUPP:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
    PYTHONMALLOC="${PYTHONMALLOC:-malloc}"
    PYTHONPATH="$PKG${PYTHONPATH:+:$PYTHONPATH}"
)

where="$(cd "$ROOT" && env "${SAN_ENV[@]}" "$PY_EXE" -c \
    "import os, led_cpp._core as c; print(os.path.realpath(c.__file__))" 2>"$LOGS/import.err")" \
    || die "led_cpp does not import under AddressSanitizer: $(tail -n 20 "$LOGS/import.err")"
[ "$where" = "$(realpath "$SO")" ] || die "python imported $where, not the sanitized $SO"
echo "== led_cpp._core: $where"
rm -f "$LOGS"/asan.*

# --- tests -------------------------------------------------------------------------------
echo "== pytest $* (AddressSanitizer + LeakSanitizer; logs in $LOGS)"
start=$(date +%s)
(cd "$ROOT" && env "${SAN_ENV[@]}" "$PY_EXE" -m pytest -p no:cacheprovider -q "$@")
pytest_status=$?
echo "   pytest exit status $pytest_status after $(( $(date +%s) - start )) s"

# --- reports -------------------------------------------------------------------------------
"$PY_EXE" - "$LOGS" <<'EOF'
import re
import sys
from pathlib import Path

logs = sorted(Path(sys.argv[1]).glob("asan.*"))
OURS = re.compile(r"_core\.cpython|/cpp/[\w.]+\.(?:cpp|h)|third_party/llama\.cpp/|\bggml_|\bllama_|\bled::")
errors, our_leaks, other_leaks = [], [], []
for log in logs:
    text = log.read_text(errors="replace")
    for block in re.split(r"\n(?==+\n==\d+==ERROR: )", text):
        if "ERROR: AddressSanitizer" in block:
            errors.append((log.name, block.strip()))
        elif "ERROR: LeakSanitizer" in block:
            for leak in re.split(r"\n(?=(?:Direct|Indirect) leak of )", block)[1:]:
                leak = leak.split("\nSUMMARY:")[0].strip()
                (our_leaks if OURS.search(leak) else other_leaks).append((log.name, leak))
print(f"== sanitizer logs: {len(logs)} file(s)")
for name, block in errors:
    print(f"--- AddressSanitizer error ({name}) ---\n{block[:6000]}\n")
for name, leak in our_leaks:
    print(f"--- leak inside _core ({name}) ---\n{leak[:4000]}\n")
print(f"AddressSanitizer errors: {len(errors)}")
print(f"leaks inside _core (led_cpp, llama.cpp, ggml): {len(our_leaks)}")
print(f"leaks outside _core (interpreter, other extensions; not counted as failures): {len(other_leaks)}")
sys.exit(1 if errors or our_leaks else 0)
EOF
report_status=$?

if [ "$pytest_status" -eq 0 ] && [ "$report_status" -eq 0 ]; then
    echo "RESULT: PASS (no AddressSanitizer errors, no leaks inside _core, tests passed)"
    exit 0
fi
[ "$report_status" -ne 0 ] && echo "RESULT: FAIL (sanitizer findings above)"
[ "$pytest_status" -ne 0 ] && echo "RESULT: FAIL (pytest exit status $pytest_status)"
exit 1
