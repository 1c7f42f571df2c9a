// `stratus`: the Stratus command-line client. Wiring only — see cli/cli_app.h.
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "cli/cli_app.h"
#include "cli/config.h"

int main(int argc, char** argv) {
  stratus::cli::CliEnvironment env;
  env.config_path = stratus::cli::ConfigPath(std::getenv("STRATUS_CONFIG"), std::getenv("HOME"));
  if (const char* token = std::getenv("STRATUS_TOKEN")) env.token = token;
  env.stderr_is_tty = ::isatty(STDERR_FILENO) == 1;
  std::vector<std::string> args(argv + 1, argv + argc);
  return stratus::cli::RunCli(args, env, std::cout, std::cerr);
}
