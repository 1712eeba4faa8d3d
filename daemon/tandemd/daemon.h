#pragma once
// tandemd: the daemon that ties the modules together on one Asio io_context run by one thread,
// the writer thread. Start-up is a straight line of named steps (config, store, workflows and
// calendar, writer and timers, outbox, ingest socket, ready); shutdown is SIGTERM or SIGINT:
// stop accepting, finish the turn in progress (its commit and acks), stop the timers and the
// outbox dispatcher, record their last outcomes, exit 0. SIGHUP reloads the workflows.

#include "daemon/tandemd/config.h"

namespace tandem::tandemd {

// Exit statuses of RunDaemon.
inline constexpr int kExitOk = 0;
// A bad configuration, a data directory in use by another daemon, a socket that cannot be
// bound, workflows or a calendar that do not load: nothing was acknowledged.
inline constexpr int kExitStartupFailed = 1;
// A commit failed or the store could not be read while running (sysexits' EX_SOFTWARE): the
// daemon acknowledged nothing after the failure.
inline constexpr int kExitStorageFailed = 70;

// Runs the daemon until a signal stops it or storage fails; returns the exit status.
// Logs to standard error, one line per event of interest, never a fact value.
int RunDaemon(const DaemonOptions& options);

}  // namespace tandem::tandemd
