// Command-line conventions shared by both daemons' main(), and the
// configuration under the flags (docs/operations.md, "Configuration"):
// every option of the daemon itself may also be set by a KALAVARA_*
// environment variable or in a TOML file named by --config. A flag wins
// over a variable, a variable over the file, the file over the default.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace kalavara {

// Usage errors exit with this code, like most Unix tools.
inline constexpr int kUsageExit = 2;

// Adds --config FILE and --dump-config to `app` and parses argv into it.
// Then every top-level option the command line left unset is set from its
// variable (env_name in common/config_text.hpp: KALAVARA_DATA_DIR for
// --data-dir; a list's items separated by commas, a flag's value true, false,
// 1 or 0; an empty variable counts as unset), else from the file (--config,
// else KALAVARA_CONFIG), whose keys are the long option names. Such a value
// is converted and checked as on the command line, and a value that is
// overridden is not checked at all. required() of top-level options is
// checked once the variables and the file are in; needs() and excludes()
// are not checked against them (the daemons use neither).
//
// Returns the exit code to leave with when parsing ends the program: 0 after
// --help, --version, or --dump-config (which prints the configuration in
// effect as TOML that --config reads back on stdout); kUsageExit on a usage
// error, with the reason on stderr: a bad value (naming the variable, or the
// file and key, it came from), a key in the file that is no option, a key
// given twice, a [section]. Otherwise -1, to go on.
//
// A KALAVARA_* variable that names no option gets a warning on stderr,
// unless the project's scripts read it (is_script_variable). When a
// subcommand is given, neither variables nor file are read, so neither can
// change or break an admin command: a subcommand takes its options from its
// command line only; --config is then ignored with a note on stderr and
// --dump-config is a usage error.
int parse_command_line(CLI::App& app, int argc, char** argv);

}  // namespace kalavara
