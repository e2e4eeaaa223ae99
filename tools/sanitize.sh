#!/usr/bin/env bash
# AddressSanitizer + LeakSanitizer build of led_cpp's extension (_core, with llama.cpp and
# ggml compiled into it) and a pytest run against that build.  Not part of CI.
#
#   tools/sanitize.sh [PYTEST ARGS...]
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
# failure; CPython's own allocations are suppressed by build/asan/lsan.supp (whose patterns
# name only CPython's leaf allocators, see below), and any other leak without a _core frame
# (the interpreter's or another extension's) is counted, not failed.  A process that leaked
# anything exits with status 1 (CPython always leaks a little at exit), so the tests' verdict
# comes from pytest's JUnit report; the sanitizers' from the logs in build/asan/logs.
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
# libstdc++ is preloaded too: the interpreter does not link it, and without it ASan cannot find
# the real __cxa_throw and dies at the first C++ exception ("CHECK failed ... real___cxa_throw").
LIBSTDCXX="$(gcc -print-file-name=libstdc++.so)"
[ -e "$LIBSTDCXX" ] || die "gcc has no libstdc++.so ($LIBSTDCXX)"
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

# CPython's own allocations.  A LeakSanitizer pattern matches any frame of a leak's stack, and
# every stack runs through libpython, so the patterns name only CPython's leaf allocators
# (functions that call malloc and never call back into an extension): a leak allocated by
# _core's own code (new/malloc in cpp/, llama.cpp or ggml) can never match them.  The price: a
# Python object leaked by _core (a reference leak) is suppressed too; tests/test_runtime.py's
# RSS checks cover those.  (The interpreter is built without frame pointers, so stacks that
# start in libpython are cut short and cannot be attributed further anyway.)
cat >"$SUPP" <<'EOF'
leak:_PyMem_RawMalloc
leak:_PyMem_RawCalloc
leak:_PyMem_RawRealloc
leak:PyMem_RawMalloc
leak:PyMem_RawCalloc
leak:PyMem_RawRealloc
leak:PyMem_Malloc
leak:PyMem_Calloc
leak:PyMem_Realloc
leak:PyObject_Malloc
leak:PyObject_Calloc
leak:PyObject_Realloc
leak:gc_alloc
leak:_PyObject_GC_New
leak:_PyObject_GC_Resize
leak:_PyObject_New
leak:PyType_GenericAlloc
leak:_PyType_AllocNoTrack
leak:PyFloat_FromDouble
leak:_PyLong_New
leak:PyUnicode_New
leak:resize_compact
leak:PyBytes_FromStringAndSize
leak:_PyBytes_Resize
leak:list_resize
leak:dictresize
leak:new_keys_object
leak:PyThread_allocate_lock
EOF

rm -rf "$LOGS"
mkdir -p "$LOGS"
SAN_ENV=(
    LD_PRELOAD="$LIBASAN:$LIBSTDCXX${LD_PRELOAD:+:$LD_PRELOAD}"
    ASAN_OPTIONS="detect_leaks=1:log_path=$LOGS/asan:halt_on_error=1:symbolize=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
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
(cd "$ROOT" && env "${SAN_ENV[@]}" "$PY_EXE" -m pytest -p no:cacheprovider -q --junitxml="$LOGS/junit.xml" "$@")
pytest_status=$?
echo "   pytest exit status $pytest_status after $(( $(date +%s) - start )) s"

# --- reports -------------------------------------------------------------------------------
"$PY_EXE" - "$LOGS" "$pytest_status" <<'EOF'
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

logs = sorted(Path(sys.argv[1]).glob("asan.*"))
OURS = re.compile(r"_core\.cpython|/cpp/[\w.]+\.(?:cpp|h)|third_party/llama\.cpp/|\bggml_|\bllama_|\bled::")
errors, our_leaks, other_leaks = [], [], []
for log in logs:
    text = log.read_text(errors="replace")
    for block in re.split(r"\n(?==+\n==\d+==ERROR: )", text):
        if "ERROR: LeakSanitizer" in block:
            for leak in re.split(r"\n(?=(?:Direct|Indirect) leak of )", block)[1:]:
                leak = leak.split("\nSUMMARY:")[0].strip()
                (our_leaks if OURS.search(leak) else other_leaks).append((log.name, leak))
        elif "AddressSanitizer" in block:  # an error report, or ASan's own CHECK failure
            errors.append((log.name, block.strip()))
print(f"== sanitizer logs: {len(logs)} file(s)")
for name, block in errors:
    print(f"--- AddressSanitizer error ({name}) ---\n{block[:6000]}\n")
for name, leak in our_leaks:
    print(f"--- leak inside _core ({name}) ---\n{leak[:4000]}\n")
print(f"AddressSanitizer errors: {len(errors)}")
print(f"leaks inside _core (led_cpp, llama.cpp, ggml): {len(our_leaks)}")
print(f"leaks outside _core (interpreter, other extensions; not counted as failures): {len(other_leaks)}")
# The tests' verdict comes from pytest's JUnit XML: LeakSanitizer sets the exit status of a
# process that leaked anything (CPython always does), so the status alone cannot tell.
junit = Path(sys.argv[1]) / "junit.xml"
status = int(sys.argv[2])
tests_ok = status == 0
if not tests_ok and junit.is_file():
    suites = ET.parse(junit).getroot()
    suites = [suites] if suites.tag == "testsuite" else list(suites)
    counts = {key: sum(int(suite.get(key, 0)) for suite in suites) for key in ("tests", "failures", "errors")}
    print(f"pytest: {counts['tests']} tests, {counts['failures']} failures, {counts['errors']} errors "
          f"(exit status {status})")
    tests_ok = counts["tests"] > 0 and counts["failures"] == 0 and counts["errors"] == 0 and status in (1, 23)
elif not tests_ok:
    print(f"pytest wrote no JUnit report (exit status {status}): it died before finishing")
print(f"TESTS: {'ok' if tests_ok else 'FAILED'}")
sys.exit((0 if tests_ok else 2) | (1 if errors or our_leaks else 0))
EOF
report_status=$?

if [ "$report_status" -eq 0 ]; then
    echo "RESULT: PASS (no AddressSanitizer errors, no leaks inside _core, tests passed)"
    exit 0
fi
[ $(( report_status & 1 )) -ne 0 ] && echo "RESULT: FAIL (sanitizer findings above)"
[ $(( report_status & 2 )) -ne 0 ] && echo "RESULT: FAIL (tests failed or pytest died; exit status $pytest_status)"
exit 1
