#!/usr/bin/env bash
# Builds tandem and runs the daemon, tandemd, in the foreground with its embedded defaults: data
# in ./var/tandem (under the repository), ingest on tcp://127.0.0.1:7450, the shipped workflows
# and calendar, notifications to the log and to var/tandem/notifications.jsonl. Stop it with
# Ctrl-C (SIGINT) or SIGTERM; SIGHUP reloads the workflows. Extra arguments go to tandemd, e.g.
# deploy/run.sh --config deploy/my-tandem.yaml.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/deploy/common.sh"
tandem_install_packages
tandem_build "$ROOT/build/release" -DCMAKE_BUILD_TYPE=Release -DTANDEM_BUILD_TESTS=OFF \
  -DTANDEM_BUILD_BENCH=OFF
cd "$ROOT"
exec "$ROOT/build/release/daemon/tandemd/tandemd" "$@"
