// Context: what a CLI command runs with once the global options are resolved — the API client,
// the subscription and default location, the output format and --no-wait — plus the shared
// request/print patterns (show, list, write + wait + show).
#pragma once

#include <optional>
#include <ostream>
#include <string>

#include "cli/cli_error.h"
#include "cli/client.h"
#include "cli/output.h"

namespace stratus::cli {

class Context {
 public:
  // `client`, `out` and `err` are not owned and must outlive the Context.
  Context(ApiClient& client, std::string subscription, std::string location, OutputFormat format,
          bool no_wait, std::ostream& out, std::ostream& err)
      : client_(client),
        subscription_(std::move(subscription)),
        location_(std::move(location)),
        format_(format),
        no_wait_(no_wait),
        out_(out),
        err_(err) {}

  ApiClient& client() { return client_; }
  const std::string& subscription() const { return subscription_; }
  // Location for new resources when -l is not given.
  const std::string& location() const { return location_; }
  OutputFormat format() const { return format_; }
  bool no_wait() const { return no_wait_; }
  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }

  // GET `path` and print it as one resource.
  CliStatus Show(const std::string& path, const TableSpec& spec);
  // GET the collection at `path` (all pages) and print it.
  CliStatus List(const std::string& path, const TableSpec& spec);

  // How a write ended.
  struct WriteOutcome {
    ApiResponse response;
    // The final operation body when the write started an operation and it was waited for.
    std::optional<Json> operation;
    // True when --no-wait left an operation running (its id/url has been printed).
    bool pending = false;
  };
  // What Write does when the operation it waited for ends Failed or Canceled.
  enum class OnOperationFailure {
    kError,         // return OperationFailedError (exit 7)
    kReturnResult,  // return the outcome with the failed operation's body, for the caller to report
  };
  // Sends a write (PUT/PATCH/POST/DELETE). If the response names an operation
  // (`Azure-AsyncOperation`): with --no-wait prints the operation's id and url and returns
  // pending; otherwise waits for it (progress on stderr; Failed -> exit 7 unless
  // `on_failure` says otherwise).
  CliResult<WriteOutcome> Write(const std::string& method, const std::string& path,
                                const Json* body,
                                OnOperationFailure on_failure = OnOperationFailure::kError);
  // Write, then print the resource at `show_path` (unless the operation is left pending): the
  // response body if the write answered at once with the resource, else a fresh GET.
  CliStatus WriteAndShow(const std::string& method, const std::string& path, const Json* body,
                         const std::string& show_path, const TableSpec& spec);

 private:
  ApiClient& client_;
  std::string subscription_;
  std::string location_;
  OutputFormat format_;
  bool no_wait_;
  std::ostream& out_;
  std::ostream& err_;
};

}  // namespace stratus::cli
