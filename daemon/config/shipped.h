#pragma once
// The files shipped in workflows/ (statutory workflows and the bank-holiday calendar), compiled
// into the binaries so that tandemd and tandemctl run with no configuration at all.

#include <string_view>
#include <vector>

namespace tandem::config {

struct ShippedFile {
  // Repository-relative path, e.g. "workflows/serious_incident.yaml".
  std::string_view path;
  std::string_view text;
};

// Every shipped file, in path order. Immutable; safe to share.
const std::vector<ShippedFile>& ShippedFiles();

}  // namespace tandem::config
