// A plugin of the right ABI version whose table has a NULL deliver.

#include "tandem/plugin.h"

namespace {

int Create(const char*, const char*, const tandem_plugin_host*, void** instance, char*, size_t) {
  static int the_instance = 0;
  *instance = &the_instance;
  return 0;
}
int CheckAddress(void*, const char*, char*, size_t) { return 0; }
void Destroy(void** instance) { *instance = nullptr; }

const tandem_plugin kTable = {
    TANDEM_PLUGIN_ABI_VERSION, "null_member", "1.0.0", &Create, &CheckAddress,
    /*deliver=*/nullptr,       &Destroy};

}  // namespace

extern "C" TANDEM_PLUGIN_EXPORT const tandem_plugin* tandem_plugin_entry(void) { return &kTable; }
