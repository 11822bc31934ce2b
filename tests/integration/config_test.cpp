// The configuration under the flags (docs/operations.md, "Configuration"):
// KALAVARA_* variables and a --config TOML file, in the order flag >
// variable > file > default, seen through --dump-config (which starts
// nothing) and through daemons configured by a file and variables alone; the
// example files in packaging/ against the options the binaries have; and
// subcommands, which read neither.
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "harness.hpp"

namespace kalavara::it {
namespace {

// This process's environment without its KALAVARA_* variables (a
// developer's own must not reach the daemons under test), plus `extra`.
std::vector<std::string> environment_with(const std::vector<std::string>& extra) {
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (!std::string_view(*entry).starts_with("KALAVARA_")) environment.emplace_back(*entry);
  }
  environment.insert(environment.end(), extra.begin(), extra.end());
  return environment;
}

struct Run {
  std::optional<ExitStatus> exit;
  std::string out;
  std::string err;
  std::string describe() const {
    return (exit ? exit->describe() : std::string("still running")) + "\n--- stdout ---\n" + out +
           "\n--- stderr ---\n" + err;
  }
  bool usage_error() const { return exit && exit->exited && exit->code == 2; }
};

// Runs `binary` with `args` and the variables `variables` (and no others of
// KALAVARA_*) to its end.
Run run(const TempDir& tmp, const std::string& binary, const std::vector<std::string>& args,
        const std::vector<std::string>& variables = {}) {
  std::vector<std::string> argv{binary};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto out = tmp.new_scratch_path("stdout");
  const auto err = tmp.new_scratch_path("stderr");
  std::string error;
  const pid_t pid = spawn_process(argv, out, err, error, environment_with(variables));
  Run result;
  if (pid < 0) {
    result.err = error;
    return result;
  }
  result.exit = wait_process(pid, 60s);
  if (!result.exit) {
    ::kill(pid, SIGKILL);
    wait_process(pid, 10s);
  }
  result.out = read_file(out);
  result.err = read_file(err);
  return result;
}

// The settings of a --dump-config: key -> value as written ("6000",
// "\"info\"", "[\"http://a:6001\"]"), and "unset" for an option without one.
using Dump = std::map<std::string, std::string>;
Dump parse_dump(const std::string& text) {
  Dump dump;
  std::istringstream lines(text);
  constexpr std::string_view kUnset = " is not set";
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("# ") && line.ends_with(kUnset)) {
      dump[line.substr(2, line.size() - 2 - kUnset.size())] = "unset";
    } else if (const auto equals = line.find(" = ");
               !line.starts_with("#") && equals != line.npos) {
      dump[line.substr(0, equals)] = line.substr(equals + 3);
    }
  }
  return dump;
}

// --dump-config of `binary`, which must succeed.
Dump dump_of(const TempDir& tmp, const std::string& binary, std::vector<std::string> args,
             const std::vector<std::string>& variables = {}) {
  args.emplace_back("--dump-config");
  const auto result = run(tmp, binary, args, variables);
  EXPECT_TRUE(result.exit && result.exit->clean()) << result.describe();
  return parse_dump(result.out);
}

fs::path write_config(const TempDir& tmp, const std::string& text) {
  const auto path = tmp.new_scratch_path("config") += ".toml";
  write_file(path, text);
  return path;
}

// A file that exists, for the options checked to name one.
fs::path existing_file(const TempDir& tmp, const std::string& tag) {
  const auto path = tmp.new_scratch_path(tag);
  write_file(path, "x");
  return path;
}

struct Binary {
  std::string name;
  std::string path;
  std::vector<std::string> required;  // what it cannot go without
};

std::vector<Binary> binaries(const TempDir& tmp) {
  return {{"master", master_binary(), {}},
          {"volume", volume_binary(), {"--data-dir", tmp.subdir("data").string()}}};
}

