#pragma once
// Helpers shared by the tandemd unit tests: a fresh directory per test (the one the store tests
// use: named after the test and the process, removed before and after it, and not created) and
// instants written as text. Deterministic: no wall clock, no randomness.

#include "tests/unit/store/store_test_util.h"

namespace tandem::tandemd::test {

// Returns the instant written "YYYY-MM-DDTHH:MM:SSZ"; a bad one fails the test.
using store::test::At;

using store::test::ScopedDir;

}  // namespace tandem::tandemd::test
