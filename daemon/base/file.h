#pragma once
// Whole-file reading for loaders and command-line tools. The pure modules (engine, calendar)
// never call this: they take file contents as arguments.

#include <filesystem>
#include <string>

#include "daemon/base/status.h"

namespace tandem {

// Returns the whole contents of `path`.
// Returns kNotFound if it does not exist, kInvalidArgument if it is not a regular file or
// cannot be read (the message names the path and the OS error).
Result<std::string> ReadFile(const std::filesystem::path& path);

}  // namespace tandem
