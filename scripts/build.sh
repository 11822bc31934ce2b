#!/usr/bin/env bash
# Configure (once) and build kalavara into ./build.
# Usage: scripts/build.sh [--sanitize] [extra `cmake --build` args, e.g. --target kalavara-master]
#   --sanitize  the sanitized build instead, into ./build-sanitize: clang 14,
#               AddressSanitizer and UBSan, libFuzzer's coverage
#               instrumentation, the tests and the fuzz targets, no
#               benchmark tools (cmake/Sanitizers.cmake). scripts/test.sh
#               --sanitize and scripts/fuzz.sh both use it.
set -euo pipefail

# Run from the repo root whatever the caller's cwd is.
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

build=build
configure=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [[ "${1:-}" == "--sanitize" ]]; then
  shift
  build=build-sanitize
  configure+=(-DCMAKE_CXX_COMPILER=clang++-14 -DKALAVARA_FUZZ=ON -DKALAVARA_BUILD_BENCH=OFF)
fi

# Re-running cmake on an existing tree is unnecessary: ninja re-runs it itself
# when CMakeLists change. Only configure a fresh build directory. ccache is
# used when installed (cmake/Ccache.cmake).
if [[ ! -f $build/build.ninja ]]; then
  configure=(cmake -S . -B "$build" -G Ninja "${configure[@]}")
  echo "build: ${configure[*]}"
  "${configure[@]}"
fi

cmake --build "$build" -j "${KALAVARA_JOBS:-$(nproc)}" "$@"
