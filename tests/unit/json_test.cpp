#include "common/json.hpp"

#include <gtest/gtest.h>

namespace kalavara {
namespace {

std::string json(std::string_view bytes) {
  std::string out;
  append_json_string(out, bytes);
  return out;
}

TEST(JsonString, EscapesWhatJsonNeeds) {
  EXPECT_EQ(json("plain/key"), "\"plain/key\"");
  EXPECT_EQ(json("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(json("\n\t\x01\x7f"), "\"\\u000a\\u0009\\u0001\\u007f\"");
  EXPECT_EQ(json(""), "\"\"");
}

TEST(JsonString, PassesValidUtf8Through) {
  EXPECT_EQ(json("\xC3\xA9t\xC3\xA9"), "\"\xC3\xA9t\xC3\xA9\"");
  EXPECT_EQ(json("\xE2\x82\xAC \xF0\x9F\x98\x80"), "\"\xE2\x82\xAC \xF0\x9F\x98\x80\"");
}

TEST(JsonString, EscapesBytesThatAreNotUtf8) {
  EXPECT_EQ(json("\xFF"), "\"\\u00ff\"");
  EXPECT_EQ(json("\xC3"), "\"\\u00c3\"");                        // truncated sequence
  EXPECT_EQ(json("\xC0\xAF"), "\"\\u00c0\\u00af\"");             // overlong '/'
  EXPECT_EQ(json("\xED\xA0\x80"), "\"\\u00ed\\u00a0\\u0080\"");  // a surrogate
}

}  // namespace
}  // namespace kalavara