TEST(Config, FlagWinsOverVariableWhichWinsOverFileWhichWinsOverDefault) {
  TempDir tmp;
  const auto file = write_config(tmp,
                                 "port = 1111\n"
                                 "max-connections = 100\n"
                                 "bind = \"10.0.0.1\"\n"
                                 "log-level = \"warn\"\n");
  for (const auto& binary : binaries(tmp)) {
    SCOPED_TRACE(binary.name);
    const auto defaults = dump_of(tmp, binary.path, binary.required);
    EXPECT_NE(defaults.at("port"), "1111");
    auto args = binary.required;
    args.insert(args.end(), {"--config", file.string(), "--port", "3333", "--log-level", "error"});
    const auto dump =
        dump_of(tmp, binary.path, args, {"KALAVARA_PORT=2222", "KALAVARA_MAX_CONNECTIONS=200"});
    EXPECT_EQ(dump.at("port"), "3333") << "flag > variable > file";
    EXPECT_EQ(dump.at("max-connections"), "200") << "variable > file";
    EXPECT_EQ(dump.at("bind"), "\"10.0.0.1\"") << "file > default";
    EXPECT_EQ(dump.at("log-level"), "\"error\"") << "flag > file";
    EXPECT_EQ(dump.at("token-ttl"), defaults.at("token-ttl")) << "the default, set nowhere";
    EXPECT_EQ(dump.at("token-ttl"), "60");
    // The variable over the default, and a flag over the variable.
    EXPECT_EQ(dump_of(tmp, binary.path, binary.required, {"KALAVARA_PORT=2222"}).at("port"),
              "2222");
    EXPECT_EQ(dump_of(tmp, binary.path, binary.required, {"KALAVARA_PORT="}).at("port"),
              defaults.at("port"))
        << "an empty variable is unset";
    args = binary.required;
    args.insert(args.end(), {"-p", "3333"});
    EXPECT_EQ(dump_of(tmp, binary.path, args, {"KALAVARA_PORT=2222"}).at("port"), "3333");
  }
  // A required option may come from the file or a variable.
  const auto data = tmp.subdir("data").string();
  const auto volume_file = write_config(tmp, "data-dir = \"" + data + "\"\n");
  EXPECT_EQ(dump_of(tmp, volume_binary(), {"--config", volume_file.string()}).at("data-dir"),
            "\"" + data + "\"");
  EXPECT_EQ(dump_of(tmp, volume_binary(), {}, {"KALAVARA_DATA_DIR=" + data}).at("data-dir"),
            "\"" + data + "\"");
  const auto missing = run(tmp, volume_binary(), {"--dump-config"});
  EXPECT_TRUE(missing.usage_error()) << missing.describe();
  EXPECT_NE(missing.err.find("--data-dir is required"), std::string::npos) << missing.describe();
  // The file may also be named by KALAVARA_CONFIG, and --config wins over it.
  EXPECT_EQ(dump_of(tmp, master_binary(), {}, {"KALAVARA_CONFIG=" + file.string()}).at("port"),
            "1111");
  const auto other = write_config(tmp, "port = 4444\n");
  EXPECT_EQ(dump_of(tmp, master_binary(), {"--config", other.string()},
                    {"KALAVARA_CONFIG=" + file.string()})
                .at("port"),
            "4444");
}

