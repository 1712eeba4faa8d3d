#include "daemon/outbox/routes.h"

#include <algorithm>

namespace tandem::outbox {

Routes::Routes(const google::protobuf::RepeatedPtrField<v1::Route>& routes) {
  for (const v1::Route& route : routes) {
    std::vector<store::DeliveryChannel>& channels = routes_[{route.partnership(), route.role()}];
    for (const v1::ChannelRef& ref : route.channels()) {
      channels.push_back({ref.channel(), ref.address()});
    }
  }
}

std::vector<store::DeliveryChannel> Routes::For(const v1::Notification& notification) const {
  std::vector<store::DeliveryChannel> out;
  auto route_for = [&](const std::string& role) -> const std::vector<store::DeliveryChannel>* {
    for (const auto& key :
         {std::pair{notification.partnership(), role},
          std::pair{notification.partnership(), std::string()}, std::pair{std::string(), role},
          std::pair{std::string(), std::string()}}) {
      if (const auto it = routes_.find(key); it != routes_.end()) return &it->second;
    }
    return nullptr;
  };
  auto add = [&](const std::vector<store::DeliveryChannel>* channels) {
    if (channels == nullptr) return;
    for (const store::DeliveryChannel& channel : *channels) {
      const bool seen = std::any_of(out.begin(), out.end(), [&](const auto& c) {
        return c.channel == channel.channel && c.address == channel.address;
      });
      if (!seen) out.push_back(channel);
    }
  };
  if (notification.roles().empty()) add(route_for(""));
  for (const std::string& role : notification.roles()) add(route_for(role));
  return out;
}

}  // namespace tandem::outbox
