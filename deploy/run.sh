#!/usr/bin/env bash
# Builds tandem and runs it with its embedded defaults. Until the daemon lands (issue 3) the main
# program is `tandemctl simulate` on the shipped serious-incident example, printing its timeline.
# Extra arguments go to tandemctl simulate, e.g. deploy/run.sh --json.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/deploy/common.sh"
tandem_install_packages
tandem_build "$ROOT/build/release" -DCMAKE_BUILD_TYPE=Release -DTANDEM_BUILD_TESTS=OFF \
  -DTANDEM_BUILD_BENCH=OFF
cd "$ROOT"
exec "$ROOT/build/release/daemon/tandemctl/tandemctl" simulate \
  --events "$ROOT/workflows/examples/serious_incident.jsonl" "$@"
