#!/usr/bin/env bash
# Builds tandem with warnings as errors and runs every test through ctest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/deploy/common.sh"
tandem_install_packages
tandem_build "$ROOT/build/test" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTANDEM_WERROR=ON
cd "$ROOT/build/test"
ctest --output-on-failure -j "$(nproc)" --timeout 300
