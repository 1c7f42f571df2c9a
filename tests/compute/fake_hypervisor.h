// FakeHypervisor: compute::Hypervisor in memory, for unit tests of the compute controller.
//
// Domains are DomainSpecs plus a power state. Disk snapshots are real copies (qemu-img convert)
// so the storage side sees files. Every mutating call is logged ("Define stratus-...") so tests
// can assert what the controller did, and Define can be made to block on a gate to hold an
// operation in flight. Thread-safe.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "compute/hypervisor.h"
#include "core/subprocess.h"

namespace stratus::compute {

class FakeHypervisor final : public Hypervisor {
 public:
  struct Domain {
    DomainSpec spec;
    PowerState state = PowerState::kStopped;
    std::vector<std::string> checkpoints;  // oldest first
    bool backup_running = false;
  };

  ~FakeHypervisor() override { OpenDefineGate(); }

  Status Define(const DomainSpec& spec) override {
    WaitDefineGate();
    std::lock_guard<std::mutex> l(mu_);
    if (spec.name.empty()) return InvalidArgument("domain name is empty", "name");
    if (!define_error_.ok()) return define_error_;
    Log("Define " + spec.name);
    auto it = domains_.find(spec.name);
    if (it == domains_.end()) {
      Domain dom;
      dom.spec = spec;
      domains_[spec.name] = std::move(dom);
    } else {
      it->second.spec = spec;
    }
    return Status::Ok();
  }

  Status Undefine(const std::string& name) override {
    std::lock_guard<std::mutex> l(mu_);
    Log("Undefine " + name);
    auto it = domains_.find(name);
    if (it == domains_.end()) return Status::Ok();
    if (it->second.state == PowerState::kRunning)
      return Conflict("domain '" + name + "' is running", name);
    domains_.erase(it);  // checkpoints go with it, as with libvirt
    return Status::Ok();
  }

  Status Start(const std::string& name) override {
    std::lock_guard<std::mutex> l(mu_);
    Log("Start " + name);
    Domain* d = FindLocked(name);
    if (!d) return NotFound("domain '" + name + "' not found", name);
    d->state = PowerState::kRunning;  // already running: OK, as the contract says
    return Status::Ok();
  }

  Status StartPaused(const std::string& name) override {
    std::lock_guard<std::mutex> l(mu_);
    Log("StartPaused " + name);
    Domain* d = FindLocked(name);
    if (!d) return NotFound("domain '" + name + "' not found", name);
    if (d->state != PowerState::kRunning) d->state = PowerState::kPaused;
    return Status::Ok();
  }

  Status Shutdown(const std::string& name, int timeout_ms) override { return Stop("Shutdown", name); }
  Status PowerOff(const std::string& name) override { return Stop("PowerOff", name); }

  Status Reboot(const std::string& name) override {
    std::lock_guard<std::mutex> l(mu_);
    Log("Reboot " + name);
    Domain* d = FindLocked(name);
    if (!d) return NotFound("domain '" + name + "' not found", name);
    if (d->state != PowerState::kRunning) return Conflict("domain '" + name + "' is not running");
    return Status::Ok();
  }

  Result<DomainInfo> Info(const std::string& name) override {
    std::lock_guard<std::mutex> l(mu_);
    Domain* d = FindLocked(name);
    if (!d) return NotFound("domain '" + name + "' not found", name);
    DomainInfo info;
    info.name = name;
    info.uuid = d->spec.uuid;
    info.state = d->state;
    info.boot_time_ms = d->state == PowerState::kRunning ? 1795341600000 : 0;
    info.metadata_json = d->spec.metadata_json;
    return info;
  }

  Result<std::vector<DomainInfo>> List(const std::string& prefix) override {
    std::vector<std::string> names;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (auto& [n, d] : domains_)
        if (n.rfind(prefix, 0) == 0) names.push_back(n);
    }
    std::vector<DomainInfo> out;
    for (auto& n : names) {
      auto info = Info(n);
      if (info.ok()) out.push_back(*info);
    }
    return out;
  }

  Status AttachDisk(const std::string& name, const DiskAttachment& disk) override {
    std::lock_guard<std::mutex> l(mu_);
    Log("AttachDisk " + name + " " + disk.target_dev);
    Domain* d = FindLocked(name);
    if (!d) return NotFound("domain '" + name + "' not found", name);
    for (auto& a : d->spec.disks) {
      if (a.target_dev != disk.target_dev) continue;
      if (a.path == disk.path) return Status::Ok();  // a retried attach
      return Conflict("target " + disk.target_dev + " is in use", name);
    }
    d->spec.disks.push_back(disk);
    return Status::Ok();
  }

