// Errors as values for every onramp binary: a Status that is either ok or
// carries one message a person can act on, and a Result<T> that holds a value
// or such a Status. Both are [[nodiscard]]: an ignored error is a compile
// warning, and the build treats warnings as errors.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace onramp {

class [[nodiscard]] Status {
 public:
  // Ok.
  Status() = default;

  static Status error(std::string message) {
    Status s;
    s.failed_ = true;
    s.message_ = std::move(message);
    return s;
  }

  bool ok() const { return !failed_; }
  // Empty when ok.
  const std::string& message() const { return message_; }

  // The same error with "where: " before its message (a file, a field); ok
  // stays ok.
  Status prefixed(std::string_view where) const& {
    return ok() ? *this : error(std::string(where) + ": " + message_);
  }
  Status prefixed(std::string_view where) && {
    if (!ok()) message_ = std::string(where) + ": " + message_;
    return std::move(*this);
  }

  // Explicitly drops an error that the caller has decided not to act on.
  void ignore() const {}

 private:
  bool failed_ = false;
  std::string message_;
};

inline Status ok_status() { return Status(); }
inline Status error(std::string message) { return Status::error(std::move(message)); }

// A value, or the error that kept it from being made.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  // Only an error converts: a Result never holds an ok Status.
  Result(Status error) : v_(std::move(error)) {
    assert(!std::get<Status>(v_).ok() && "Result built from an ok Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  // Ok when a value is held.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }
  // The error's message; empty when a value is held.
  const std::string& error() const {
    static const std::string none;
    return ok() ? none : std::get<Status>(v_).message();
  }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace onramp

// Returns the Status of `expr` from the enclosing function when it is an
// error. The enclosing function returns Status or Result<T>.
#define ONRAMP_RETURN_IF_ERROR(expr)                                                           \
  do {                                                                                         \
    if (::onramp::Status onramp_status_ = (expr); !onramp_status_.ok()) return onramp_status_; \
  } while (0)
