#include "common/url.hpp"

#include <gtest/gtest.h>

namespace kalavara {
namespace {

TEST(ParseBaseUrl, AcceptsAndCanonicalises) {
  EXPECT_EQ(parse_base_url("http://127.0.0.1:6001").value().text, "http://127.0.0.1:6001");
  EXPECT_EQ(parse_base_url("  http://127.0.0.1:6001/\n").value().text, "http://127.0.0.1:6001");
  EXPECT_EQ(parse_base_url("HTTP://Volume.Example:7000").value().text,
            "http://volume.example:7000");
  auto no_port = parse_base_url("http://newvolume.server");
  ASSERT_TRUE(no_port.ok());
  EXPECT_EQ(no_port->port, 80);
  EXPECT_EQ(no_port->text, "http://newvolume.server:80");
  auto v6 = parse_base_url("http://[::1]:6001");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "[::1]");
  EXPECT_EQ(v6->port, 6001);
}

TEST(ParseBaseUrl, RejectsAnythingElseWith400) {
  for (const auto* bad :
       {"", "   ", "127.0.0.1:6001", "ftp://h:1", "http://", "http://h:1/path", "http://h:1//",
        "http://h:1?x", "http://u@h:1", "http://h:0", "http://h:65536", "http://h:", "http://h:x",
        "http://h h:1", "http://[::1", "http://[zz]:1", "not a url"}) {
    auto url = parse_base_url(bad);
    ASSERT_FALSE(url.ok()) << bad;
    EXPECT_EQ(url.error().code, Errc::kBadInput) << bad;
  }
}

// The reason is one line: what was given is echoed with its control bytes
// escaped, so a CR/LF from a query value cannot forge a line.
TEST(ParseBaseUrl, EchoesNoControlBytesInItsReason) {
  auto url = parse_base_url("evil\r\nX-Injected: 1\x7f");
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(url.error().message,
            "volume URL must start with http:// (got 'evil\\x0d\\x0aX-Injected: 1\\x7f')");
}

}  // namespace
}  // namespace kalavara