  Status DetachDisk(const std::string& name, const std::string& target_dev) override {
    std::lock_guard<std::mutex> l(mu_);
    Log("DetachDisk " + name + " " + target_dev);
    Domain* d = FindLocked(name);
    if (!d) return NotFound("domain '" + name + "' not found", name);
    auto& disks = d->spec.disks;
    auto it = std::find_if(disks.begin(), disks.end(),
                           [&](const DiskAttachment& a) { return a.target_dev == target_dev; });
    if (it == disks.end()) return NotFound("no disk " + target_dev + " on " + name, target_dev);
    disks.erase(it);
    return Status::Ok();
  }

  Status AttachNic(const std::string& name, const NicAttachment& nic) override {
    std::lock_guard<std::mutex> l(mu_);
    Log("AttachNic " + name + " " + nic.mac);
    Domain* d = FindLocked(name);
    if (!d) return NotFound("domain '" + name + "' not found", name);
    for (auto& n : d->spec.nics)
      if (n.mac == nic.mac) return Status::Ok();
    d->spec.nics.push_back(nic);
    return Status::Ok();
  }

  Status DetachNic(const std::string& name, const NicAttachment& nic) override {
    std::lock_guard<std::mutex> l(mu_);
    const std::string& mac = nic.mac;
    Log("DetachNic " + name + " " + mac);
    Domain* d = FindLocked(name);
    if (!d) return NotFound("domain '" + name + "' not found", name);
    auto& nics = d->spec.nics;
    auto it = std::find_if(nics.begin(), nics.end(),
                           [&](const NicAttachment& n) { return n.mac == mac; });
    if (it == nics.end()) return NotFound("no NIC " + mac + " on " + name, mac);
    nics.erase(it);
    return Status::Ok();
  }

  Status SetIoTune(const std::string& name, const std::string& target_dev,
                   const IoTune& tune) override {
    std::lock_guard<std::mutex> l(mu_);
    Log("SetIoTune " + name + " " + target_dev);
    Domain* d = FindLocked(name);
    if (!d) return NotFound("domain '" + name + "' not found", name);
    for (auto& a : d->spec.disks)
      if (a.target_dev == target_dev) {
        a.iotune = tune;
        return Status::Ok();
      }
    return NotFound("no disk " + target_dev + " on " + name, target_dev);
  }

  Result<Json> AgentCommand(const std::string& name, const Json& command, int timeout_s) override {
    return Unavailable("the fake hypervisor has no guest agent");
  }

