#pragma once
// Expected failures as values. Every tandem API that can fail for a reason outside the
// program's control returns a Status or a Result<T>; no tandem API throws (CONVENTIONS C4, C5).
// The codes are a small canonical set; ingest maps them once onto REJECTED ack reasons.

#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "daemon/base/check.h"

namespace tandem {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // a bad event, fact, file or option
  kNotFound,            // a case, workflow or timer that does not exist
  kAlreadyExists,       // a duplicate event_id, a second starting event for a case
  kFailedPrecondition,  // an event not allowed in the case's current state
  kOutOfRange,          // a date beyond the calendar's data
  kUnavailable,         // a plugin target is down; retryable
  kDataLoss,            // store corruption
  kInternal,            // a broken invariant reported rather than checked
};

// Returns the code's stable lower-case name, e.g. "invalid_argument".
std::string_view StatusCodeName(StatusCode code);

// A code plus a message naming the thing and the place, never a fact value.
// Immutable value type; safe to copy and share.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Returns "<code>: <message>", or "ok".
  std::string ToString() const;

  // Returns a copy whose message is "<prefix>: <message>", same code.
  Status WithPrefix(std::string_view prefix) const;

  // Drops the status on purpose. Every call carries a comment saying why it is safe.
  void IgnoreError() const {}

  friend bool operator==(const Status&, const Status&) = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }
inline Status InvalidArgumentError(std::string m) {
  return Status(StatusCode::kInvalidArgument, std::move(m));
}
inline Status NotFoundError(std::string m) {
  return Status(StatusCode::kNotFound, std::move(m));
}
inline Status AlreadyExistsError(std::string m) {
  return Status(StatusCode::kAlreadyExists, std::move(m));
}
inline Status FailedPreconditionError(std::string m) {
  return Status(StatusCode::kFailedPrecondition, std::move(m));
}
inline Status OutOfRangeError(std::string m) {
  return Status(StatusCode::kOutOfRange, std::move(m));
}
inline Status UnavailableError(std::string m) {
  return Status(StatusCode::kUnavailable, std::move(m));
}
inline Status DataLossError(std::string m) {
  return Status(StatusCode::kDataLoss, std::move(m));
}
inline Status InternalError(std::string m) {
  return Status(StatusCode::kInternal, std::move(m));
}

// Either a value or a non-OK Status. No operator bool: callers ask ok() explicitly.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status) : v_(std::in_place_index<1>, std::move(status)) {  // NOLINT
    // A Result built from a Status always means failure; an OK status here is a caller bug.
    TANDEM_CHECK(!std::get<1>(v_).ok());
  }

  bool ok() const { return v_.index() == 0; }
  // Returns the error, or OK when a value is held.
  Status status() const { return ok() ? Status() : std::get<1>(v_); }

  // REQUIRES: ok().
  const T& value() const& { return Get(); }
  T& value() & { return Get(); }
  T&& value() && { return std::move(Get()); }
  const T& operator*() const& { return Get(); }
  T& operator*() & { return Get(); }
  const T* operator->() const { return &Get(); }
  T* operator->() { return &Get(); }

 private:
  T& Get() {
    TANDEM_CHECK(ok());  // reading the value of a failed Result is a caller bug
    return std::get<0>(v_);
  }
  const T& Get() const {
    TANDEM_CHECK(ok());
    return std::get<0>(v_);
  }
  std::variant<T, Status> v_;
};

}  // namespace tandem

#define TANDEM_STATUS_CONCAT_INNER(a, b) a##b
#define TANDEM_STATUS_CONCAT(a, b) TANDEM_STATUS_CONCAT_INNER(a, b)

// Returns the Status of `expr` from the enclosing function when it is not OK.
#define TANDEM_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::tandem::Status tandem_status_ = (expr);        \
    if (!tandem_status_.ok()) return tandem_status_; \
  } while (0)

// Evaluates the Result `expr`; returns its Status when it failed, else moves its value into
// `lhs` (which may be a declaration: TANDEM_ASSIGN_OR_RETURN(auto x, F());).
#define TANDEM_ASSIGN_OR_RETURN(lhs, expr)                                         \
  TANDEM_ASSIGN_OR_RETURN_IMPL(TANDEM_STATUS_CONCAT(tandem_result_, __LINE__), lhs, \
                               expr)
#define TANDEM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
