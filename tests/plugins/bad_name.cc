// A complete plugin whose name breaks the rule (lowercase letters, digits and '_').

#include "tandem/plugin.h"

namespace {

int Create(const char*, const char*, const tandem_plugin_host*, void** instance, char*, size_t) {
  static int the_instance = 0;
  *instance = &the_instance;
  return 0;
}
int CheckAddress(void*, const char*, char*, size_t) { return 0; }
tandem_plugin_result Deliver(void*, const tandem_plugin_delivery*, char*, size_t) {
  return TANDEM_PLUGIN_DELIVERED;
}
void Destroy(void** instance) { *instance = nullptr; }

const tandem_plugin kTable = {
    TANDEM_PLUGIN_ABI_VERSION, "Bad-Name", "1.0.0", &Create, &CheckAddress, &Deliver, &Destroy};

}  // namespace

extern "C" TANDEM_PLUGIN_EXPORT const tandem_plugin* tandem_plugin_entry(void) { return &kTable; }
