#include "common/config_text.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include <CLI/CLI.hpp>

namespace kalavara {
namespace {

TEST(ConfigText, EnvNameIsThePrefixAndTheLongNameUpperCased) {
  EXPECT_EQ(env_name("port"), "KALAVARA_PORT");
  EXPECT_EQ(env_name("data-dir"), "KALAVARA_DATA_DIR");
  EXPECT_EQ(env_name("max-value-bytes"), "KALAVARA_MAX_VALUE_BYTES");
  EXPECT_EQ(env_name("block-cache-mib"), "KALAVARA_BLOCK_CACHE_MIB");
}

TEST(ConfigText, ScriptVariablesAreKnownAndOptionsAreNot) {
  for (const auto* name :
       {"KALAVARA_JOBS", "KALAVARA_TEST_JOBS", "KALAVARA_DATA", "KALAVARA_FUZZ_TMP"}) {
    EXPECT_TRUE(is_script_variable(name)) << name;
  }
  for (const auto* name : {"KALAVARA_DATA_DIR", "KALAVARA_PORT", "KALAVARA_JOBSX", "KALAVARA_"}) {
    EXPECT_FALSE(is_script_variable(name)) << name;
  }
}

TEST(ConfigText, ListsAreCommaSeparatedWithBlanksAroundItemsDropped) {
  using List = std::vector<std::string>;
  EXPECT_EQ(split_list("http://a:6001").value(), List{"http://a:6001"});
  EXPECT_EQ(split_list("http://a:6001,http://b:6002").value(),
            (List{"http://a:6001", "http://b:6002"}));
  EXPECT_EQ(split_list(" /etc/k/new , \t/etc/k/old ").value(), (List{"/etc/k/new", "/etc/k/old"}));
  EXPECT_EQ(split_list("/a path/with spaces").value(), List{"/a path/with spaces"});
  for (const auto* bad : {"", " ", "a,,b", "a,", ",a", "a, ,b"}) {
    const auto items = split_list(bad);
    ASSERT_FALSE(items.ok()) << '"' << bad << '"';
    EXPECT_EQ(items.error().code, Errc::kBadInput);
  }
}

TEST(ConfigText, BooleansAreTrueFalseOneOrZero) {
  EXPECT_EQ(parse_bool("true"), true);
  EXPECT_EQ(parse_bool("1"), true);
  EXPECT_EQ(parse_bool("false"), false);
  EXPECT_EQ(parse_bool("0"), false);
  for (const auto* bad : {"", "yes", "no", "on", "TRUE", "2", " true", "truee"}) {
    EXPECT_EQ(parse_bool(bad), std::nullopt) << bad;
  }
}

TEST(ConfigText, TomlLinesQuoteTextAndLeaveNumbersAndBooleansBare) {
  EXPECT_EQ(toml_line("port", {"6000"}, false), "port = 6000");
  EXPECT_EQ(toml_line("sign-reads", {"false"}, false), "sign-reads = false");
  EXPECT_EQ(toml_line("bind", {"0.0.0.0"}, false), "bind = \"0.0.0.0\"");
  EXPECT_EQ(toml_line("log-level", {"info"}, false), "log-level = \"info\"");
  EXPECT_EQ(toml_line("volumes", {"http://a:6001"}, true), "volumes = [\"http://a:6001\"]");
  EXPECT_EQ(toml_line("volumes", {"http://a:6001", "http://b:6002"}, true),
            "volumes = [\"http://a:6001\", \"http://b:6002\"]");
  EXPECT_EQ(toml_line("data-dir", {"/has \"quotes\""}, false), "data-dir = '/has \"quotes\"'");
  EXPECT_EQ(toml_line("data-dir", {"C:\\x"}, false), "data-dir = 'C:\\x'");
}

// What toml_line writes, CLI11's reader (the one --config uses) reads back.
TEST(ConfigText, CliElevenReadsTomlLinesBack) {
  const std::vector<std::pair<std::vector<std::string>, bool>> cases = {
      {{"6000"}, false},
      {{"true"}, false},
      {{"/var/lib/kalavara/index"}, false},
      {{"a path with spaces"}, false},
      {{"/has \"quotes\""}, false},
      {{"it's"}, false},
      {{"back\\slash"}, false},
      {{"http://a:6001"}, true},
      {{"http://a:6001", "http://b:6002", "http://c:6003"}, true},
      {{"/etc/kalavara/new", "/etc/kalavara/old secret"}, true},
  };
  for (const auto& [values, list] : cases) {
    const auto line = toml_line("key", values, list);
    std::istringstream input(line + "\n");
    const auto items = CLI::ConfigTOML().from_config(input);
    ASSERT_EQ(items.size(), 1U) << line;
    EXPECT_EQ(items[0].name, "key") << line;
    EXPECT_EQ(items[0].inputs, values) << line;
  }
}

}  // namespace
}  // namespace kalavara
