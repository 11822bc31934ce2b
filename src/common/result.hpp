// Expected failures as values: a missing key, bad input, a full disk or a
// volume that is down are returned, never thrown. Exceptions are reserved for
// start-up errors and bugs.
//
// Errors carry a domain code, not an HTTP status: storage, the key protocol
// and the daemon-to-daemon calls say what went wrong, and only the HTTP edge
// (http::status_of in common/http_types.hpp) turns that into a status code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace kalavara {

enum class Errc : std::uint8_t {
  kBadInput,            // the request is malformed or names something invalid
  kNotFound,            // no such key, version or resource
  kConflict,            // conflicts with the current state (a version already stored)
  kPreconditionFailed,  // an If-Match / If-None-Match condition does not hold
  kUnauthorized,        // no credentials, or wrong ones, where they are required
  kForbidden,           // not allowed: a missing, forged or expired signature
  kTooLarge,            // a body past its limit
  kHeaderTooLarge,      // a header (or chunk extensions, trailers) past its limit
  kLengthRequired,      // the body's length must be declared up front
  kTimedOut,            // the client was too slow sending its request
  kNotImplemented,      // a feature of the protocol that is not supported
  kNoSpace,             // the disk is full
  kUnavailable,         // a peer could not be reached: the request was not delivered
  kNoAnswer,            // a request was delivered but no answer came: outcome unknown
  kPeerFailed,          // a peer answered with an error or something unexpected
  kInternal,            // an I/O error, corrupt data, or a bug
};

// An expected failure: what kind it is, and a one-line reason meant for the
// client ("key is longer than 1024 bytes").
struct Error {
  Errc code = Errc::kInternal;
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
