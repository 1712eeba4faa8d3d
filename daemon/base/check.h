#pragma once
// Invariant checks (CONVENTIONS C5, third kind of failure). TANDEM_CHECK is always on and fatal;
// TANDEM_DCHECK only in debug builds. Each use carries a comment on why the condition holds.
// Never check a condition the environment controls: return a Status for those.

namespace tandem::internal {
[[noreturn]] void CheckFailed(const char* condition, const char* file, int line);
}  // namespace tandem::internal

#define TANDEM_CHECK(cond)                                                           \
  do {                                                                               \
    if (!(cond)) ::tandem::internal::CheckFailed(#cond, __FILE__, __LINE__);         \
  } while (0)

#ifdef NDEBUG
#define TANDEM_DCHECK(cond) \
  do {                      \
  } while (false && (cond))
#else
#define TANDEM_DCHECK(cond) TANDEM_CHECK(cond)
#endif
