// A plugin whose every delivery aborts the process, to show that a plugin crashing mid-delivery
// leaves the daemon's store consistent (the delivery is simply not recorded). Create succeeds.

#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "plugins/common/plugin_util.h"

namespace tandem::plugins {
namespace {

class CrashInstance final : public Instance {
 public:
  std::string CheckAddress(std::string_view) const override { return ""; }
  Outcome Deliver(const tandem_plugin_delivery&) override { std::abort(); }
};

std::unique_ptr<Instance> MakeCrash(std::string_view, Config&, const tandem_plugin_host&,
                                    std::string*) {
  return std::make_unique<CrashInstance>();
}

}  // namespace
}  // namespace tandem::plugins

TANDEM_DEFINE_PLUGIN("crash", "1.0.0", &::tandem::plugins::MakeCrash)
