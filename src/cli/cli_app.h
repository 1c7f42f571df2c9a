// RunCli: the whole `stratus` command line — parse, load config and token, run the command,
// print `ERROR: (<code>) <message>` on failure and return the exit code (cli_error.h).
// stratus_main.cc only gathers the process environment and calls it; tests call it directly.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "core/clock.h"

namespace stratus::cli {

// What RunCli takes from the process environment.
struct CliEnvironment {
  std::string config_path;                // ConfigPath($STRATUS_CONFIG, $HOME)
  std::optional<std::string> token;       // $STRATUS_TOKEN
  bool stderr_is_tty = false;             // rewrite the progress line in place
  const Clock* clock = nullptr;           // null = system clock
  std::function<void(int64_t ms)> sleep;  // null = real sleep
  int64_t poll_interval_ms = 250;
};

// Runs `stratus <args...>` (`args` excludes the program name). Output goes to `out`, errors and
// progress to `err`. Returns the process exit code.
int RunCli(const std::vector<std::string>& args, const CliEnvironment& env, std::ostream& out,
           std::ostream& err);

}  // namespace stratus::cli
