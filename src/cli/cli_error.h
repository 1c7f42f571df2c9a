// Errors of the `stratus` CLI and the process exit code each one maps to.
//
// The API speaks `{"error":{"code","message","target"}}` with an HTTP status; the CLI prints
// `ERROR: (<code>) <message>` and exits with a code a script can branch on (see ExitCode).
// CliResult<T> / CliStatus carry either a value or a CliError, like core's Result<T>/Status, but
// keep the exit code, which an HTTP status alone cannot express (a Failed operation, a usage
// error).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "core/json.h"
#include "core/status.h"

namespace stratus::cli {

// Process exit codes. Part of the CLI's contract with scripts: do not renumber.
enum class ExitCode : int {
  kOk = 0,
  kLocalError = 1,       // config, token or input file problems on this machine
  kUsage = 2,            // bad command line (CLI11 parse errors and argument checks)
  kApiClientError = 3,   // 4xx from the API other than 404 and 409
  kNotFound = 4,         // 404 (ResourceNotFound, ResourceGroupNotFound, ...)
  kConflict = 5,         // 409 (Conflict, OperationNotAllowed, DiskAttached, ...)
  kUnavailable = 6,      // 5xx, or stratusd could not be reached
  kOperationFailed = 7,  // a long-running operation ended Failed or Canceled
};

class CliError {
 public:
  CliError(ExitCode exit_code, std::string code, std::string message, std::string target = {})
      : exit_code_(exit_code),
        code_(std::move(code)),
        message_(std::move(message)),
        target_(std::move(target)) {}

  ExitCode exit_code() const { return exit_code_; }
  // ARM-style error code, e.g. "ResourceNotFound".
  const std::string& code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& target() const { return target_; }
  // "ERROR: (<code>) <message>" — the line printed to stderr.
  std::string ToString() const;

 private:
  ExitCode exit_code_;
  std::string code_;
  std::string message_;
  std::string target_;
};

// A malformed command line detected after parsing (exit 2).
CliError UsageError(std::string message, std::string target = {});
// A local failure (config, token, input file) from a core Status (exit 1).
CliError LocalError(const Status& status);
// Exit code for an HTTP status returned by the API.
ExitCode ExitCodeForHttpStatus(int http_status);
// The error for a non-2xx API response. `body` is the raw response body; when it is not an ARM
// error document the code is derived from the HTTP status and `request` ("GET /path") is named.
CliError ErrorFromHttpResponse(int http_status, const std::string& body,
                               const std::string& request);
// stratusd did not answer at `endpoint`; `detail` says why (e.g. "Connection").
CliError UnreachableError(const std::string& endpoint, const std::string& detail);
// A long-running operation ended Failed/Canceled; uses the operation's `error` when present.
CliError OperationFailedError(const Json& operation);

// Either a T or a CliError.
template <typename T>
class CliResult {
 public:
  CliResult(T value) : v_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  CliResult(CliError error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  const CliError& error() const { return std::get<CliError>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, CliError> v_;
};

// Success, or a CliError.
class CliStatus {
 public:
  CliStatus() = default;
  CliStatus(CliError error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  static CliStatus Ok() { return {}; }

  bool ok() const { return !error_.has_value(); }
  const CliError& error() const { return *error_; }

 private:
  std::optional<CliError> error_;
};

}  // namespace stratus::cli

// Return the CliError of a CliStatus/CliResult expression if it failed.
#define CLI_RETURN_IF_ERROR(expr)              \
  do {                                         \
    auto _cli_st = (expr);                     \
    if (!_cli_st.ok()) return _cli_st.error(); \
  } while (0)

// `CLI_ASSIGN_OR_RETURN(auto x, Foo());` for CliResult<T>.
#define CLI_ASSIGN_OR_RETURN(lhs, expr) \
  CLI_ASSIGN_OR_RETURN_IMPL(STRATUS_CONCAT(_cli_res_, __LINE__), lhs, expr)
#define CLI_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.error();              \
  lhs = std::move(tmp).value()
