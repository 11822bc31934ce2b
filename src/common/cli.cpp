#include "common/cli.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/config_text.hpp"

namespace kalavara {

namespace {

constexpr const char* kConfigVariable = "KALAVARA_CONFIG";

using Settings = std::unordered_map<const CLI::Option*, std::vector<std::string>>;

// The options a variable or the file may set: the daemon's own, each by its
// long name; --help, --version, --config and --dump-config are not
// configurable.
std::vector<CLI::Option*> settable_options(CLI::App& app) {
  return app.get_options([](const CLI::Option* option) {
    return option->get_configurable() && !option->get_lnames().empty();
  });
}

const std::string& key_of(const CLI::Option& option) { return option.get_lnames().front(); }
bool is_flag(const CLI::Option& option) { return option.get_expected_min() == 0; }
bool is_list(const CLI::Option& option) { return option.get_items_expected_max() > 1; }

// Gives `option` the `values` that came from `source` (named in the error)
// and converts and checks them as CLI11 does a flag's.
void set_from(CLI::Option& option, std::vector<std::string> values, const std::string& source) {
  try {
    if (is_flag(option)) {
      const auto value = values.size() == 1 ? parse_bool(values.front()) : std::nullopt;
      if (!value) throw CLI::ConversionError("takes true or false (or 1 or 0)");
      option.add_result(*value ? "true" : "false");
    } else {
      option.add_result(std::move(values));
    }
    option.run_callback();
  } catch (const CLI::Error& e) {
    throw CLI::ValidationError(source, e.what());
  }
}

// The settings of the config file at `path`, by option. Throws a
// ConfigError when the file cannot be read, or holds a key that names no
// settable option, a key twice, or a section.
Settings read_config_file(CLI::App& app, const std::string& path) {
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_file(path);
  } catch (const CLI::Error& e) {
    throw CLI::ConfigError("--config " + path + ": " + e.what());
  }
  Settings settings;
  for (const auto& item : items) {
    if (!item.parents.empty()) {
      throw CLI::ConfigError(path + ": [" + item.parents.front() +
                             "]: the file has no sections; every key is a top-level option");
    }
    const CLI::Option* option = app.get_option_no_throw("--" + item.name);
    if (option == nullptr || !option->get_configurable() || key_of(*option) != item.name) {
      throw CLI::ConfigError(path + ": \"" + item.name +
                             "\" is no option this file can set (its keys are the long option "
                             "names --dump-config prints)");
    }
    if (!settings.emplace(option, item.inputs).second) {
      throw CLI::ConfigError(path + ": " + item.name + " is set twice");
    }
  }
  return settings;
}

// Gives every settable option the command line left unset its variable's
// value, else the file's; returns the variables that name an option.
std::set<std::string> set_unset_options(CLI::App& app, const Settings& file,
                                        const std::string& file_path) {
  std::set<std::string> variables;
  for (CLI::Option* option : settable_options(app)) {
    const auto variable = env_name(key_of(*option));
    variables.insert(variable);
    if (option->count() > 0) continue;
    const char* env = std::getenv(variable.c_str());
    if (env != nullptr && *env != '\0') {
      const auto source = variable + "=" + env;
      if (!is_list(*option)) {
        set_from(*option, {env}, source);
        continue;
      }
      auto items = split_list(env);
      if (!items) throw CLI::ValidationError(source, items.error().message);
      set_from(*option, std::move(items).value(), source);
    } else if (const auto setting = file.find(option); setting != file.end()) {
      set_from(*option, setting->second, file_path + ": " + key_of(*option));
    }
  }
  return variables;
}

void warn_of_unknown_variables(const std::set<std::string>& known, const std::string& daemon) {
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const std::string name(text.substr(0, text.find('=')));
    if (!name.starts_with("KALAVARA_") || known.contains(name) || name == kConfigVariable ||
        is_script_variable(name)) {
      continue;
    }
    std::fprintf(stderr, "%s: ignoring %s: it names none of its options\n", daemon.c_str(),
                 name.c_str());
  }
}

