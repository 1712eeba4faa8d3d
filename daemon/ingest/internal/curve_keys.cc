#include "daemon/ingest/internal/curve_keys.h"

#include <zmq.h>

#include <cstdint>

namespace tandem::ingest::internal {
namespace {
constexpr std::size_t kKeyBytes = 32;
constexpr std::size_t kKeyZ85Chars = 40;
}  // namespace

Result<std::string> Z85DecodeKey(std::string_view z85, std::string_view field) {
  std::string bad = "curve: field '" + std::string(field) + "' is not a 40-character Z85 key";
  if (z85.size() != kKeyZ85Chars) return InvalidArgumentError(std::move(bad));
  const std::string text(z85);  // zmq_z85_decode wants a NUL-terminated string
  std::string key(kKeyBytes, '\0');
  if (zmq_z85_decode(reinterpret_cast<uint8_t*>(key.data()), text.c_str()) == nullptr) {
    return InvalidArgumentError(std::move(bad));
  }
  return key;
}

std::string Z85Encode(std::string_view binary) {
  // Z85 encodes 4 bytes as 5 characters; callers pass 32-byte keys.
  TANDEM_CHECK(binary.size() % 4 == 0);
  std::string text(binary.size() / 4 * 5 + 1, '\0');
  zmq_z85_encode(text.data(), reinterpret_cast<const uint8_t*>(binary.data()), binary.size());
  text.pop_back();  // the terminating NUL
  return text;
}

}  // namespace tandem::ingest::internal
