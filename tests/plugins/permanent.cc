// A plugin that refuses every delivery for good (PERMANENT_FAILURE), so the daemon's dead-letter
// path can be driven. No configuration keys; any address.

#include <memory>
#include <string>
#include <string_view>

#include "plugins/common/plugin_util.h"

namespace tandem::plugins {
namespace {

class PermanentInstance final : public Instance {
 public:
  std::string CheckAddress(std::string_view) const override { return ""; }
  Outcome Deliver(const tandem_plugin_delivery&) override {
    return Outcome::Permanent("test: refused for good");
  }
};

std::unique_ptr<Instance> MakePermanent(std::string_view, Config&, const tandem_plugin_host&,
                                        std::string*) {
  return std::make_unique<PermanentInstance>();
}

}  // namespace
}  // namespace tandem::plugins

TANDEM_DEFINE_PLUGIN("permanent", "1.0.0", &::tandem::plugins::MakePermanent)