// The settable options as TOML, each with the value it has now: from the
// command line, a variable or the file, else its default. One without a
// value (and without a default) is a comment.
std::string effective_configuration(CLI::App& app, const std::string& daemon) {
  std::string out = "# " + daemon + ": the configuration in effect (--config reads it back)\n";
  for (const CLI::Option* option : settable_options(app)) {
    std::vector<std::string> values;
    if (option->count() > 0) {
      values = option->reduced_results();
    } else if (is_flag(*option)) {
      values = {"false"};
    } else if (!option->get_default_str().empty()) {
      values = {option->get_default_str()};
    }
    if (values.empty()) {
      out += "# " + key_of(*option) + " is not set\n";
    } else {
      out += toml_line(key_of(*option), values, is_list(*option)) + "\n";
    }
  }
  return out;
}

// CLI11 checks required() at the end of parse(), before a variable or the
// file could give the value; so the check is lifted for the settable options
// and made by check() once they have. Restores required() when destroyed,
// for the --help that may be printed then.
class DeferredRequirements {
 public:
  explicit DeferredRequirements(CLI::App& app) {
    for (CLI::Option* option : settable_options(app)) {
      if (!option->get_required()) continue;
      option->required(false);
      options_.push_back(option);
    }
  }
  ~DeferredRequirements() {
    for (CLI::Option* option : options_) option->required(true);
  }
  DeferredRequirements(const DeferredRequirements&) = delete;
  DeferredRequirements& operator=(const DeferredRequirements&) = delete;

  void check() const {
    for (const CLI::Option* option : options_) {
      if (option->count() == 0) throw CLI::RequiredError(option->get_name());
    }
  }

 private:
  std::vector<CLI::Option*> options_;
};

}  // namespace

int parse_command_line(CLI::App& app, int argc, char** argv) {
  std::string config_path;
  bool dump = false;
  auto* config = app.add_option("--config", config_path,
                                "TOML file of options (port = 6000); flags and KALAVARA_* "
                                "variables win over it")
                     ->check(CLI::ExistingFile)
                     ->configurable(false);
  app.add_flag("--dump-config", dump,
               "print the configuration in effect (flags, KALAVARA_* variables, --config file, "
               "defaults) as TOML, and exit")
      ->configurable(false);
  app.footer(
      "The options can also be set in the --config file, by their long names, or as KALAVARA_* "
      "variables (--data-dir: KALAVARA_DATA_DIR); a flag wins over a variable, a variable over "
      "the file. Subcommands read neither. See docs/operations.md, \"Configuration\".");
  const std::string daemon = std::filesystem::path(argc > 0 ? argv[0] : "").filename().string();
  try {
    DeferredRequirements requirements(app);
    app.parse(argc, argv);
    if (!app.get_subcommands().empty()) {
      if (dump) {
        throw CLI::ValidationError(
            "--dump-config", "shows the daemon's configuration: give it without a subcommand");
      }
      if (config->count() > 0) {
        std::fprintf(stderr, "%s: --config is ignored: a subcommand takes only its own flags\n",
                     daemon.c_str());
      }
      requirements.check();
      return -1;
    }
    const char* config_env = std::getenv(kConfigVariable);
    if (config->count() == 0 && config_env != nullptr && *config_env != '\0') {
      set_from(*config, {config_env}, std::string(kConfigVariable) + "=" + config_env);
    }
    const auto file = config_path.empty() ? Settings{} : read_config_file(app, config_path);
    const auto variables = set_unset_options(app, file, config_path);
    requirements.check();
    warn_of_unknown_variables(variables, daemon);
    if (dump) {
      std::fputs(effective_configuration(app, daemon).c_str(), stdout);
      return 0;
    }
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kUsageExit;
  }
  return -1;
}

}  // namespace kalavara
