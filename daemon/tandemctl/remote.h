#pragma once
// The tandemctl commands that talk to a running tandemd over its ingest socket (a ZeroMQ
// DEALER with Lazy Pirate retries, daemon/ingest/client.h): `publish` events from JSON lines,
// `case show` one case, list `deadlines`, and list the `outbox` or `outbox retry` a parked
// delivery.

#include <cstdint>
#include <cstdio>
#include <string>

namespace tandem::tandemctl {

// Where the daemon is and how long to wait for it.
struct RemoteOptions {
  std::string endpoint = "tcp://127.0.0.1:7450";
  // The most one request may take, retries included, in seconds.
  double timeout_seconds = 10;
};

struct PublishOptions {
  RemoteOptions remote;
  // JSON lines of tandem.v1.Event (protobuf JSON mapping); "-" reads standard input.
  std::string events;
};

// Publishes every event of the file in order, one request each (request_id = event_id; a
// retry resends the same request), printing one line per input line to `out`:
//   <event_id> ACCEPTED | DUPLICATE (first ACCEPTED|REJECTED) | REJECTED <code>: <reason>
//   <file>:<line> REJECTED invalid_argument: not a valid event: ...   (never sent)
// Returns 0 when every event was ACCEPTED or DUPLICATE; 1 when the file cannot be read or an
// option is bad; 2 when some line was REJECTED (by the daemon, or here as not an event; the
// other lines are still published); 3 when the daemon did not answer within the timeout (the
// lines after it are not sent).
int RunPublish(const PublishOptions& options, std::FILE* out, std::FILE* err);

struct CaseShowOptions {
  RemoteOptions remote;
  std::string case_id;
  bool json = false;
};

// Prints the case: its state, facts, deadlines with their explanations, its accepted events
// and its timeline. With json, one JSON object: {"state": CaseState, "events": [Event],
// "timeline": [the simulate --json lines]} (CaseState and Event in the protobuf JSON mapping
// with proto field names). Returns 0; 1 for a bad option, 2 when there is no such case (or the
// daemon answered with another error), 3 when the daemon did not answer.
int RunCaseShow(const CaseShowOptions& options, std::FILE* out, std::FILE* err);

struct DeadlinesOptions {
  RemoteOptions remote;
  // Due within this many working days from today (-1: no limit).
  int within = -1;
  bool overdue = false;
  std::string partnership;
  bool json = false;
};

// Lists the open and breached deadlines of open cases, earliest due first; --within N keeps
// those due within N working days (and the breached), --overdue the overdue ones. With json,
// one object per line: case_id, partnership, workflow, state, name, status, due, due_at,
// explanation. Returns 0; 1 for a bad option; 2 for an error answer; 3 when no answer came.
int RunDeadlines(const DeadlinesOptions& options, std::FILE* out, std::FILE* err);

struct OutboxOptions {
  RemoteOptions remote;
  bool parked_only = false;
  bool json = false;
};

// Lists the deliveries not yet delivered: pending (waiting for their first or next attempt) and
// parked (in dead_letter, given up on), by delivery id, one line each:
//   <id> pending|parked <channel> <address> attempts=<n> <next attempt or parked instant>
//   <case_id> <kind> <notification_id> [<last error>]
// With json, one object per line: id, state, channel, address, notification_id, case_id,
// partnership, workflow, kind, roles, deadline, due_on, attempts, enqueued_at, next_attempt_at,
// dead_lettered_at, last_error (never the subject or body). Returns 0; 1 for a bad option; 2
// for an error answer; 3 when no answer came.
int RunOutbox(const OutboxOptions& options, std::FILE* out, std::FILE* err);

struct OutboxRetryOptions {
  RemoteOptions remote;
  uint64_t delivery_id = 0;
};

// Puts parked delivery `delivery_id` back in the outbox, to be delivered again from attempt 1,
// and prints "<id> re-queued <channel> <notification_id>". Returns 0; 1 for a bad option; 2
// when the daemon answered with an error (no such parked delivery); 3 when no answer came.
int RunOutboxRetry(const OutboxRetryOptions& options, std::FILE* out, std::FILE* err);

}  // namespace tandem::tandemctl