  Result<bool> SnapshotDisks(const std::string& name, const std::vector<SnapshotTarget>& targets,
                             bool quiesce) override {
    std::vector<std::pair<std::string, std::string>> copies;  // (source, dest)
    bool running = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      Log("SnapshotDisks " + name);
      Domain* d = FindLocked(name);
      if (!d) return NotFound("domain '" + name + "' not found", name);
      running = d->state == PowerState::kRunning;
      for (auto& t : targets) {
        std::string src;
        for (auto& a : d->spec.disks)
          if (a.target_dev == t.target_dev) src = a.path;
        if (src.empty()) return NotFound("no disk " + t.target_dev + " on " + name, t.target_dev);
        copies.emplace_back(src, t.dest_path);
      }
    }
    for (auto& [src, dest] : copies)
      RETURN_IF_ERROR(RunChecked({"qemu-img", "convert", "-q", "-O", "qcow2", src, dest}).status());
    return running && quiesce;
  }

  // Pull backups: exports are named after the disks, incremental bitmaps "backup-<dev>".
  Result<PullBackup> BeginPullBackup(const std::string& name, const PullBackupSpec& spec) override {
    std::lock_guard<std::mutex> l(mu_);
    Log("BeginPullBackup " + name + " " + spec.checkpoint);
    Domain* d = FindLocked(name);
    if (!d) return NotFound("domain '" + name + "' not found", name);
    if (d->state != PowerState::kRunning)
      return Conflict("domain '" + name + "' is not running", name, "OperationNotAllowed");
    if (d->backup_running) return Conflict("domain '" + name + "' has a backup job running");
    auto& cps = d->checkpoints;
    if (std::find(cps.begin(), cps.end(), spec.checkpoint) != cps.end())
      return Conflict("checkpoint '" + spec.checkpoint + "' exists", spec.checkpoint);
    if (!spec.incremental_from.empty() &&
        std::find(cps.begin(), cps.end(), spec.incremental_from) == cps.end())
      return NotFound("checkpoint '" + spec.incremental_from + "' not found", spec.incremental_from,
                      "CheckpointNotFound");
    PullBackup b;
    b.socket_path = spec.socket_path;
    for (auto& dev : spec.target_devs) {
      bool found = false;
      for (auto& a : d->spec.disks) found = found || a.target_dev == dev;
      if (!found) return NotFound("no disk " + dev + " on " + name, dev);
      b.disks.push_back({dev, dev, spec.incremental_from.empty() ? "" : "backup-" + dev, 0});
    }
    cps.push_back(spec.checkpoint);
    d->backup_running = true;
    return b;
  }

  Status EndPullBackup(const std::string& name) override {
    std::lock_guard<std::mutex> l(mu_);
    Log("EndPullBackup " + name);
    if (Domain* d = FindLocked(name)) d->backup_running = false;
    return Status::Ok();
  }

  Result<std::vector<std::string>> ListCheckpoints(const std::string& name) override {
    std::lock_guard<std::mutex> l(mu_);
    Domain* d = FindLocked(name);
    if (!d) return NotFound("domain '" + name + "' not found", name);
    return d->checkpoints;
  }

  Status DeleteCheckpoint(const std::string& name, const std::string& checkpoint) override {
    std::lock_guard<std::mutex> l(mu_);
    Log("DeleteCheckpoint " + name + " " + checkpoint);
    Domain* d = FindLocked(name);
    if (!d) return Status::Ok();
    std::erase(d->checkpoints, checkpoint);
    return Status::Ok();
  }

  Status RedefineCheckpoint(const std::string& name, const std::string& checkpoint,
                            const std::vector<std::string>&) override {
    std::lock_guard<std::mutex> l(mu_);
    Log("RedefineCheckpoint " + name + " " + checkpoint);
    Domain* d = FindLocked(name);
    if (!d) return NotFound("domain '" + name + "' not found", name);
    if (std::find(d->checkpoints.begin(), d->checkpoints.end(), checkpoint) == d->checkpoints.end())
      d->checkpoints.push_back(checkpoint);
    return Status::Ok();
  }

  // A block pull completes at once (the fake has no backing chains).
  Status BlockPull(const std::string& name, const std::string& disk) override {
    std::lock_guard<std::mutex> l(mu_);
    Log("BlockPull " + name + " " + disk);
    if (!FindLocked(name)) return NotFound("domain '" + name + "' not found", name);
    return Status::Ok();
  }
  Result<BlockJobProgress> GetBlockJob(const std::string& name, const std::string&) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!FindLocked(name)) return NotFound("domain '" + name + "' not found", name);
    return BlockJobProgress{};
  }

  // ---- Test controls and inspection.

  std::optional<Domain> Get(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    Domain* d = FindLocked(name);
    return d ? std::optional<Domain>(*d) : std::nullopt;
  }
  // The domain vanishes (host lost it), whatever its state.
  void Forget(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    domains_.erase(name);
  }
  void SetState(const std::string& name, PowerState s) {
    std::lock_guard<std::mutex> l(mu_);
    if (Domain* d = FindLocked(name)) {
      d->state = s;
      if (s != PowerState::kRunning) d->backup_running = false;
    }
  }
  size_t DomainCount() {
    std::lock_guard<std::mutex> l(mu_);
    return domains_.size();
  }
  std::vector<std::string> Calls() {
    std::lock_guard<std::mutex> l(mu_);
    return calls_;
  }
  void ClearCalls() {
    std::lock_guard<std::mutex> l(mu_);
    calls_.clear();
  }
  void FailDefine(Status st) {
    std::lock_guard<std::mutex> l(mu_);
    define_error_ = std::move(st);
  }
  // Define() blocks until OpenDefineGate().
  void CloseDefineGate() {
    std::lock_guard<std::mutex> l(gate_mu_);
    gate_open_ = false;
  }
  void OpenDefineGate() {
    std::lock_guard<std::mutex> l(gate_mu_);
    gate_open_ = true;
    gate_cv_.notify_all();
  }
  // Waits (up to 5 s) until some Define() is blocked on the gate.
  bool WaitDefineBlocked() {
    std::unique_lock<std::mutex> l(gate_mu_);
    return gate_cv_.wait_for(l, std::chrono::seconds(5), [&] { return waiting_ > 0; });
  }

 private:
  Domain* FindLocked(const std::string& name) {
    auto it = domains_.find(name);
    return it == domains_.end() ? nullptr : &it->second;
  }
  void Log(std::string s) { calls_.push_back(std::move(s)); }

  Status Stop(const char* how, const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    Log(std::string(how) + " " + name);
    Domain* d = FindLocked(name);
    if (!d) return NotFound("domain '" + name + "' not found", name);
    d->state = PowerState::kStopped;
    d->backup_running = false;
    return Status::Ok();
  }

  void WaitDefineGate() {
    std::unique_lock<std::mutex> l(gate_mu_);
    ++waiting_;
    gate_cv_.notify_all();
    gate_cv_.wait(l, [&] { return gate_open_; });
    --waiting_;
  }

  std::mutex mu_;  // guards domains_, calls_, define_error_
  std::map<std::string, Domain> domains_;
  std::vector<std::string> calls_;
  Status define_error_;

  std::mutex gate_mu_;  // guards gate_open_, waiting_
  std::condition_variable gate_cv_;
  bool gate_open_ = true;
  int waiting_ = 0;
};

}  // namespace stratus::compute
