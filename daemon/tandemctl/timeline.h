#pragma once
// Renders engine effects for people (one aligned line each) and for programs (one JSON object
// per line: `kind`, `case_id`, `at`, and the kind's fields). The format of `tandemctl simulate`.

#include <string>

#include "proto/tandem/v1/case.pb.h"

namespace tandem::tandemctl {

// Returns the effect as one JSON object (no newline). Kinds: state, deadline, warning, breach,
// met, notification, rejected, cancelled, assessment, corrected.
std::string EffectJson(const v1::Effect& effect);

// Returns the effect as one or more human-readable lines (newline-terminated).
std::string EffectText(const v1::Effect& effect);

// Returns the JSON line for a line of an events file that is not a valid event.
std::string MalformedLineJson(const std::string& at, int line, const std::string& reason);

}  // namespace tandem::tandemctl