TEST(Config, ListsComeWholeFromOneSource) {
  TempDir tmp;
  const auto file = write_config(tmp,
                                 "volumes = [\"http://a:6001\",\n"
                                 "           \"http://b:6002\"]\n");
  const auto dump = [&](std::vector<std::string> args, const std::vector<std::string>& variables) {
    return dump_of(tmp, master_binary(), std::move(args), variables).at("volumes");
  };
  EXPECT_EQ(dump({}, {}), "unset");
  EXPECT_EQ(dump({"--config", file.string()}, {}), R"(["http://a:6001", "http://b:6002"])");
  EXPECT_EQ(dump({"--config", file.string()}, {"KALAVARA_VOLUMES=http://c:6003, http://d:6004"}),
            R"(["http://c:6003", "http://d:6004"])")
      << "the variable's list replaces the file's";
  EXPECT_EQ(dump({"--config", file.string(), "-v", "http://e:6005", "--volumes", "http://f:6006"},
                 {"KALAVARA_VOLUMES=http://c:6003"}),
            R"(["http://e:6005", "http://f:6006"])")
      << "the flags' list replaces both";
  EXPECT_EQ(dump({}, {"KALAVARA_VOLUMES=http://c:6003"}), R"(["http://c:6003"])");

  // --secret-file twice (a rotation), from each source; one item alone
  // may be a plain string in the file.
  const auto first = existing_file(tmp, "secret-new").string();
  const auto second = existing_file(tmp, "secret-old").string();
  const auto both = "[\"" + first + "\", \"" + second + "\"]";
  const auto secrets = write_config(tmp, "secret-file = \"" + first + "\"\n");
  for (const auto& binary : binaries(tmp)) {
    SCOPED_TRACE(binary.name);
    auto args = binary.required;
    args.insert(args.end(), {"--config", secrets.string()});
    EXPECT_EQ(dump_of(tmp, binary.path, args).at("secret-file"), "[\"" + first + "\"]");
    EXPECT_EQ(dump_of(tmp, binary.path, args, {"KALAVARA_SECRET_FILE=" + first + "," + second})
                  .at("secret-file"),
              both);
    args.insert(args.end(), {"--secret-file", first, "--secret-file", second});
    EXPECT_EQ(dump_of(tmp, binary.path, args, {"KALAVARA_SECRET_FILE=" + second}).at("secret-file"),
              both);
  }
}

TEST(Config, FlagsTakeTrueFalseOneOrZero) {
  TempDir tmp;
  const auto on = write_config(tmp, "sign-reads = true\n");
  const auto dump = [&](std::vector<std::string> args, const std::vector<std::string>& variables) {
    return dump_of(tmp, master_binary(), std::move(args), variables).at("sign-reads");
  };
  EXPECT_EQ(dump({}, {}), "false");
  EXPECT_EQ(dump({"--config", on.string()}, {}), "true");
  EXPECT_EQ(dump({}, {"KALAVARA_SIGN_READS=1"}), "true");
  EXPECT_EQ(dump({}, {"KALAVARA_SIGN_READS=true"}), "true");
  EXPECT_EQ(dump({"--config", on.string()}, {"KALAVARA_SIGN_READS=0"}), "false");
  EXPECT_EQ(dump({"--config", on.string()}, {"KALAVARA_SIGN_READS=false"}), "false");
  EXPECT_EQ(dump({"--sign-reads"}, {"KALAVARA_SIGN_READS=0"}), "true");
}

TEST(Config, BadValuesAreUsageErrorsNamingWhereTheyCameFrom) {
  TempDir tmp;
  struct Case {
    std::vector<std::string> variables;
    std::string file;    // the config file's text, if any
    std::string reason;  // in stderr; the file's path is too
  };
  const std::vector<Case> cases = {
      {{"KALAVARA_PORT=abc"}, "", "KALAVARA_PORT=abc"},
      {{"KALAVARA_PORT=70000"}, "", "KALAVARA_PORT=70000"},
      {{"KALAVARA_MAX_KEY_BYTES=5000"}, "", "KALAVARA_MAX_KEY_BYTES=5000"},
      {{"KALAVARA_MAX_VALUE_BYTES=lots"}, "", "KALAVARA_MAX_VALUE_BYTES=lots"},
      {{"KALAVARA_SIGN_READS=yes"}, "", "KALAVARA_SIGN_READS=yes"},
      {{"KALAVARA_SECRET_FILE=/no/such/secret"}, "", "KALAVARA_SECRET_FILE=/no/such/secret"},
      {{"KALAVARA_SECRET_FILE=a,,b"}, "", "KALAVARA_SECRET_FILE=a,,b"},
      {{"KALAVARA_CONFIG=/no/such.toml"}, "", "KALAVARA_CONFIG=/no/such.toml"},
      {{}, "port = \"abc\"\n", ": port"},
      {{}, "max-key-bytes = 5000\n", ": max-key-bytes"},
      {{}, "port = [6000, 6001]\n", ": port"},
      {{}, "header-timeout = 0\n", ": header-timeout"},
      {{}, "sign-reads = maybe\n", ": sign-reads"},
      {{}, "secret-file = [\"/no/such/secret\"]\n", ": secret-file"},
  };
  for (const auto& c : cases) {
    for (const auto& binary : binaries(tmp)) {
      SCOPED_TRACE(binary.name + ": " + c.reason);
      auto args = binary.required;
      std::string path;
      if (!c.file.empty()) {
        path = write_config(tmp, c.file).string();
        args.insert(args.end(), {"--config", path});
      }
      for (const bool dump : {false, true}) {
        auto full = args;
        if (dump) full.emplace_back("--dump-config");
        const auto result = run(tmp, binary.path, full, c.variables);
        EXPECT_TRUE(result.usage_error()) << result.describe();
        EXPECT_NE(result.err.find(path + c.reason), std::string::npos) << result.describe();
        EXPECT_EQ(result.out, "") << "nothing dumped, nothing started";
      }
    }
  }
  // A value that a flag overrides is not used, so not checked either.
  EXPECT_EQ(dump_of(tmp, master_binary(), {"--port", "1"}, {"KALAVARA_PORT=abc"}).at("port"), "1");
}

TEST(Config, KeysThatAreNoOptionAreUsageErrors) {
  TempDir tmp;
  struct Case {
    std::string file;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"prot = 6000\n", "\"prot\" is no option"},
      {"port = 6000\n# a comment\nbind = \"127.0.0.1\"\nprot = 6001\n", "\"prot\" is no option"},
      {"p = 6000\n", "\"p\" is no option"},
      {"config = \"/etc/kalavara/other.toml\"\n", "\"config\" is no option"},
      {"dump-config = true\n", "\"dump-config\" is no option"},
      {"help = true\n", "\"help\" is no option"},
      {"[rebuild]\nclean = true\n", "[rebuild]: the file has no sections"},
      {"port = 6000\nbind = \"127.0.0.1\"\nport = 6001\n", "port is set twice"},
      {"port = 6000\nmaster = \"http://127.0.0.1:1\"\n", "\"master\" is no option"},
  };
  for (const auto& c : cases) {
    const auto path = write_config(tmp, c.file).string();
    const auto result = run(tmp, master_binary(), {"--config", path, "--dump-config"});
    EXPECT_TRUE(result.usage_error()) << result.describe();
    EXPECT_NE(result.err.find(path + ": " + c.reason), std::string::npos) << result.describe();
  }
  const auto missing = run(tmp, master_binary(), {"--config", "/no/such.toml", "--dump-config"});
  EXPECT_TRUE(missing.usage_error()) << missing.describe();
  EXPECT_NE(missing.err.find("/no/such.toml"), std::string::npos) << missing.describe();
}

TEST(Config, UnknownVariablesAreWarnedOfAndTheScriptsOwnIgnored) {
  TempDir tmp;
  auto result = run(tmp, master_binary(), {"--dump-config"},
                    {"KALAVARA_PROT=6000", "KALAVARA_JOBS=2", "KALAVARA_TEST_JOBS=2",
                     "KALAVARA_DATA=data", "KALAVARA_FUZZ_TMP=/tmp"});
  EXPECT_TRUE(result.exit && result.exit->clean()) << result.describe();
  EXPECT_EQ(result.err, "kalavara-master: ignoring KALAVARA_PROT: it names none of its options\n");
  // An option of the other daemon is none of this one's.
  result = run(tmp, master_binary(), {"--dump-config"}, {"KALAVARA_BASE_URL=http://v:7000"});
  EXPECT_TRUE(result.exit && result.exit->clean()) << result.describe();
  EXPECT_NE(result.err.find("ignoring KALAVARA_BASE_URL"), std::string::npos) << result.describe();
}

TEST(Config, DumpReadsBackToTheSameDump) {
  TempDir tmp;
  const auto secret = existing_file(tmp, "secret").string();
  const auto token = existing_file(tmp, "token").string();
  const auto file = write_config(tmp,
                                 "volumes = [\"http://a:6001\", \"http://b:6002\"]\n"
                                 "max-value-bytes = \"64MiB\"\n"
                                 "advertise-url = \"http://master.example:6000\"\n");
  struct Case {
    std::string binary;
    std::vector<std::string> args;
    std::vector<std::string> variables;
  };
  const std::vector<Case> cases = {
      {master_binary(),
       {"--config", file.string(), "--sign-reads", "-d", tmp.subdir("index").string(),
        "--log-level", "debug"},
       {"KALAVARA_SECRET_FILE=" + secret + "," + secret, "KALAVARA_ADMIN_TOKEN_FILE=" + token,
        "KALAVARA_REPLICAS=2", "KALAVARA_THREADS=3"}},
      {master_binary(), {}, {}},
      {volume_binary(),
       {"-d", tmp.subdir("data with space").string(), "-m", "http://127.0.0.1:6000", "-b",
        "http://127.0.0.1:7001"},
       {"KALAVARA_SECRET_FILE=" + secret, "KALAVARA_MAX_HEADER_BYTES=32KiB",
        "KALAVARA_SIGN_READS=1"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.binary);
    auto args = c.args;
    args.emplace_back("--dump-config");
    const auto first = run(tmp, c.binary, args, c.variables);
    ASSERT_TRUE(first.exit && first.exit->clean()) << first.describe();
    const auto dumped = write_config(tmp, first.out);
    const auto second = run(tmp, c.binary, {"--config", dumped.string(), "--dump-config"});
    ASSERT_TRUE(second.exit && second.exit->clean()) << second.describe();
    EXPECT_EQ(second.out, first.out);
    EXPECT_EQ(second.err, "");
  }
}

// packaging/master.toml and packaging/volume.toml: every option the binary
// has, commented out (but data-dir), with its real default where it has one;
// and with every setting uncommented, a file --config takes.
TEST(Config, ExampleFilesHaveEveryOptionAndAreAccepted) {
  TempDir tmp;
  // The examples' production paths, made to exist under tmp.
  const auto etc = tmp.subdir("etc");
  write_file(etc / "secret", "x");
  write_file(etc / "admin-token", "x");
  for (const auto& binary : binaries(tmp)) {
    SCOPED_TRACE(binary.name);
    const auto defaults = dump_of(tmp, binary.path, binary.required);
    ASSERT_GT(defaults.size(), 15U) << "the dump names every option";
    const auto example_path = fs::path(KALAVARA_PACKAGING_DIR) / (binary.name + ".toml");
    const auto example = read_file(example_path);
    // Each setting's line, uncommented ("# port = 6000" -> "port = 6000").
    std::string uncommented;
    std::istringstream lines(example);
    for (std::string line; std::getline(lines, line);) {
      const auto equals = line.find(" = ");
      if (line.starts_with("# ") && equals != line.npos &&
          defaults.contains(line.substr(2, equals - 2))) {
        line = line.substr(2);
      }
      uncommented += line + "\n";
    }
    const auto settings = parse_dump(uncommented);
    for (const auto& [key, value] : defaults) {
      EXPECT_TRUE(settings.contains(key)) << example_path << " lacks a \"# " << key << " = \" line";
      // The thread count's default is the machine's; the example says so.
      // A required option has none.
      if (value == "unset" || key == "threads" || !settings.contains(key)) continue;
      if (std::find(binary.required.begin(), binary.required.end(), "--" + key) !=
          binary.required.end()) {
        continue;
      }
      EXPECT_EQ(settings.at(key), value) << key << ": the example's value is not its default";
    }
    for (const auto& [key, value] : settings) {
      EXPECT_TRUE(defaults.contains(key)) << example_path << ": " << key << " is no option";
    }
    // As installed it sets only what has no default and the daemon cannot
    // serve without, and is taken as it is.
    for (const auto& [key, value] : parse_dump(example)) {
      EXPECT_EQ(key, "data-dir") << example_path << " sets " << key;
    }
    const auto as_is = run(tmp, binary.path, {"--config", example_path.string(), "--dump-config"});
    EXPECT_TRUE(as_is.exit && as_is.exit->clean()) << as_is.describe();

    std::string accepted;
    for (std::size_t at = 0;;) {
      const auto next = uncommented.find("/etc/kalavara/", at);
      accepted += uncommented.substr(at, next - at);
      if (next == std::string::npos) break;
      accepted += etc.string() + "/";
      at = next + std::string_view("/etc/kalavara/").size();
    }
    const auto file = write_config(tmp, accepted);
    const auto result = run(tmp, binary.path, {"--config", file.string(), "--dump-config"});
    EXPECT_TRUE(result.exit && result.exit->clean()) << result.describe();
    EXPECT_EQ(result.err, "") << result.describe();
  }
}

TEST(Config, DaemonsRunOnAFileAndVariablesAlone) {
  TempDir tmp;
  const auto volume_port = pick_free_port();
  const auto volume_file = write_config(tmp, "data-dir = \"" + tmp.subdir("data").string() +
                                                 "\"\n"
                                                 "bind = \"127.0.0.1\"\n"
                                                 "max-value-bytes = \"1KiB\"\n");
  Daemon volume(
      "volume", volume_binary(), {}, tmp.new_log_path("volume"),
      environment_with({"KALAVARA_CONFIG=" + volume_file.string(),
                        "KALAVARA_PORT=" + std::to_string(volume_port), "KALAVARA_THREADS=2"}));
  ASSERT_TRUE(volume.wait_ready());
  EXPECT_EQ(volume.port(), volume_port);

  const auto master_port = pick_free_port();
  const auto master_file = write_config(tmp, "data-dir = \"" + tmp.subdir("index").string() +
                                                 "\"\n"
                                                 "bind = \"127.0.0.1\"\n"
                                                 "port = 1\n"
                                                 "volumes = [\"" +
                                                 volume.url() + "\"]\n");
  Daemon master("master", master_binary(), {"--config", master_file.string()},
                tmp.new_log_path("master"),
                environment_with({"KALAVARA_PORT=" + std::to_string(master_port)}));
  ASSERT_TRUE(master.wait_ready());
  EXPECT_EQ(master.port(), master_port) << "the variable, not the file's port 1";

  // The master knows the volume from its file; the volume refuses what is
  // past its file's limit.
  EXPECT_EQ(put_via_master(master_port, "/store/k", "value").second.status, 201);
  EXPECT_EQ(get_via_master(master_port, "/store/k").second.body, "value");
  EXPECT_EQ(put_via_master(master_port, "/store/big", std::string(2048, 'x')).second.status, 413);

  // Admin commands take only their own flags: a daemon's variables and
  // config file neither change nor break them.
  const std::vector<std::string> daemon_variables = {
      "KALAVARA_PORT=abc", "KALAVARA_CONFIG=/no/such.toml",
      "KALAVARA_DATA_DIR=" + tmp.subdir("index").string(), "KALAVARA_MASTER=http://127.0.0.1:1",
      "KALAVARA_ADMIN_TOKEN_FILE=/no/such/token"};
  auto jobs = run(tmp, master_binary(), {"jobs", "--master", master.url()}, daemon_variables);
  EXPECT_TRUE(jobs.exit && jobs.exit->clean()) << jobs.describe();
  const auto bad_file = write_config(tmp, "prot = 1\n");
  jobs = run(tmp, master_binary(),
             {"--config", bad_file.string(), "jobs", "--master", master.url()}, daemon_variables);
  EXPECT_TRUE(jobs.exit && jobs.exit->clean()) << jobs.describe();
  EXPECT_NE(jobs.err.find("--config is ignored"), std::string::npos) << jobs.describe();
  // A rebuild needs its own -d: KALAVARA_DATA_DIR does not give it one.
  const auto rebuild = run(tmp, master_binary(), {"rebuild", "-v", volume.url()}, daemon_variables);
  EXPECT_TRUE(rebuild.usage_error()) << rebuild.describe();
  EXPECT_NE(rebuild.err.find("--data-dir is required"), std::string::npos) << rebuild.describe();
  const auto dump = run(tmp, master_binary(), {"--dump-config", "jobs", "--master", master.url()});
  EXPECT_TRUE(dump.usage_error()) << dump.describe();
}

}  // namespace
}  // namespace kalavara::it
