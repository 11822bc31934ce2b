// Command-line conventions shared by both daemons' main().
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace kalavara {

// Usage errors exit with this code, like most Unix tools.
inline constexpr int kUsageExit = 2;

// Parses argv into `app`; returns the exit code to leave with when parsing
// ends the program (0 after --help or --version, kUsageExit on a usage
// error, with the reason on stderr), or -1 to go on.
inline int parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
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
