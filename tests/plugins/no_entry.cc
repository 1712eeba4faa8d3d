// A shared library that is not a tandem plugin: it exports a function, but no
// tandem_plugin_entry.

#include "tandem/plugin.h"

extern "C" TANDEM_PLUGIN_EXPORT int tandem_plugin_entry_missing(void) { return 1; }
