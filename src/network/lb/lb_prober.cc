#include "network/lb/lb_prober.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace stratus::network {

std::string ProbeTarget::Key() const { return ToLower(probe) + "|" + backend.ToString(); }

const char* ProbeHealthName(ProbeHealth h) {
  switch (h) {
    case ProbeHealth::kUp:
      return "Up";
    case ProbeHealth::kDown:
      return "Down";
    default:
      return "Unknown";
  }
}

namespace {

// A TCP connection to the backend's port, accepted within `timeout_ms`.
Status TcpProbe(const ProbeTarget& t, int timeout_ms) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Internal(std::string("socket: ") + std::strerror(errno));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(t.config.port));
  sa.sin_addr.s_addr = htonl(t.backend.value);
  Status result = Status::Ok();
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    if (errno != EINPROGRESS) {
      result = Unavailable(std::string("connect: ") + std::strerror(errno));
    } else {
      pollfd p{fd, POLLOUT, 0};
      int n = ::poll(&p, 1, timeout_ms);
      int err = 0;
      socklen_t len = sizeof(err);
      if (n == 0) {
        result = Unavailable("no answer in " + std::to_string(timeout_ms) + " ms");
      } else if (n < 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        result = Unavailable(std::string("connect: ") + std::strerror(err != 0 ? err : errno));
      }
    }
  }
  ::close(fd);
  return result;
}

// GET requestPath over HTTP/1.1, answered with an expected status within `timeout_ms`.
Status HttpProbe(const ProbeTarget& t, int timeout_ms) {
  httplib::Client cli(t.backend.ToString(), t.config.port);
  auto to = std::chrono::milliseconds(timeout_ms);
  cli.set_connection_timeout(to);
  cli.set_read_timeout(to);
  cli.set_write_timeout(to);
  cli.set_keep_alive(false);
  auto res = cli.Get(t.config.request_path, {{"User-Agent", "Stratus-Load-Balancer-Probe/1.0"}});
  if (!res) return Unavailable("HTTP: " + httplib::to_string(res.error()));
  for (auto& [lo, hi] : t.config.expected_status)
    if (res->status >= lo && res->status <= hi) return Status::Ok();
  return Unavailable("HTTP status " + std::to_string(res->status));
}

}  // namespace

Status LinuxProbeRunner::Probe(const ProbeTarget& t, int timeout_ms) {
  // A thread of its own joins the namespace (a namespace is per thread), then probes.
  Status result = Status::Ok();
  std::thread th([&] {
    std::string path = "/run/netns/" + t.netns;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      result = Unavailable("cannot open namespace " + path + ": " + std::strerror(errno));
      return;
    }
    int rc = ::setns(fd, CLONE_NEWNET);
    int err = errno;
    ::close(fd);
    if (rc != 0) {
      result = Unavailable("cannot enter namespace " + t.netns + ": " + std::strerror(err));
      return;
    }
    result = t.config.protocol == "Http" ? HttpProbe(t, timeout_ms) : TcpProbe(t, timeout_ms);
  });
  th.join();
  return result;
}

LbProber::~LbProber() { Stop(); }

void LbProber::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LbProber::SetTargets(const std::string& netns, const std::vector<ProbeTarget>& targets,
                          bool assume_up) {
  std::lock_guard<std::mutex> l(mu_);
  std::set<std::string> keep;
  for (auto& t : targets) {
    std::string key = t.Key();
    keep.insert(key);
    auto it = entries_.find(key);
    if (it != entries_.end() && it->second.target.netns == netns &&
        it->second.target.config.port == t.config.port &&
        it->second.target.config.protocol == t.config.protocol &&
        it->second.target.config.request_path == t.config.request_path &&
        it->second.target.config.expected_status == t.config.expected_status) {
      it->second.target = t;  // interval or threshold: the state stands
      continue;
    }
    ProbeState fresh;  // new, or probing something else: from scratch
    if (assume_up) fresh.health = ProbeHealth::kUp;
    entries_[key] = Entry{t, fresh, 0};
  }
  for (auto it = entries_.begin(); it != entries_.end();)
    it = it->second.target.netns == netns && !keep.count(it->first) ? entries_.erase(it)
                                                                    : std::next(it);
  if (!started_ && !stop_ && !entries_.empty()) {
    started_ = true;
    thread_ = std::thread([this] { Loop(); });
  }
  cv_.notify_all();
}

std::optional<ProbeState> LbProber::State(const std::string& key) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second.state;
}

bool LbProber::Up(const std::string& key) const {
  auto s = State(key);
  return s && s->health == ProbeHealth::kUp;
}

void LbProber::RunDue() {
  std::vector<ProbeTarget> due;
  {
    std::lock_guard<std::mutex> l(mu_);
    int64_t now = clock_->MonotonicMs();
    for (auto& [key, e] : entries_)
      if (e.next_ms <= now) {
        due.push_back(e.target);
        e.next_ms = now + int64_t{e.target.config.interval_seconds} * 1000;
      }
  }
  if (due.empty()) return;
  // Side by side: a slow backend does not hold the others' probes up.
  std::vector<Status> results(due.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < due.size(); ++i)
    threads.emplace_back([&, i] {
      int timeout = std::min(5000, due[i].config.interval_seconds * 1000);
      results[i] = runner_->Probe(due[i], timeout);
    });
  for (auto& t : threads) t.join();
  std::set<std::string> changed;
  {
    std::lock_guard<std::mutex> l(mu_);
    int64_t now = clock_->NowMs();
    for (size_t i = 0; i < due.size(); ++i) {
      auto it = entries_.find(due[i].Key());
      if (it == entries_.end()) continue;  // removed meanwhile
      ProbeState& s = it->second.state;
      ProbeHealth was = s.health;
      s.last_probe_ms = now;
      if (results[i].ok()) {
        s.failures = 0;
        s.health = ProbeHealth::kUp;
      } else {
        s.last_error = results[i].message();
        ++s.failures;
        if (s.health == ProbeHealth::kUp && s.failures >= it->second.target.config.threshold)
          s.health = ProbeHealth::kDown;
        if (s.health == ProbeHealth::kUnknown && s.failures >= it->second.target.config.threshold)
          s.health = ProbeHealth::kDown;
      }
      if (s.health != was) {
        s.changed_ms = now;
        if ((was == ProbeHealth::kUp) != (s.health == ProbeHealth::kUp))
          changed.insert(it->second.target.netns);
      }
    }
  }
  for (auto& netns : changed) listener_->HealthChanged(netns);
}

void LbProber::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    l.unlock();
    RunDue();
    l.lock();
    cv_.wait_for(l, std::chrono::milliseconds(100), [&] { return stop_; });
  }
}

}  // namespace stratus::network
