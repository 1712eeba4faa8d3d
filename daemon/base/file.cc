#include "daemon/base/file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace tandem {

Result<std::string> ReadFile(const std::filesystem::path& path) {
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    return NotFoundError(path.string() + ": no such file");
  }
  if (!std::filesystem::is_regular_file(status)) {
    return InvalidArgumentError(path.string() + ": not a regular file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return InvalidArgumentError(path.string() + ": cannot open: " + std::strerror(errno));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) {
    return InvalidArgumentError(path.string() + ": read failed: " + std::strerror(errno));
  }
  return buf.str();
}

}  // namespace tandem
