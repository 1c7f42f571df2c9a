#include "bench_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/fs.h"

namespace stratus::bench {

namespace {
std::atomic<bool> g_stop{false};
extern "C" void OnStopSignal(int) { g_stop.store(true); }

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// Value of "key=" in a "k=v k=v" line.
std::string Field(const std::string& line, const std::string& key) {
  std::string k = " " + key + "=";
  auto p = line.find(k);
  if (p == std::string::npos) return {};
  p += k.size();
  auto e = line.find_first_of(" \r\n", p);
  return line.substr(p, e == std::string::npos ? std::string::npos : e - p);
}
}  // namespace

void InstallStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

bool StopRequested() { return g_stop.load(); }

Status Interrupted() { return Unavailable("interrupted by a signal; cleaning up"); }

// ---------------------------------------------------------------------------------------------

std::string LoadAverage() {
  double l[3] = {0, 0, 0};
  if (getloadavg(l, 3) != 3) return "?";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", l[0], l[1], l[2]);
  return buf;
}

double Percentile(const std::vector<double>& sorted, double q) {
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

LatencySummary Summarize(std::vector<double>& samples) {
  LatencySummary s;
  s.count = samples.size();
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  double sum = 0;
  for (double v : samples) sum += v;
  s.mean_ms = sum / static_cast<double>(samples.size());
  s.p50_ms = Percentile(samples, 0.50);
  s.p95_ms = Percentile(samples, 0.95);
  s.p99_ms = Percentile(samples, 0.99);
  s.max_ms = samples.back();
  return s;
}

std::string FormatMs(double ms) {
  char buf[64];
  if (std::fabs(ms) >= 1000)
    std::snprintf(buf, sizeof buf, "%.2f s", ms / 1000);
  else if (std::fabs(ms) >= 100)
    std::snprintf(buf, sizeof buf, "%.0f ms", ms);
  else if (std::fabs(ms) >= 10)
    std::snprintf(buf, sizeof buf, "%.1f ms", ms);
  else
    std::snprintf(buf, sizeof buf, "%.2f ms", ms);
  return buf;
}

std::string FormatRate(double per_s) {
  char buf[64];
  if (per_s >= 100)
    std::snprintf(buf, sizeof buf, "%.0f", per_s);
  else
    std::snprintf(buf, sizeof buf, "%.1f", per_s);
  // Thousands separators.
  std::string s = buf;
  auto dot = s.find('.');
  std::string intpart = s.substr(0, dot);
  std::string frac = dot == std::string::npos ? "" : s.substr(dot);
  std::string out;
  for (size_t i = 0; i < intpart.size(); ++i) {
    if (i > 0 && (intpart.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(intpart[i]);
  }
  return out + frac + " /s";
}

std::string FormatRatio(double r) {
  char buf[64];
  if (!std::isfinite(r)) return "n/a";
  std::snprintf(buf, sizeof buf, r >= 10 ? "%.0f×" : "%.2f×", r);
  return buf;
}

std::string Table::Render() const {
  auto width = [](const std::string& s) {
    // Display width: count UTF-8 code points, not bytes.
    size_t w = 0;
    for (unsigned char c : s) w += (c & 0xC0) != 0x80;
    return w;
  };
  std::vector<size_t> w(header_.size(), 3);
  for (size_t i = 0; i < header_.size(); ++i) w[i] = std::max(w[i], width(header_[i]));
  for (auto& r : rows_)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], width(r[i]));
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out = "|";
    for (size_t i = 0; i < w.size(); ++i) {
      std::string c = i < cells.size() ? cells[i] : "";
      out += " " + c + std::string(w[i] - width(c), ' ') + " |";
    }
    return out + "\n";
  };
  std::string out = line(header_);
  out += "|";
  for (size_t i = 0; i < w.size(); ++i) out += std::string(w[i] + 2, '-') + "|";
  out += "\n";
  for (auto& r : rows_) out += line(r);
  return out;
}

// ---------------------------------------------------------------------------------------------

Result<std::unique_ptr<ScopedDir>> ScopedDir::Make(const std::string& parent,
                                                   const std::string& prefix) {
  std::string tmpl = JoinPath(parent, prefix + ".XXXXXX");
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    return Internal("cannot create a temporary directory '" + tmpl + "': " + std::strerror(errno));
  std::string path = std::filesystem::absolute(buf.data()).string();
  ::chmod(path.c_str(), 0755);
  return std::unique_ptr<ScopedDir>(new ScopedDir(path));
}

ScopedDir::~ScopedDir() {
  if (keep_) return;
  Status st = RemoveTree(path_);
  if (!st.ok()) std::fprintf(stderr, "bench: %s\n", st.ToString().c_str());
}

Status CheckTraversable(const std::string& dir) {
  std::filesystem::path p = std::filesystem::absolute(dir);
  for (; !p.empty() && p != p.root_path(); p = p.parent_path()) {
    struct stat st;
    if (::stat(p.c_str(), &st) == 0 && !(st.st_mode & S_IXOTH)) {
      char mode[16];
      std::snprintf(mode, sizeof mode, "%o", st.st_mode & 07777);
      return InvalidArgument("'" + p.string() + "' has mode " + mode +
                             "; QEMU cannot reach the VM files below it (chmod o+x).");
    }
  }
  return Status::Ok();
}

std::string TailOfFile(const std::string& path, size_t max_bytes) {
  auto s = ReadFile(path);
  if (!s.ok()) return "(cannot read " + path + ")";
  return s->size() > max_bytes ? s->substr(s->size() - max_bytes) : *s;
}

Result<Endpoint> ParseEndpointUrl(const std::string& url) {
  std::string u = url;
  if (u.rfind("http://", 0) == 0) u = u.substr(7);
  while (!u.empty() && u.back() == '/') u.pop_back();
  auto colon = u.rfind(':');
  if (colon == std::string::npos || u.find('/') != std::string::npos)
    return InvalidArgument("--endpoint must be http://host:port, not '" + url + "'");
  Endpoint ep;
  ep.host = u.substr(0, colon);
  ep.port = std::atoi(u.c_str() + colon + 1);
  if (ep.port <= 0) return InvalidArgument("--endpoint has no valid port: '" + url + "'");
  return ep;
}

Status CompleteEndpoint(Endpoint& ep) {
  if (!ep.token.empty() && ep.token[0] == '@') {
    ASSIGN_OR_RETURN(std::string t, ReadFile(ep.token.substr(1)));
    ep.token = Trim(t);
  }
  if (ep.token.empty()) return InvalidArgument("--token is required with --endpoint");
  if (ep.subscription.empty()) {
    ApiClient c(ep);
    HttpResult r = c.Get("/subscriptions");
    RETURN_IF_ERROR(Expect(r, 200, "GET /subscriptions"));
    auto j = Json::parse(r.body, nullptr, false);
    if (!j.is_object() || !j["value"].is_array() || j["value"].empty())
      return NotFound("the endpoint has no subscription; pass --subscription");
    ep.subscription = j["value"][0].value("subscriptionId", "");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------

Result<std::unique_ptr<Daemon>> Daemon::Start(const Options& opt) {
  std::unique_ptr<Daemon> d(new Daemon());
  d->data_ = JoinPath(opt.dir, "data");
  d->log_ = JoinPath(opt.dir, "stratusd.log");
  d->pid_file_ = JoinPath(opt.dir, "stratusd.pid");
  RETURN_IF_ERROR(CheckTraversable(opt.dir));
  if (::access(opt.binary.c_str(), X_OK) != 0)
    return NotFound("stratusd binary '" + opt.binary + "' is not executable");
  // The CLI config gets its own folder: stratusd makes the folder of --cli-config mode 0700,
  // which must not be an ancestor of the data dir (QEMU must traverse to the disks).
  std::vector<std::string> args = {opt.binary,
                                   "--data-dir", d->data_,
                                   "--listen", "127.0.0.1:0",
                                   "--cli-config", JoinPath(opt.dir, "cli/config.json")};
  if (!opt.platform_images.empty()) {
    args.push_back("--platform-images");
    args.push_back(std::filesystem::absolute(opt.platform_images).string());
  }
  for (auto& a : opt.extra_args) args.push_back(a);

  int log_fd = ::open(d->log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) return Internal("cannot create '" + d->log_ + "': " + std::strerror(errno));
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return Internal(std::string("fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // Own process group: a Ctrl-C on the terminal reaches the benchmark, which then deletes its
    // VMs through the daemon before stopping it.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) _exit(127);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::fprintf(stderr, "exec %s: %s\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  ::close(log_fd);
  d->pid_ = pid;
  WriteFileAtomic(d->pid_file_, std::to_string(pid) + "\n");

  // Wait for "stratusd ready region=.. port=.. subscription=.. token=<path>".
  auto deadline = Now() + std::chrono::seconds(90);
  for (;;) {
    if (StopRequested()) return Interrupted();
    int wst = 0;
    if (::waitpid(pid, &wst, WNOHANG) == pid) {
      d->pid_ = -1;
      return Internal("stratusd exited before it was ready; log " + d->log_ + ":\n" +
                      TailOfFile(d->log_));
    }
    auto text = ReadFile(d->log_);
    if (text.ok()) {
      auto p = text->find("stratusd ready ");
      if (p != std::string::npos && text->find('\n', p) != std::string::npos) {
        std::string line = " " + text->substr(p, text->find('\n', p) - p);
        d->ep_.port = std::atoi(Field(line, "port").c_str());
        d->ep_.subscription = Field(line, "subscription");
        d->ep_.region = Field(line, "region");
        std::string token_path = Field(line, "token");
        ASSIGN_OR_RETURN(std::string tok, ReadFile(token_path));
        d->ep_.token = Trim(tok);
        if (d->ep_.port <= 0 || d->ep_.subscription.empty() || d->ep_.token.empty())
          return Internal("cannot parse the ready line of stratusd: '" + line + "'");
        return d;
      }
    }
    if (Now() > deadline)
      return Unavailable("stratusd was not ready after 90 s; log " + d->log_ + ":\n" +
                         TailOfFile(d->log_));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Status Daemon::Stop() {
  if (pid_ <= 0) return Status::Ok();
  ::kill(pid_, SIGTERM);
  int wst = 0;
  for (int i = 0; i < 300; ++i) {
    if (::waitpid(pid_, &wst, WNOHANG) == pid_) {
      pid_ = -1;
      RemoveFile(pid_file_);
      return Status::Ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &wst, 0);
  pid_ = -1;
  RemoveFile(pid_file_);
  return Internal("stratusd did not stop within 15 s of SIGTERM; killed it");
}

Daemon::~Daemon() {
  Status st = Stop();
  if (!st.ok()) std::fprintf(stderr, "bench: %s\n", st.ToString().c_str());
}

// ---------------------------------------------------------------------------------------------

std::string HttpResult::Header(const std::string& name) const {
  for (auto& [k, v] : headers)
    if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
  return {};
}

ApiClient::ApiClient(const Endpoint& ep) : ep_(ep), cli_(ep.host, ep.port) {
  cli_.set_keep_alive(true);
  // Headers and body go out in separate writes; without TCP_NODELAY, Nagle + delayed ACK would
  // add ~40 ms to a request on the client side, which is not what we measure.
  cli_.set_tcp_nodelay(true);
  cli_.set_connection_timeout(10, 0);
  cli_.set_read_timeout(60, 0);
  cli_.set_write_timeout(60, 0);
  cli_.set_default_headers({{"Authorization", "Bearer " + ep.token}});
}

HttpResult ApiClient::Finish(const httplib::Result& r, TimePoint t0) {
  HttpResult out;
  out.ms = MsBetween(t0, Now());
  if (!r) {
    out.error = httplib::to_string(r.error());
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  out.headers = r->headers;
  return out;
}

HttpResult ApiClient::Get(const std::string& path) {
  auto t0 = Now();
  auto r = cli_.Get(path.c_str());
  return Finish(r, t0);
}

HttpResult ApiClient::Put(const std::string& path, const std::string& json) {
  auto t0 = Now();
  auto r = cli_.Put(path.c_str(), json, "application/json");
  return Finish(r, t0);
}

HttpResult ApiClient::Patch(const std::string& path, const std::string& json) {
  auto t0 = Now();
  auto r = cli_.Patch(path.c_str(), json, "application/json");
  return Finish(r, t0);
}

HttpResult ApiClient::Post(const std::string& path, const std::string& json) {
  auto t0 = Now();
  auto r = cli_.Post(path.c_str(), json, "application/json");
  return Finish(r, t0);
}

HttpResult ApiClient::Delete(const std::string& path) {
  auto t0 = Now();
  auto r = cli_.Delete(path.c_str());
  return Finish(r, t0);
}

std::string PathOfUrl(const std::string& url) {
  auto p = url.find("://");
  if (p == std::string::npos) return url;
  auto s = url.find('/', p + 3);
  return s == std::string::npos ? "/" : url.substr(s);
}

Status Expect(const HttpResult& r, int want, const std::string& what) {
  if (r.status == want) return Status::Ok();
  if (r.status == 0) return Unavailable(what + ": no response (" + r.error + ")");
  return Internal(what + ": HTTP " + std::to_string(r.status) + " (wanted " +
                  std::to_string(want) + "): " + r.body.substr(0, 600));
}

}  // namespace stratus::bench
