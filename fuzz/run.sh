#!/usr/bin/env bash
# Coverage-guided fuzzing of fastconv's public API (fuzz/fuzz_api.py) with
# atheris, the extension built by clang with
# -fsanitize=address,undefined,fuzzer-no-link so libFuzzer sees the C
# kernels' coverage and ASan/UBSan catch memory errors and undefined
# behaviour in them.
#
#   bash fuzz/run.sh                        # 60 seconds (the bounded CI-style run)
#   bash fuzz/run.sh --help                 # this text
#   FUZZ_SECONDS=3600 bash fuzz/run.sh      # longer: an hour (any number of seconds)
#   FUZZ_SECONDS=0 bash fuzz/run.sh         # until stopped (Ctrl-C) or a finding
#   bash fuzz/run.sh -jobs=4 -workers=2     # extra arguments go to libFuzzer
#   bash fuzz/run.sh build/fuzz/crash-XXXX  # replay one input (a file, not a directory)
#
# Longer runs: the corpus in $FUZZ_CORPUS (default build/fuzz/corpus) is kept
# between runs, so repeated runs continue where the last one stopped; run with
# -jobs=N -workers=N to use N processes.  A finding is saved as
# build/fuzz/crash-<sha1> (or oom-/timeout-) and the run exits non-zero;
# replay it by passing the file as the only argument.
#
# Needs: clang (apt-get install clang), atheris (pip install atheris), and
# PYTHON (default python) with numpy, scipy, Cython.
#
# Environment:
#   FUZZ_SECONDS   time budget (default 60; 0 = unlimited)
#   FUZZ_BUILD_DIR build directory (default build/fuzz): the sanitized copy of
#                  the sources, the merged ASan+libFuzzer runtime, crashes
#   FUZZ_CORPUS    corpus directory (default $FUZZ_BUILD_DIR/corpus)
#   FUZZ_UBSAN_HALT=0  print UBSan reports and carry on (each location reported
#                  once) instead of stopping at the first; ASan reports still stop
set -euo pipefail

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    # the usage is the comment block above
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 0
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
SECS="${FUZZ_SECONDS:-60}"
BUILD="${FUZZ_BUILD_DIR:-$ROOT/build/fuzz}"
CORPUS="${FUZZ_CORPUS:-$BUILD/corpus}"
mkdir -p "$BUILD" "$CORPUS"
BUILD="$(cd "$BUILD" && pwd)"

command -v clang >/dev/null || { echo "fuzz/run.sh: clang not found (apt-get install clang)" >&2; exit 2; }
if ! "$PY" -c "import atheris" 2>/dev/null; then
    echo "fuzz/run.sh: installing atheris"
    "$PY" -m pip install -q atheris
fi
"$PY" -c "import Cython" 2>/dev/null || "$PY" -m pip install -q "Cython>=3"

# 1. ASan (with UBSan's handlers) and libFuzzer in ONE preloadable library.
#    Preloading clang's libclang_rt.asan .so alone would bind the extension's
#    coverage callbacks to ASan's weak no-op stubs instead of libFuzzer, and
#    atheris' wheel does not ship such a merged runtime.
RT="$BUILD/asan_with_fuzzer.so"
if [ ! -e "$RT" ]; then
    rtdir="$(dirname "$(clang -print-file-name=libclang_rt.asan-x86_64.a)")"
    tmp="$(mktemp -d)"
    (cd "$tmp" && ar x "$rtdir/libclang_rt.asan-x86_64.a" && rm -f asan_preinit.cpp.o asan_preinit.cc.o &&
     clang++ -shared -o "$RT" -Wl,--whole-archive "$rtdir/libclang_rt.fuzzer_no_main-x86_64.a" *.o \
         "$rtdir/libclang_rt.asan_cxx-x86_64.a" -Wl,--no-whole-archive -lpthread -ldl -lrt -lm)
    rm -rf "$tmp"
    echo "fuzz/run.sh: built $RT"
fi

# 2. the extension, built in a copy of the sources (incremental between runs)
SRC="$BUILD/src"
mkdir -p "$SRC"
(cd "$ROOT" && cp -p --parents setup.py pyproject.toml csrc/*.c csrc/*.h fastconv/*.py fastconv/*.pyx "$SRC/")
so="$(ls "$SRC"/fastconv/_kernels*.so 2>/dev/null | head -1 || true)"
stale=""
if [ -n "$so" ]; then
    stale="$(find "$SRC/csrc" "$SRC/fastconv" "$SRC/setup.py" \( -name '*.c' -o -name '*.h' -o -name '*.pyx' \
             -o -name setup.py \) -not -name _kernels.c -newer "$so" | head -1)"
fi
if [ -z "$so" ] || [ -n "$stale" ]; then
    start=$(date +%s)
    (cd "$SRC" && CC=clang CXX=clang++ FASTCONV_SANITIZE=address,undefined,fuzzer-no-link \
        "$PY" setup.py -q build_ext --inplace > "$BUILD/build.log" 2>&1) ||
        { tail -40 "$BUILD/build.log"; echo "fuzz/run.sh: build failed" >&2; exit 1; }
    echo "fuzz/run.sh: extension built in $(( $(date +%s) - start )) s"
fi
echo "fuzz/run.sh: using $(ls "$SRC"/fastconv/_kernels*.so)"

# 3. fuzz.  Allocations above 1 GiB return NULL (MemoryError, an allowed outcome)
#    instead of touching gigabytes; libFuzzer's own malloc limit is lifted so
#    those refused requests are not reported as out-of-memory findings.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=1024:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="halt_on_error=${FUZZ_UBSAN_HALT:-1}:abort_on_error=1:print_stacktrace=1"
export PYTHONPATH="$SRC${PYTHONPATH:+:$PYTHONPATH}"
args=(-rss_limit_mb=4096 -malloc_limit_mb=1000000000 -timeout=60 -print_final_stats=1
      -artifact_prefix="$BUILD/")
if [ "$#" -eq 1 ] && [ -f "$1" ]; then
    exec env LD_PRELOAD="$RT" "$PY" "$ROOT/fuzz/fuzz_api.py" "${args[@]}" "$1"
fi
[ "$SECS" -gt 0 ] && args+=(-max_total_time="$SECS")
echo "fuzz/run.sh: fuzzing for ${SECS}s, corpus $CORPUS"
LD_PRELOAD="$RT" "$PY" "$ROOT/fuzz/fuzz_api.py" "${args[@]}" "$@" "$CORPUS"
