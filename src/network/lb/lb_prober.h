// LbProber: the load balancers' health probes. Each probe runs from inside the router namespace
// of its backend's VNET, so its source address is the gateway of the backend's subnet: the
// AzureLoadBalancer tag, which the default NSG rule AllowAzureLoadBalancerInBound lets in.
//
// A target is one probe of one backend. It starts Unknown (no new flows: a backend is sent
// traffic once it has answered; after a restart, Up: see SetTargets), becomes Up at its first
// success and Down after `threshold`
// consecutive failures; a Down target comes back Up at its next success. A TCP probe succeeds
// when the connection is accepted; an HTTP probe when `GET <requestPath>` answers with a status
// in the probe's ranges. Each probe waits at most min(interval, 5 s).
//
// The probes themselves run through a ProbeRunner (LinuxProbeRunner: sockets and cpp-httplib in
// the namespace; unit tests pass a fake). When targets change state, the listener is told which
// router namespaces to converge, after the prober's lock is released.
//
// Thread-safety: every method may be called from any thread; one thread of its own runs the
// probes (started by the first SetTargets, stopped by the destructor).
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/resource_id.h"
#include "core/status.h"
#include "network/ipv4.h"
#include "network/lb/load_balancer.h"

namespace stratus::network {

struct ProbeTarget {
  std::string netns;  // the router namespace it runs in
  std::string probe;  // the probe's id
  Ipv4 backend;
  LbProbe config;
  std::string Key() const;  // probe id (lower case) + "|" + backend
};

enum class ProbeHealth { kUnknown, kUp, kDown };
const char* ProbeHealthName(ProbeHealth h);  // "Unknown", "Up", "Down"

struct ProbeState {
  ProbeHealth health = ProbeHealth::kUnknown;
  int failures = 0;        // consecutive
  int64_t changed_ms = 0;  // when `health` last changed (0: never)
  int64_t last_probe_ms = 0;
  std::string last_error;  // of the last failed probe
};

// Runs one probe, blocking at most `timeout_ms`: OK when healthy, else why not.
class ProbeRunner {
 public:
  virtual ~ProbeRunner() = default;
  virtual Status Probe(const ProbeTarget& target, int timeout_ms) = 0;
};

// From a thread that joins the target's namespace: a TCP connect, or an HTTP GET.
class LinuxProbeRunner final : public ProbeRunner {
 public:
  Status Probe(const ProbeTarget& target, int timeout_ms) override;
};

class LbHealthListener {
 public:
  virtual ~LbHealthListener() = default;
  // Targets of router `netns` changed between Up and not Up.
  virtual void HealthChanged(const std::string& netns) = 0;
};

class LbProber {
 public:
  // `clock`, `runner` and `listener` outlive it.
  LbProber(Clock* clock, ProbeRunner* runner, LbHealthListener* listener)
      : clock_(clock), runner_(runner), listener_(listener) {}
  ~LbProber();

  // Replaces the targets of router `netns` (the state of those that stay is kept). New targets
  // start Unknown, or Up with `assume_up` (what a restarted daemon finds in the router).
  void SetTargets(const std::string& netns, const std::vector<ProbeTarget>& targets,
                  bool assume_up = false);
  // The state of target `key` (ProbeTarget::Key), nullopt when there is no such target.
  std::optional<ProbeState> State(const std::string& key) const;
  // Whether `key` should get new flows (Up).
  bool Up(const std::string& key) const;
  // Runs every target that is due now, once (the loop does this every 100 ms; tests call it).
  void RunDue();
  void Stop();

 private:
  struct Entry {
    ProbeTarget target;
    ProbeState state;
    int64_t next_ms = 0;
  };
  void Loop();

  Clock* clock_;
  ProbeRunner* runner_;
  LbHealthListener* listener_;
  mutable std::mutex mu_;                 // guards entries_, started_, stop_
  std::map<std::string, Entry> entries_;  // by key
  bool started_ = false;
  bool stop_ = false;
  std::condition_variable cv_;
  std::thread thread_;
};

}  // namespace stratus::network
