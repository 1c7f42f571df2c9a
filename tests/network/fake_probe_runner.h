// A ProbeRunner for unit tests: every backend answers, unless the test says it is down.
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "network/lb/lb_prober.h"

namespace stratus::network {

class FakeProbeRunner final : public ProbeRunner {
 public:
  Status Probe(const ProbeTarget& target, int) override {
    std::lock_guard<std::mutex> l(mu_);
    ++probes_;
    if (down_.count(target.backend.ToString())) return Unavailable("connect: Connection refused");
    return Status::Ok();
  }
  void SetDown(const std::string& ip, bool down) {
    std::lock_guard<std::mutex> l(mu_);
    if (down)
      down_.insert(ip);
    else
      down_.erase(ip);
  }
  int probes() {
    std::lock_guard<std::mutex> l(mu_);
    return probes_;
  }

 private:
  std::mutex mu_;
  std::set<std::string> down_;
  int probes_ = 0;
};

}  // namespace stratus::network
