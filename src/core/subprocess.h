// Running host tools (qemu-img, mke2fs, ...) without a shell.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace stratus {

struct ProcessResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs argv[0] (looked up in PATH) with the given arguments, waits, and captures output.
// Fails only if the program cannot be started; a non-zero exit is reported in the result.
Result<ProcessResult> RunProcess(const std::vector<std::string>& argv);

// RunProcess, turning a non-zero exit into an Internal error naming the command and its stderr.
Result<std::string> RunChecked(const std::vector<std::string>& argv);

}  // namespace stratus
