// FakeNetworkEngine: a NetworkEngine that keeps the datapath it was asked for in memory, so
// provider and service tests can check what the host would have (which VNETs, subnets, DHCP
// hosts) without touching the kernel. Thread-safe. Fail(st) makes the next call fail once.
#pragma once

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "network/network_engine.h"

namespace stratus::network {

class FakeNetworkEngine final : public NetworkEngine {
 public:
  Status ApplyVnet(const VnetDatapath& vnet) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!fail_.ok()) return std::exchange(fail_, Status::Ok());
    vnets_[vnet.netns] = vnet;
    ++applies_;
    return Status::Ok();
  }
  // A health change: the VNET's recorded datapath gets the new table.
  Status ApplyLoadBalancing(const std::string& netns, const LbDatapath& lb) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!fail_.ok()) return std::exchange(fail_, Status::Ok());
    auto it = vnets_.find(netns);
    if (it == vnets_.end()) return Unavailable("no router " + netns);
    it->second.lb = lb;
    ++lb_applies_;
    return Status::Ok();
  }
  Status RemoveVnet(const std::string& netns) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!fail_.ok()) return std::exchange(fail_, Status::Ok());
    vnets_.erase(netns);
    return Status::Ok();
  }
  Status Sweep(const std::vector<std::string>& keep) override {
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = vnets_.begin(); it != vnets_.end();) {
      bool kept = false;
      for (auto& k : keep) kept = kept || k == it->first;
      it = kept ? std::next(it) : vnets_.erase(it);
    }
    return Status::Ok();
  }
  Status ApplySecurity(const SecurityDatapath& security) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!fail_.ok()) return std::exchange(fail_, Status::Ok());
    security_ = security;
    return Status::Ok();
  }
  // Counters set by the test (SetCounters), filtered like the real engine's.
  Result<std::vector<RuleCounter>> SecurityCounters(
      const std::vector<std::string>& stages) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!fail_.ok()) return std::exchange(fail_, Status::Ok());
    std::vector<RuleCounter> out;
    for (auto& c : counters_)
      if (stages.empty() || std::find(stages.begin(), stages.end(), c.stage) != stages.end())
        out.push_back(c);
    return out;
  }
  void SetCounters(std::vector<RuleCounter> counters) {
    std::lock_guard<std::mutex> l(mu_);
    counters_ = std::move(counters);
  }
  Status ApplyEdge(const EdgeDatapath& edge) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!fail_.ok()) return std::exchange(fail_, Status::Ok());
    edge_ = edge;
    return Status::Ok();
  }
  Status RemoveEdge() override {
    std::lock_guard<std::mutex> l(mu_);
    edge_.reset();
    return Status::Ok();
  }
  std::optional<EdgeDatapath> edge() {
    std::lock_guard<std::mutex> l(mu_);
    return edge_;
  }
  SecurityDatapath security() {
    std::lock_guard<std::mutex> l(mu_);
    return security_;
  }
  Result<RegionObjects> List() override {
    std::lock_guard<std::mutex> l(mu_);
    RegionObjects o;
    for (auto& [ns, v] : vnets_) {
      o.namespaces.push_back(ns);
      for (auto& s : v.subnets) o.links.push_back(s.bridge);
    }
    return o;
  }

  // The datapath of the VNET whose resource name is `name` (nullptr when it has none).
  const VnetDatapath* Vnet(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [ns, v] : vnets_)
      if (v.name == name) return &v;
    return nullptr;
  }
  // The load balancers' table of VNET `name` now (a copy: health changes rewrite it from the
  // prober's thread).
  LbDatapath Lb(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [ns, v] : vnets_)
      if (v.name == name) return v.lb;
    return {};
  }
  size_t VnetCount() {
    std::lock_guard<std::mutex> l(mu_);
    return vnets_.size();
  }
  int applies() {
    std::lock_guard<std::mutex> l(mu_);
    return applies_;
  }
  int lb_applies() {
    std::lock_guard<std::mutex> l(mu_);
    return lb_applies_;
  }
  void Fail(Status st) {
    std::lock_guard<std::mutex> l(mu_);
    fail_ = std::move(st);
  }

 private:
  std::mutex mu_;
  std::map<std::string, VnetDatapath> vnets_;
  SecurityDatapath security_;
  std::vector<RuleCounter> counters_;
  std::optional<EdgeDatapath> edge_;
  int applies_ = 0;
  int lb_applies_ = 0;
  Status fail_ = Status::Ok();
};

}  // namespace stratus::network
