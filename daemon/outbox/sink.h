#pragma once
// Notification sinks: where the outbox dispatcher hands each notification (DESIGN,
// "Notifications"). tandemd's sinks are plugin instances (daemon/outbox/plugin.h, PluginSink);
// the interface keeps the dispatcher independent of how a sink delivers.

#include <string_view>

#include "daemon/base/status.h"
#include "proto/tandem/v1/store.pb.h"

namespace tandem::outbox {

// A destination for notifications. Owned by the Dispatcher; called only from the dispatcher's
// thread, one record at a time, so an implementation needs no locking of its own.
class Sink {
 public:
  virtual ~Sink() = default;
  // The sink's name: the channel instance whose records it delivers, also used in delivery
  // errors ("<name>: <error>"). Stable for the sink's life.
  virtual std::string_view name() const = 0;
  // Delivers one notification to record.address(). OK means delivered (durably, for a file
  // sink). kUnavailable means not delivered but may work later: the dispatcher retries it. Any
  // other error is permanent: the dispatcher parks the record in dead_letter. A message names
  // the destination and the failure, never a fact value. Never throws. Keeps no reference to
  // `record`.
  virtual Status Deliver(const v1::OutboxRecord& record) = 0;
};

}  // namespace tandem::outbox
