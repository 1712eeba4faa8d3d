#pragma once
// CurveZMQ key text shared by the router and the client: keys travel in configuration as 40
// Z85 characters and are compared as their 32 binary bytes.

#include <string>
#include <string_view>

#include "daemon/base/status.h"

namespace tandem::ingest::internal {

// Decodes a 40-character Z85 CurveZMQ key into its 32 bytes.
// Returns kInvalidArgument, naming `field` (never the key), when `z85` is not 40 valid Z85
// characters.
Result<std::string> Z85DecodeKey(std::string_view z85, std::string_view field);

// Returns the Z85 text of `binary`. REQUIRES: binary.size() is a multiple of 4.
std::string Z85Encode(std::string_view binary);

}  // namespace tandem::ingest::internal
