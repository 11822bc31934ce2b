#!/usr/bin/env bash
# Build everything, then run the test suite.
# Usage: scripts/test.sh [extra ctest args, e.g. -R Volume]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/build.sh

# exec so the script's exit status is exactly ctest's.
exec ctest --test-dir build --output-on-failure \
  -j "${KALAVARA_TEST_JOBS:-2}" --timeout 600 "$@"
