#include "common/url.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace kalavara {
namespace {

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool valid_hostname(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  return std::all_of(host.begin(), host.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_';
  });
}

bool valid_ipv6_literal(std::string_view inner) {
  if (inner.empty() || inner.size() > 45) return false;
  return std::all_of(inner.begin(), inner.end(),
                     [](unsigned char c) { return std::isxdigit(c) != 0 || c == ':' || c == '.'; });
}

// `text` as it may appear in a one-line reason: a control byte (a CR or LF
// would break the line, or forge a header where the reason is shown) is
// written as \xNN.
std::string quoted(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += ch;
    }
  }
  return out;
}

}  // namespace

Result<BaseUrl> parse_base_url(std::string_view text) {
  text = trim(text);
  constexpr std::string_view kScheme = "http://";
  if (text.size() < kScheme.size() || lower(text.substr(0, kScheme.size())) != kScheme) {
    return Error{Errc::kBadInput,
                 "volume URL must start with http:// (got '" + quoted(text) + "')"};
  }
  auto authority = text.substr(kScheme.size());
  if (!authority.empty() && authority.back() == '/') authority.remove_suffix(1);
  if (authority.find_first_of("/?#@") != std::string_view::npos) {
    return Error{Errc::kBadInput, "URL must be http://host:port with no path, query or user info"};
  }

  std::string_view host;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos || !valid_ipv6_literal(authority.substr(1, close - 1))) {
      return Error{Errc::kBadInput, "malformed IPv6 address in URL"};
    }
    host = authority.substr(0, close + 1);
    const auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return Error{Errc::kBadInput, "unexpected characters after IPv6 address"};
      port_text = rest.substr(1);
      if (port_text.empty()) return Error{Errc::kBadInput, "URL has an empty port"};
    }
  } else {
    const auto colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return Error{Errc::kBadInput, "URL has an empty port"};
    }
    if (!valid_hostname(host)) return Error{Errc::kBadInput, "URL has an empty or invalid host"};
  }

  unsigned port = 80;
  if (!port_text.empty()) {
    const auto* end = port_text.data() + port_text.size();
    const auto [ptr, ec] = std::from_chars(port_text.data(), end, port);
    if (ec != std::errc{} || ptr != end || port == 0 || port > 65535) {
      return Error{Errc::kBadInput, "URL port must be a number from 1 to 65535"};
    }
  }

  BaseUrl url{lower(host), static_cast<std::uint16_t>(port), {}};
  url.text = "http://" + url.host + ":" + std::to_string(port);
  return url;
}

}  // namespace kalavara
