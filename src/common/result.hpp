// Expected failures as values: a missing key, bad input, a full disk or a
// volume that is down are returned, never thrown. Exceptions are reserved for
// start-up errors and bugs.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace kalavara {

// An expected failure: the HTTP status that describes it best, and a one-line
// reason meant for the client ("key is longer than 1024 bytes").
struct Error {
  int status = 500;
  std::string message;
};

// Either a value or an Error. Cheap on the success path; move-only types work.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Success, or an Error. Default-constructed Status is success.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *error_; }

 private:
  std::optional<Error> error_;
};

}  // namespace kalavara
