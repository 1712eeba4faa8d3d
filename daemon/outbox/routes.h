#pragma once
// Which channels a notification goes to: the operator's routes (tandemd's configuration,
// proto/tandem/v1/config.proto, Route) applied to the notification's partnership and roles.

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "daemon/store/store.h"
#include "proto/tandem/v1/case.pb.h"
#include "proto/tandem/v1/config.pb.h"

namespace tandem::outbox {

// The routes, indexed. Immutable after construction; safe to share between threads.
class Routes {
 public:
  // REQUIRES: `routes` passed tandemd's configuration checks (at most one route per
  // partnership and role). Copies what it needs.
  explicit Routes(const google::protobuf::RepeatedPtrField<v1::Route>& routes);

  // Returns the channels of `notification`: for each of its roles the most specific route's
  // channels (partnership and role; partnership alone; role alone; the catch-all), in route
  // order, each (channel, address) once. A notification with no roles is routed as one for the
  // empty role, i.e. by the partnership's route or the catch-all. Empty only when no route
  // matches, which a configuration with a catch-all route rules out.
  std::vector<store::DeliveryChannel> For(const v1::Notification& notification) const;

 private:
  // (partnership, role) -> channels; "" stands for every one.
  std::map<std::pair<std::string, std::string>, std::vector<store::DeliveryChannel>> routes_;
};

}  // namespace tandem::outbox
