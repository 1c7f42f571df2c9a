// Shared pieces of the Stratus benchmarks: a stratusd launcher, an authenticated API client,
// latency statistics and Markdown tables. Not a library of the product; used by bench/ only.
//
// Error policy: functions return Status/Result like the rest of Stratus; a benchmark's main()
// prints the failure and exits non-zero after its RAII guards have cleaned up.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace stratus::bench {

// ---------------------------------------------------------------------------------------------
// Time

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;

inline TimePoint Now() { return SteadyClock::now(); }
inline double MsBetween(TimePoint a, TimePoint b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// ---------------------------------------------------------------------------------------------
// Stop requests (SIGINT/SIGTERM). Long loops poll StopRequested() and return Interrupted().

void InstallStopHandlers();
bool StopRequested();
Status Interrupted();

// ---------------------------------------------------------------------------------------------
// Statistics

struct LatencySummary {
  size_t count = 0;
  double mean_ms = 0, p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;
};

// "0.52 1.03 2.10" (1, 5, 15 min), or "?".
std::string LoadAverage();
// Nearest-rank percentiles of `samples_ms` (the vector is sorted in place).
LatencySummary Summarize(std::vector<double>& samples_ms);
// "0.52 1.03 2.10" (1, 5, 15 min), or "?".
std::string LoadAverage();
// Nearest-rank percentile (0 < q <= 1) of an already sorted, non-empty vector.
double Percentile(const std::vector<double>& sorted, double q);

// ---------------------------------------------------------------------------------------------
// Formatting

std::string FormatMs(double ms);       // "0.84 ms", "12.3 ms", "1.92 s"
std::string FormatRate(double per_s);  // "1,234 /s"
std::string FormatRatio(double r);     // "0.42×"

// A Markdown table; Print() pads the columns so it also reads well in a terminal.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// ---------------------------------------------------------------------------------------------
// Files and processes

// A directory made with mkdtemp under `parent` (which must exist), mode 0755 so QEMU's
// unprivileged user can traverse it; removed with its content on destruction unless Keep().
class ScopedDir {
 public:
  static Result<std::unique_ptr<ScopedDir>> Make(const std::string& parent,
                                                 const std::string& prefix);
  ~ScopedDir();
  const std::string& path() const { return path_; }
  void Keep() { keep_ = true; }

 private:
  explicit ScopedDir(std::string p) : path_(std::move(p)) {}
  std::string path_;
  bool keep_ = false;
};

// Every folder from `dir` up to / must be o+x for QEMU; names the first one that is not.
Status CheckTraversable(const std::string& dir);

// Where to reach a stratusd and as whom.
struct Endpoint {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string token;
  std::string subscription;
  std::string region;  // "" = unknown (request bodies then omit "location")
};

// Parses "http://host:port" (no path).
Result<Endpoint> ParseEndpointUrl(const std::string& url);
// Completes an endpoint given on the command line: reads "@file" tokens, finds the first
// subscription when none was given.
Status CompleteEndpoint(Endpoint& ep);

// A stratusd child process with its own data dir. Its stdout+stderr go to `<dir>/stratusd.log`
// and its pid to `<dir>/stratusd.pid` (so an outer script can kill it if this process dies);
// the child also gets SIGTERM if this process dies (PR_SET_PDEATHSIG). Stop() (or the
// destructor) sends SIGTERM and waits up to 15 s, then SIGKILL.
class Daemon {
 public:
  struct Options {
    std::string binary;           // path to stratusd
    std::string dir;              // working dir: data/, cli/, stratusd.log, stratusd.pid
    std::string platform_images;  // "" = stratusd's default
    std::vector<std::string> extra_args;
  };
  static Result<std::unique_ptr<Daemon>> Start(const Options& opt);
  ~Daemon();
  Status Stop();
  const Endpoint& endpoint() const { return ep_; }
  const std::string& log_path() const { return log_; }
  const std::string& data_dir() const { return data_; }

 private:
  Daemon() = default;
  int pid_ = -1;
  Endpoint ep_;
  std::string log_;
  std::string data_;
  std::string pid_file_;
};

// Last `max_bytes` of a file, for error messages.
std::string TailOfFile(const std::string& path, size_t max_bytes = 2000);

// ---------------------------------------------------------------------------------------------
// HTTP

struct HttpResult {
  int status = 0;  // 0 = transport error
  std::string body;
  httplib::Headers headers;
  double ms = 0;  // wall time of the request
  std::string error;  // transport error text when status == 0
  std::string Header(const std::string& name) const;
};

// One keep-alive connection to a stratusd with the bearer token set. Not thread-safe: one per
// thread.
class ApiClient {
 public:
  explicit ApiClient(const Endpoint& ep);
  HttpResult Get(const std::string& path);
  HttpResult Put(const std::string& path, const std::string& json);
  HttpResult Patch(const std::string& path, const std::string& json);
  HttpResult Post(const std::string& path, const std::string& json);
  HttpResult Delete(const std::string& path);
  // "/subscriptions/{sub}"
  std::string SubPath() const { return "/subscriptions/" + ep_.subscription; }

 private:
  HttpResult Finish(const httplib::Result& r, TimePoint t0);
  Endpoint ep_;
  httplib::Client cli_;
};

// "http://h:p/x/y" -> "/x/y"; a path stays as it is.
std::string PathOfUrl(const std::string& url);

// Status naming the request when `r` is not `want`.
Status Expect(const HttpResult& r, int want, const std::string& what);

}  // namespace stratus::bench
