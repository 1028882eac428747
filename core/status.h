#pragma once
// Operating errors as values. No exception crosses the event loop: a function
// that can fail for reasons outside the program's control returns a Status or
// a Result<T>. Programmer errors are RC_ASSERTs (assert.h).

#include <string>
#include <utility>
#include <variant>

#include "core/assert.h"

namespace rc {

class Status {
 public:
  Status() = default;  // ok
  static Status ok() { return Status(); }
  static Status error(std::string message) { return Status(std::move(message)); }

  bool is_ok() const { return !failed_; }
  explicit operator bool() const { return !failed_; }
  const std::string& message() const { return message_; }

 private:
  explicit Status(std::string message) : failed_(true), message_(std::move(message)) {}
  bool failed_ = false;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status) : v_(std::move(status)) { RC_ASSERT(!std::get<Status>(v_).is_ok()); }

  bool is_ok() const { return v_.index() == 0; }
  explicit operator bool() const { return is_ok(); }
  T& value() {
    RC_ASSERT(is_ok());
    return std::get<0>(v_);
  }
  const T& value() const {
    RC_ASSERT(is_ok());
    return std::get<0>(v_);
  }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }
  const Status& status() const {
    RC_ASSERT(!is_ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace rc
