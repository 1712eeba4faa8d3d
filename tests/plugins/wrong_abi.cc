// A plugin built for the next ABI version, whose table after abi_version has another layout:
// where version 1 has the name, this one has an address nothing is mapped at. A host that reads
// anything but abi_version before checking it follows that address and crashes, so the loader
// test shows the order of the host's checks as well as its answer.

#include <cstdint>

#include "tandem/plugin.h"

namespace {

// Stands in for a future version's function; never called.
int FutureCreate(const void*, void**) { return 1; }

// The future table: the version first, as every version keeps it, then different members.
struct FuturePluginTable {
  uint32_t abi_version;
  uint32_t flags;
  uintptr_t not_a_name;  // where version 1 has `name`: an address nothing is mapped at
  int (*create)(const void* options, void** instance);
  const char* name;
};

const FuturePluginTable kTable = {TANDEM_PLUGIN_ABI_VERSION + 1, 0xffffffffu, 0x8, &FutureCreate,
                                  "wrong_abi"};

}  // namespace

extern "C" TANDEM_PLUGIN_EXPORT const tandem_plugin* tandem_plugin_entry(void) {
  // The host sees a table of its own type, as it would from a real plugin of another version.
  return reinterpret_cast<const tandem_plugin*>(&kTable);
}
