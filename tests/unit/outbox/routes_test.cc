#include "daemon/outbox/routes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "proto/tandem/v1/case.pb.h"
#include "proto/tandem/v1/config.pb.h"

namespace tandem::outbox {
namespace {

using ::testing::ElementsAre;

// One route: partnership and role ("" for every one) to "channel" or "channel=address" refs.
v1::Route MakeRoute(const std::string& partnership, const std::string& role,
                    const std::vector<std::string>& refs) {
  v1::Route route;
  route.set_partnership(partnership);
  route.set_role(role);
  for (const std::string& ref : refs) {
    v1::ChannelRef* channel = route.add_channels();
    const auto eq = ref.find('=');
    channel->set_channel(ref.substr(0, eq));
    if (eq != std::string::npos) channel->set_address(ref.substr(eq + 1));
  }
  return route;
}

google::protobuf::RepeatedPtrField<v1::Route> MakeRoutes(std::vector<v1::Route> routes) {
  google::protobuf::RepeatedPtrField<v1::Route> out;
  for (v1::Route& route : routes) *out.Add() = std::move(route);
  return out;
}

v1::Notification For(const std::string& partnership, const std::vector<std::string>& roles) {
  v1::Notification n;
  n.set_notification_id("SI-1:timer:1:1");
  n.set_partnership(partnership);
  for (const std::string& role : roles) n.add_roles(role);
  return n;
}

// "channel=address" for each channel, in order, to compare with MakeRoute's refs.
std::vector<std::string> Refs(const std::vector<store::DeliveryChannel>& channels) {
  std::vector<std::string> out;
  for (const auto& c : channels) out.push_back(c.channel + "=" + c.address);
  return out;
}

// Every level of specificity, for partnership "staffs" and role "dsl".
Routes EveryLevel() {
  return Routes(MakeRoutes({
      MakeRoute("", "", {"log"}),
      MakeRoute("", "dsl", {"mail=dsl@example.org"}),
      MakeRoute("staffs", "", {"hook=https://staffs.example.org/in"}),
      MakeRoute("staffs", "dsl", {"sms=+447700900000"}),
  }));
}

TEST(Routes, PartnershipAndRoleIsTheMostSpecificRoute) {
  EXPECT_THAT(Refs(EveryLevel().For(For("staffs", {"dsl"}))), ElementsAre("sms=+447700900000"));
}

TEST(Routes, PartnershipAloneComesBeforeRoleAlone) {
  EXPECT_THAT(Refs(EveryLevel().For(For("staffs", {"manager"}))),
              ElementsAre("hook=https://staffs.example.org/in"));
}

TEST(Routes, RoleAloneComesBeforeTheCatchAll) {
  EXPECT_THAT(Refs(EveryLevel().For(For("derby", {"dsl"}))), ElementsAre("mail=dsl@example.org"));
}

TEST(Routes, TheCatchAllTakesWhatNothingElseMatches) {
  EXPECT_THAT(Refs(EveryLevel().For(For("derby", {"manager"}))), ElementsAre("log="));
}

TEST(Routes, OnlyTheMostSpecificRouteOfARoleApplies) {
  // Not a union over levels: the role's own route replaces the partnership's and the catch-all.
  const Routes routes(MakeRoutes({
      MakeRoute("", "", {"log"}),
      MakeRoute("staffs", "", {"hook=h"}),
      MakeRoute("staffs", "dsl", {"mail=m"}),
  }));
  EXPECT_THAT(Refs(routes.For(For("staffs", {"dsl"}))), ElementsAre("mail=m"));
}

TEST(Routes, ARoleRouteOfAnotherPartnershipIsNotApplied) {
  const Routes routes(MakeRoutes({
      MakeRoute("", "", {"log"}),
      MakeRoute("derby", "dsl", {"mail=derby-dsl@example.org"}),
      MakeRoute("derby", "", {"hook=https://derby.example.org"}),
  }));
  EXPECT_THAT(Refs(routes.For(For("staffs", {"dsl"}))), ElementsAre("log="));
  EXPECT_THAT(Refs(routes.For(For("derby", {"dsl"}))), ElementsAre("mail=derby-dsl@example.org"));
}

TEST(Routes, APartnershipsCatchAllAppliesToItsRolesOnly) {
  const Routes routes(MakeRoutes({
      MakeRoute("", "", {"log"}),
      MakeRoute("staffs", "", {"hook=https://staffs.example.org/in"}),
  }));
  EXPECT_THAT(Refs(routes.For(For("staffs", {"dsl", "manager"}))),
              ElementsAre("hook=https://staffs.example.org/in"));
  EXPECT_THAT(Refs(routes.For(For("derby", {"dsl"}))), ElementsAre("log="));
}

TEST(Routes, RolesFanOutToTheUnionInRouteOrderEachChannelOnce) {
  const Routes routes(MakeRoutes({
      MakeRoute("", "", {"log"}),
      MakeRoute("", "dsl", {"mail=dsl@example.org", "log"}),
      MakeRoute("", "manager", {"log", "mail=manager@example.org", "mail=dsl@example.org"}),
  }));
  // dsl's channels first, then manager's new ones; "log" and dsl's mailbox once each.
  EXPECT_THAT(Refs(routes.For(For("staffs", {"dsl", "manager"}))),
              ElementsAre("mail=dsl@example.org", "log=", "mail=manager@example.org"));
  // The notification's order of roles decides the order of the union.
  EXPECT_THAT(Refs(routes.For(For("staffs", {"manager", "dsl"}))),
              ElementsAre("log=", "mail=manager@example.org", "mail=dsl@example.org"));
}

TEST(Routes, OneChannelWithTwoAddressesIsTwoChannels) {
  const Routes routes(MakeRoutes({
      MakeRoute("", "", {"log"}),
      MakeRoute("", "dsl", {"mail=a@example.org"}),
      MakeRoute("", "manager", {"mail=b@example.org"}),
  }));
  EXPECT_THAT(Refs(routes.For(For("staffs", {"dsl", "manager"}))),
              ElementsAre("mail=a@example.org", "mail=b@example.org"));
}

TEST(Routes, RolesThatFallToTheSameRouteGiveItsChannelsOnce) {
  const Routes routes(MakeRoutes({MakeRoute("", "", {"log", "jsonl"})}));
  EXPECT_THAT(Refs(routes.For(For("staffs", {"dsl", "manager", "panel"}))),
              ElementsAre("log=", "jsonl="));
}

TEST(Routes, ANotificationWithoutRolesIsRoutedAsTheEmptyRole) {
  EXPECT_THAT(Refs(EveryLevel().For(For("staffs", {}))),
              ElementsAre("hook=https://staffs.example.org/in"));
  EXPECT_THAT(Refs(EveryLevel().For(For("derby", {}))), ElementsAre("log="));
}

TEST(Routes, NoMatchingRouteGivesNoChannel) {
  // Only reachable without a catch-all, which the configuration refuses.
  const Routes routes(MakeRoutes({MakeRoute("", "dsl", {"mail=m"})}));
  EXPECT_TRUE(routes.For(For("staffs", {"manager"})).empty());
  EXPECT_TRUE(routes.For(For("staffs", {})).empty());
  EXPECT_THAT(Refs(routes.For(For("staffs", {"manager", "dsl"}))), ElementsAre("mail=m"));
}

TEST(Routes, KeepsNothingOfTheRoutesItWasBuiltFrom) {
  auto source = MakeRoutes({MakeRoute("", "", {"log"})});
  const Routes routes(source);
  source.Clear();
  EXPECT_THAT(Refs(routes.For(For("staffs", {"dsl"}))), ElementsAre("log="));
}

}  // namespace
}  // namespace tandem::outbox
