// Base URLs of daemons ("http://host:port"), as given on the command line, in
// /admin/add-volume bodies and in redirects. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace kalavara {

struct BaseUrl {
  std::string host;    // a DNS name, an IPv4 address, or an IPv6 address in brackets
  std::uint16_t port;  // 80 when the text had none
  std::string text;    // canonical form, always "http://host:port"

  bool operator==(const BaseUrl& other) const { return text == other.text; }
};

// Parses "http://host[:port]" after trimming surrounding whitespace. One
// trailing '/' is accepted and dropped; anything else after the authority
// (a path, a query, user info) and any other scheme fail with kBadInput and a
// one-line reason. The scheme and host are lower-cased.
Result<BaseUrl> parse_base_url(std::string_view text);

}  // namespace kalavara
