// ApiClient: the CLI's HTTP client for one stratusd endpoint (docs/api.md).
//
// Sends JSON requests with `Authorization: Bearer <token>`, turns non-2xx responses into
// CliErrors (see cli_error.h for the exit codes), follows `nextLink` on lists and polls
// long-running operations (`Azure-AsyncOperation`) to their end, reporting progress.
//
// Not thread-safe: one ApiClient per thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "cli/cli_error.h"
#include "core/clock.h"
#include "core/json.h"

namespace httplib {
class Client;
}

namespace stratus::cli {

// The one API version the CLI speaks; sent as `api-version` on every request.
inline constexpr const char* kApiVersion = "2026-11-01";

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// `path` with `params` appended as a URL-encoded query (after any query `path` already has).
std::string WithQuery(const std::string& path, const QueryParams& params);
// The path-and-query of `url` on the endpoint: "http://h:p/x?y" -> "/x?y"; a path is returned as
// is.
std::string PathOfUrl(const std::string& url);
// Percent-encodes everything but unreserved characters (RFC 3986).
std::string UrlEncode(const std::string& s);

struct ApiResponse {
  int status = 0;
  Json body;                    // null when the body was empty or not JSON
  std::string async_operation;  // `Azure-AsyncOperation` header, empty if none
};

// Renders the one-line progress report of an operation being waited for.
//
// On a TTY the line is rewritten in place (`\r`); otherwise a plain line is printed only when the
// operation, its status or its percentage changes.
class ProgressReporter {
 public:
  ProgressReporter(std::ostream* out, bool tty) : out_(out), tty_(tty) {}
  // Reports the latest poll of `operation` (its body), `elapsed_ms` after the wait started.
  void Update(const Json& operation, int64_t elapsed_ms);
  // Ends the report: clears the TTY line. Idempotent.
  void Finish();

 private:
  std::ostream* out_;  // not owned; null disables reporting
  bool tty_;
  bool line_open_ = false;
  std::string last_key_;
};

class ApiClient {
 public:
  struct Options {
    std::string endpoint;  // "http://127.0.0.1:8780"
    std::string token;
    std::string ca_file;  // trusted PEM for https ("" = the system's CAs)
    // Request/response log for --verbose; null = quiet. Never shows the token.
    std::ostream* log = nullptr;
    // Where operation progress goes (stderr); null = silent.
    std::ostream* progress = nullptr;
    bool progress_is_tty = false;
    const Clock* clock = nullptr;           // null = SystemClock::Default()
    std::function<void(int64_t ms)> sleep;  // null = std::this_thread::sleep_for
    int64_t poll_interval_ms = 250;
    int connect_timeout_s = 5;
    int read_timeout_s = 300;
  };

  explicit ApiClient(Options options);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  const std::string& endpoint() const { return options_.endpoint; }

  // Sends `method` to `path` (path and query; an absolute URL on the endpoint is accepted) with
  // `body` as JSON when non-null. 2xx -> the response; otherwise the API's error (exit 3/4/5/6),
  // or UnreachableError when no response came.
  CliResult<ApiResponse> Send(const std::string& method, const std::string& path,
                              const Json* body = nullptr);
  // PUT of the raw bytes of `file` to `path` (an upload, e.g. {image}/upload/disk), streamed
  // with its exact length. Errors as Send; a local file that cannot be read is a usage error.
  CliResult<ApiResponse> Upload(const std::string& path, const std::string& file);
  // GET returning the body.
  CliResult<Json> Get(const std::string& path);
  // GET of a collection, following `nextLink` until exhausted; the concatenated `value`s.
  CliResult<std::vector<Json>> ListAll(const std::string& path);

  // Polls the operation at `operation_url` every poll_interval_ms until it leaves InProgress,
  // reporting progress. Succeeded -> the final operation body; Failed/Canceled ->
  // OperationFailedError (exit 7); a failed poll -> that error.
  CliResult<Json> WaitForOperation(const std::string& operation_url);
  // As WaitForOperation, but returns the final body whatever the end status (Succeeded, Failed
  // or Canceled), for callers that report what a failed operation found (`backup vault verify`).
  // Errors: a failed poll, or a status the CLI does not know.
  CliResult<Json> WaitForOperationEnd(const std::string& operation_url);

 private:
  Options options_;
  std::unique_ptr<httplib::Client> http_;
};

}  // namespace stratus::cli
