#!/usr/bin/env bash
# Configure (once) and build kalavara into ./build.
# Usage: scripts/build.sh [extra `cmake --build` args, e.g. --target kalavara-master]
set -euo pipefail

# Run from the repo root whatever the caller's cwd is.
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

# Re-running cmake on an existing tree is unnecessary: ninja re-runs it itself
# when CMakeLists change. Only configure a fresh build directory.
if [[ ! -f build/build.ninja ]]; then
  configure=(cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo)
  if command -v ccache >/dev/null 2>&1; then
    configure+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  echo "build: ${configure[*]}"
  "${configure[@]}"
fi

cmake --build build -j "${KALAVARA_JOBS:-$(nproc)}" "$@"
