// replication_bench: site recovery's RPO while a guest writes, against the seed's "copy the disks"
// pattern done as well as a user can.
//
// Two stratusd regions on this host, paired over the peer link. Region A runs the tiny guest with
// a 1 GiB data disk; a writer in the guest writes 4 KiB blocks at random offsets of the disk's
// first 512 MiB, each with O_SYNC-like fsync (dd conv=fsync), paced to --write-kib-per-s.
//   1. The writer alone for --seconds: the guest's write rate without replication.
//   2. Replication of the VM into a vault of region B (a point every --frequency seconds): the
//      RPO that B's API reports (rpoInSeconds: the age of the newest point whose data is all in B),
//      sampled every second for --seconds, and the guest's write rate meanwhile; the bytes B
//      received per byte the guest wrote.
//   3. The peer: `rsync --inplace` of A's data disk file to a copy, round after round, while the
//      guest writes (what a user without replication scripts); its RPO sampled every second is the
//      time since the start of the last complete round (generous: a round's copy is not even one
//      instant of the disk).
// Anchor: Azure Site Recovery's crash-consistent points every 5 minutes (300 s).
// Tables: peer, ours, ratio (ours ÷ peer) and the issue's targets.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "bench_util.h"
#include "core/base64.h"
#include "core/fs.h"
#include "core/subprocess.h"

using namespace stratus;
using namespace stratus::bench;

namespace {

struct Options {
  std::string stratusd = STRATUSD_PATH;
  std::string work = "/var/tmp";
  std::string guest_dir;
  int seconds = 60;
  int frequency = 5;
  int write_kib_per_s = 256;
  std::string mode = "rpo";  // or "plan", "reprotect"
  int plan_groups = 3, plan_vms_per_group = 2;
};

// Starts `sh -c cmd` in the guest through the agent (it runs on); its guest pid.
Result<int> GuestStart(const std::string& domain, const std::string& cmd) {
  Json exec = {{"execute", "guest-exec"},
               {"arguments", {{"path", "/bin/sh"}, {"arg", {"-c", cmd}}, {"capture-output", true}}}};
  auto r = RunProcess({"virsh", "-c", "qemu:///system", "qemu-agent-command", domain, exec.dump()});
  if (!r.ok() || r->exit_code != 0) return Unavailable("guest-exec failed: " + (r.ok() ? r->out + r->err : ""));
  Json j = Json::parse(r->out, nullptr, false);
  if (!j.is_object()) return Unavailable("guest-exec answered " + r->out);
  return j["return"].value("pid", -1);
}

// Runs `sh -c cmd` in the guest through the agent; its stdout.
Result<std::string> Guest(const std::string& domain, const std::string& cmd, int timeout_s = 60) {
  ASSIGN_OR_RETURN(int pid, GuestStart(domain, cmd));
  for (int i = 0; i < timeout_s * 10; ++i) {
    Json st = {{"execute", "guest-exec-status"}, {"arguments", {{"pid", pid}}}};
    auto s = RunProcess({"virsh", "-c", "qemu:///system", "qemu-agent-command", domain, st.dump()});
    if (s.ok() && s->exit_code == 0) {
      Json k = Json::parse(s->out, nullptr, false);
      if (k.is_object() && k["return"].value("exited", false)) {
        auto out = Base64Decode(k["return"].value("out-data", ""));
        return out.ok() ? *out : std::string();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Unavailable("guest command did not finish: " + cmd);
}

Status WaitAgent(const std::string& domain, int timeout_s) {
  for (int i = 0; i < timeout_s; ++i) {
    auto r = RunProcess({"virsh", "-c", "qemu:///system", "qemu-agent-command", domain,
                         R"({"execute":"guest-ping"})"});
    if (r.ok() && r->exit_code == 0) return Status::Ok();
    if (StopRequested()) return Interrupted();
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  return Unavailable("the guest agent of " + domain + " did not answer");
}

Status WaitOp(ApiClient& api, const HttpResult& accepted, int timeout_s = 300) {
  std::string path = PathOfUrl(accepted.Header("Azure-AsyncOperation"));
  for (int i = 0; i < timeout_s * 4; ++i) {
    HttpResult r = api.Get(path);
    RETURN_IF_ERROR(Expect(r, 200, "GET operation"));
    Json j = Json::parse(r.body, nullptr, false);
    std::string st = j.value("status", "");
    if (st == "Succeeded") return Status::Ok();
    if (st != "InProgress") return Internal("operation ended " + st + ": " + r.body);
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return Unavailable("operation still running: " + path);
}

// Writes done so far by the guest's writer (its counter file).
Result<int64_t> WritesDone(const std::string& domain) {
  ASSIGN_OR_RETURN(std::string out, Guest(domain, "cat /tmp/writes 2>/dev/null || echo 0"));
  return std::atoll(out.c_str());
}

struct Rpo {
  std::vector<double> samples_s;
  double p50() const { return Pct(0.5); }
  double p99() const { return Pct(0.99); }
  double Pct(double q) const {
    if (samples_s.empty()) return 0;
    std::vector<double> s = samples_s;
    std::sort(s.begin(), s.end());
    return Percentile(s, q);
  }
};

std::string Secs(double s) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f s", s);
  return b;
}

// Two regions (benchA, benchB) in a scratch folder, B paired with A. They stop, and the folder
// goes, with the struct.
struct Regions {
  std::unique_ptr<ScopedDir> dir;
  std::unique_ptr<Daemon> a, b;
  std::string rg_a, rg_b;  // the group made in each (API paths)
};

// ... and a resource group `group` in each.
Result<Regions> StartPairedRegions(const Options& o, const std::string& prefix,
                                   const std::string& group) {
  Regions r;
  ASSIGN_OR_RETURN(r.dir, ScopedDir::Make(o.work, prefix));
  auto start = [&](const std::string& region) {
    Daemon::Options d;
    d.binary = o.stratusd;
    d.dir = JoinPath(r.dir->path(), region);
    d.platform_images = o.guest_dir;
    d.extra_args = {"--region", region};
    (void)MakeDirs(d.dir, 0755);
    return Daemon::Start(d);
  };
  ASSIGN_OR_RETURN(r.a, start("benchA"));
  ASSIGN_OR_RETURN(r.b, start("benchB"));
  ApiClient api_a(r.a->endpoint()), api_b(r.b->endpoint());
  const std::string prov = "/providers/Stratus.RecoveryServices";
  HttpResult tok = api_a.Post(api_a.SubPath() + prov + "/generatePairingToken", "{}");
  RETURN_IF_ERROR(Expect(tok, 200, "pairing token"));
  Json pair = {{"properties", {{"pairingToken", Json::parse(tok.body)["token"]}}}};
  RETURN_IF_ERROR(Expect(api_b.Put(api_b.SubPath() + prov + "/regionPairings/benchA", pair.dump()),
                         201, "pairing"));
  r.rg_a = api_a.SubPath() + "/resourceGroups/" + group;
  r.rg_b = api_b.SubPath() + "/resourceGroups/" + group;
  RETURN_IF_ERROR(Expect(api_a.Put(r.rg_a, R"({"location":"benchA"})"), 201, "group A"));
  RETURN_IF_ERROR(Expect(api_b.Put(r.rg_b, R"({"location":"benchB"})"), 201, "group B"));
  return r;
}

// VM `name` in group path `rg` of region A (tiny image, a 1 GiB data disk "data"), made and
// waited for: its {id, libvirt domain}.
Result<std::pair<std::string, std::string>> MakeDataVm(ApiClient& api, const std::string& rg,
                                                       const std::string& name) {
  Json vm = {{"location", "benchA"},
             {"properties",
              {{"hardwareProfile", {{"vmSize", "Standard_S1"}}},
               {"storageProfile",
                {{"imageReference", {{"id", "tiny"}}},
                 {"dataDisks", {{{"lun", 0}, {"diskSizeGB", 1}, {"name", "data"}}}}}},
               {"osProfile", {{"computerName", name}}}}}};
  HttpResult put = api.Put(rg + "/providers/Stratus.Compute/virtualMachines/" + name, vm.dump());
  RETURN_IF_ERROR(Expect(put, 201, "PUT VM"));
  RETURN_IF_ERROR(WaitOp(api, put));
  Json vmj = Json::parse(put.body);
  return std::make_pair(vmj.value("id", ""), "stratus-" + vmj["properties"].value("vmId", ""));
}

Status Run(const Options& o) {
  InstallStopHandlers();
  ASSIGN_OR_RETURN(Regions r, StartPairedRegions(o, "stratus-replbench", "rb"));
  auto& a = r.a;
  auto& dir = r.dir;
  ApiClient api_a(r.a->endpoint()), api_b(r.b->endpoint());
  const std::string prov = "/providers/Stratus.RecoveryServices";

  const std::string rg_a = r.rg_a, rg_b = r.rg_b;
  std::string vm_path = rg_a + "/providers/Stratus.Compute/virtualMachines/writer";
  ASSIGN_OR_RETURN(auto made, MakeDataVm(api_a, rg_a, "writer"));
  const auto& [vm_id, domain] = made;
  std::fprintf(stderr, "replication_bench: VM created; waiting for its agent\n");
  RETURN_IF_ERROR(WaitAgent(domain, 300));
  // The writer: a batch of 4 KiB synchronous writes at random offsets every second.
  int per_s = std::max(1, o.write_kib_per_s / 4);
  std::string writer =
      "n=0; while :; do i=0; while [ $i -lt " + std::to_string(per_s) +
      " ]; do dd if=/dev/urandom of=/dev/vdb bs=4k count=1 seek=$(( (RANDOM * 32768 + RANDOM) % "
      "131072 )) conv=notrunc,fsync 2>/dev/null; i=$((i+1)); n=$((n+1)); done; echo $n > "
      "/tmp/writes; sleep 1; done";
  RETURN_IF_ERROR(GuestStart(domain, writer).status());
  std::this_thread::sleep_for(std::chrono::seconds(3));
  ASSIGN_OR_RETURN(int64_t started, WritesDone(domain));
  if (started <= 0) return Internal("the guest's writer does not write (/tmp/writes is empty)");

  // 1. No replication.
  std::fprintf(stderr, "replication_bench: %d s of guest writes without replication\n", o.seconds);
  ASSIGN_OR_RETURN(int64_t w0, WritesDone(domain));
  auto t0 = Now();
  std::this_thread::sleep_for(std::chrono::seconds(o.seconds));
  ASSIGN_OR_RETURN(int64_t w1, WritesDone(domain));
  double rate_without = (w1 - w0) * 4.0 / (MsBetween(t0, Now()) / 1000.0);

  // 2. Replication.
  RETURN_IF_ERROR(Expect(api_b.Put(rg_b + prov + "/vaults/v", R"({"location":"benchB"})"), 201,
                         "vault"));
  std::string item = rg_b + prov + "/vaults/v/replicationProtectedItems/writer";
  Json body = {{"properties",
                {{"sourceRegion", "benchA"},
                 {"sourceVmId", vm_id},
                 {"policy", {{"crashConsistentFrequencyInSeconds", o.frequency}}}}}};
  HttpResult en = api_b.Put(item, body.dump());
  RETURN_IF_ERROR(Expect(en, 201, "enable replication"));
  RETURN_IF_ERROR(WaitOp(api_b, en));
  std::fprintf(stderr, "replication_bench: waiting for the first point (the seed)\n");
  auto seed_t0 = Now();
  for (;;) {
    Json it = Json::parse(api_b.Get(item).body, nullptr, false);
    if (it.is_object() && it["properties"].value("recoveryPointCount", 0) >= 1) break;
    if (StopRequested()) return Interrupted();
    if (MsBetween(seed_t0, Now()) > 600000) return Unavailable("no first point in 10 minutes");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  double seed_s = MsBetween(seed_t0, Now()) / 1000.0;
  std::fprintf(stderr, "replication_bench: %d s of guest writes with replication\n", o.seconds);
  Rpo ours;
  ASSIGN_OR_RETURN(int64_t w2, WritesDone(domain));
  auto t2 = Now();
  // Points from here on: the bytes they carried.
  Json before = Json::parse(api_b.Get(item + "/recoveryPoints").body, nullptr, false);
  size_t points_before = before.is_object() ? before["value"].size() : 0;
  while (MsBetween(t2, Now()) < o.seconds * 1000.0) {
    Json it = Json::parse(api_b.Get(item).body, nullptr, false);
    if (it.is_object() && it["properties"].contains("rpoInSeconds"))
      ours.samples_s.push_back(it["properties"].value("rpoInSeconds", 0));
    if (StopRequested()) return Interrupted();
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  ASSIGN_OR_RETURN(int64_t w3, WritesDone(domain));
  double rate_with = (w3 - w2) * 4.0 / (MsBetween(t2, Now()) / 1000.0);
  Json after = Json::parse(api_b.Get(item + "/recoveryPoints").body, nullptr, false);
  uint64_t received = 0;
  size_t points = 0;
  if (after.is_object())
    for (size_t i = points_before; i < after["value"].size(); ++i, ++points)
      received += after["value"][i]["properties"].value("bytesReceived", uint64_t{0});
  double written = (w3 - w2) * 4096.0;
  HttpResult dis = api_b.Delete(item);
  RETURN_IF_ERROR(Expect(dis, 202, "disable"));
  RETURN_IF_ERROR(WaitOp(api_b, dis));

  // 3. The peer: rsync --inplace rounds of the data disk file.
  HttpResult disk = api_a.Get(rg_a + "/providers/Stratus.Storage/disks/data");
  RETURN_IF_ERROR(Expect(disk, 200, "GET disk"));
  std::string src = JoinPath(a->data_dir(), "disks/" +
                                                Json::parse(disk.body)["properties"].value("uniqueId", "") +
                                                ".qcow2");
  std::string copy = JoinPath(dir->path(), "peer-copy.qcow2");
  std::fprintf(stderr, "replication_bench: %d s of rsync --inplace rounds\n", o.seconds);
  RETURN_IF_ERROR(RunChecked({"rsync", "--inplace", src, copy}).status());  // the seed
  Rpo peer;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> last_round_start_ms{0};
  std::vector<double> rounds_s;
  auto epoch_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  last_round_start_ms = epoch_ms();
  std::thread rounds([&] {
    while (!stop) {
      int64_t s = epoch_ms();
      auto r = RunProcess({"rsync", "--inplace", "--no-whole-file", src, copy});
      if (!r.ok() || r->exit_code != 0) break;
      last_round_start_ms = s;
      rounds_s.push_back((epoch_ms() - s) / 1000.0);
    }
  });
  auto t4 = Now();
  while (MsBetween(t4, Now()) < o.seconds * 1000.0 && !StopRequested()) {
    peer.samples_s.push_back((epoch_ms() - last_round_start_ms) / 1000.0);
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  stop = true;
  rounds.join();

  // Clean-up of the VM (the daemons and folder go with their guards).
  HttpResult del = api_a.Delete(vm_path);
  if (del.status == 202) (void)WaitOp(api_a, del);

  std::printf("## Site recovery: RPO while the guest writes (%s)\n\n", LoadAverage().c_str());
  std::printf("Guest writes 4 KiB blocks at random offsets with fsync, asked %d KiB/s; points "
              "every %d s; %d s per phase; RPO sampled every second.\n\n",
              o.write_kib_per_s, o.frequency, o.seconds);
  Table t({"measure", "peer (rsync --inplace rounds)", "Stratus", "ratio", "target"});
  t.Add({"RPO p50", Secs(peer.p50()), Secs(ours.p50()), FormatRatio(ours.p50() / peer.p50()),
         ""});
  t.Add({"RPO p99", Secs(peer.p99()), Secs(ours.p99()), FormatRatio(ours.p99() / peer.p99()),
         std::string("≤ 15 s: ") + (ours.p99() <= 15 ? "met" : "not met")});
  t.Add({"RPO anchor: ASR crash-consistent points", "300 s", Secs(ours.p99()),
         FormatRatio(ours.p99() / 300.0), ""});
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f KiB/s", rate_without);
  std::string without = buf;
  std::snprintf(buf, sizeof buf, "%.0f KiB/s", rate_with);
  t.Add({"guest write rate (without replication → with)", without, buf,
         FormatRatio(rate_with / std::max(1.0, rate_without)),
         std::string("≥ 0.9×: ") + (rate_with >= 0.9 * rate_without ? "met" : "not met")});
  std::snprintf(buf, sizeof buf, "%.1f", written > 0 ? received / written : 0.0);
  t.Add({"bytes received in B per byte the guest wrote", "", buf, "",
         "about 1 (QEMU marks 64 KiB clusters; the 4 KiB block map sends the changed blocks)"});
  std::snprintf(buf, sizeof buf, "%.1f s", seed_s);
  t.Add({"initial seed (first point) of the VM", "", buf, "", ""});
  double round_p50 = 0;
  if (!rounds_s.empty()) {
    std::sort(rounds_s.begin(), rounds_s.end());
    round_p50 = Percentile(rounds_s, 0.5);
  }
  t.Add({"one rsync round of the 1 GiB disk file (p50)", Secs(round_p50), "", "", ""});
  std::printf("%s\n", t.Render().c_str());
  std::printf("Points in the window: %zu; the peer's copy is never one instant of the disk (it "
              "reads while the guest writes) and nothing checks it.\n",
              points);
  return Status::Ok();
}

// Mode "plan": the RTO of a recovery plan of --plan-groups groups of --plan-vms-per-group VMs,
// from the unplanned-failover call to every VM's guest agent answering in B, split into
// Stratus's own time and the guests' boot (the plan waits for each group's agents before the
// next group starts).
Status RunPlanRto(const Options& o) {
  InstallStopHandlers();
  ASSIGN_OR_RETURN(Regions r, StartPairedRegions(o, "stratus-planbench", "rp"));
  ApiClient api_a(r.a->endpoint()), api_b(r.b->endpoint());
  const std::string prov = "/providers/Stratus.RecoveryServices";
  const std::string rg_a = r.rg_a, rg_b = r.rg_b;
  RETURN_IF_ERROR(Expect(api_b.Put(rg_b + prov + "/vaults/v", R"({"location":"benchB"})"), 201,
                         "vault"));
  const int n = o.plan_groups * o.plan_vms_per_group;
  std::vector<std::string> names, items;
  for (int i = 0; i < n; ++i) {
    std::string name = "app" + std::to_string(i + 1);
    Json vm = {{"location", "benchA"},
               {"properties",
                {{"hardwareProfile", {{"vmSize", "Standard_S1"}}},
                 {"storageProfile", {{"imageReference", {{"id", "tiny"}}}}},
                 {"osProfile", {{"computerName", name}}}}}};
    HttpResult put = api_a.Put(rg_a + "/providers/Stratus.Compute/virtualMachines/" + name, vm.dump());
    RETURN_IF_ERROR(Expect(put, 201, "PUT VM"));
    RETURN_IF_ERROR(WaitOp(api_a, put));
    std::string item = rg_b + prov + "/vaults/v/replicationProtectedItems/" + name;
    Json body = {{"properties",
                  {{"sourceRegion", "benchA"},
                   {"sourceVmId", Json::parse(put.body).value("id", "")},
                   {"policy", {{"crashConsistentFrequencyInSeconds", 30}}}}}};
    HttpResult en = api_b.Put(item, body.dump());
    RETURN_IF_ERROR(Expect(en, 201, "enable replication"));
    RETURN_IF_ERROR(WaitOp(api_b, en));
    names.push_back(name);
    items.push_back(Json::parse(en.body).value("id", ""));
  }
  std::fprintf(stderr, "replication_bench: %d VMs replicated; waiting for their first points\n", n);
  for (auto& name : names) {
    std::string item = rg_b + prov + "/vaults/v/replicationProtectedItems/" + name;
    for (auto t0 = Now();;) {
      Json it = Json::parse(api_b.Get(item).body, nullptr, false);
      if (it.is_object() && it["properties"].value("recoveryPointCount", 0) >= 1) break;
      if (StopRequested()) return Interrupted();
      if (MsBetween(t0, Now()) > 600000) return Unavailable("no first point of " + name);
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
  Json groups = Json::array();
  for (int g = 0; g < o.plan_groups; ++g) {
    Json members = Json::array();
    for (int k = 0; k < o.plan_vms_per_group; ++k) members.push_back(items[g * o.plan_vms_per_group + k]);
    groups.push_back({{"replicationProtectedItems", members}});
  }
  std::string plan = rg_b + prov + "/vaults/v/replicationRecoveryPlans/app";
  RETURN_IF_ERROR(Expect(api_b.Put(plan, Json{{"properties", {{"groups", groups}}}}.dump()), 201,
                         "plan"));
  std::fprintf(stderr, "replication_bench: the plan's unplanned failover\n");
  auto t0 = Now();
  HttpResult run = api_b.Post(plan + "/unplannedFailover", "{}");
  RETURN_IF_ERROR(Expect(run, 202, "plan failover"));
  RETURN_IF_ERROR(WaitOp(api_b, run, 1800));
  double wall_s = MsBetween(t0, Now()) / 1000.0;
  Json p = Json::parse(api_b.Get(plan).body, nullptr, false)["properties"]["currentRun"];
  double rto = p.value("rtoMs", 0) / 1000.0, boot = p.value("guestBootWaitMs", 0) / 1000.0,
         own = p.value("stratusTimeMs", 0) / 1000.0;
  // Each VM's failover, split (disks, NICs, VM), from B's log.
  if (auto log = ReadFile(r.b->log_path()); log.ok()) {
    size_t at = 0;
    while ((at = log->find("failover of item", at)) != std::string::npos) {
      size_t end = log->find('\n', at);
      std::fprintf(stderr, "replication_bench: %s\n", log->substr(at, end - at).c_str());
      at = end;
    }
  }
  // Clean-up of A's VMs (the daemons and folder go with their guards).
  for (auto& name : names) {
    HttpResult del = api_a.Delete(rg_a + "/providers/Stratus.Compute/virtualMachines/" + name);
    if (del.status == 202) (void)WaitOp(api_a, del);
  }
  HttpResult del_b = api_b.Delete(rg_b);
  if (del_b.status == 202) (void)WaitOp(api_b, del_b, 600);

  std::printf("## Site recovery: RTO of a recovery plan (%s)\n\n", LoadAverage().c_str());
  std::printf("%d groups x %d tiny VMs (TCG), unplanned failover of the plan in region B: each "
              "group's VMs are made from their replicas (copies of the newest point), then the "
              "plan waits for every guest agent of the group before the next group starts.\n\n",
              o.plan_groups, o.plan_vms_per_group);
  Table t({"measure", "anchor", "Stratus", "target"});
  t.Add({"RTO: the failover call to every guest agent answering", "ASR SLA: 1 h", Secs(rto),
         ""});
  t.Add({"of which guest boot (waiting for agents)", "", Secs(boot), ""});
  t.Add({"of which Stratus's own time (disks, VMs, steps)", "", Secs(own),
         std::string("< 5 s: ") + (own < 5 ? "met" : "not met")});
  t.Add({"wall time seen by the caller (polling included)", "", Secs(wall_s), ""});
  std::printf("%s\n", t.Render().c_str());
  std::printf("Steps (from the plan's currentRun):\n\n| step | ms |\n|---|---:|\n");
  for (auto& st : p.value("steps", Json::array()))
    std::printf("| %s | %lld |\n", st.value("name", "").c_str(),
                static_cast<long long>(st.value("durationMs", 0)));
  std::printf("\n");
  return Status::Ok();
}

std::string MiB(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f MiB", bytes / 1048576.0);
  return b;
}

// `count` 4 KiB blocks of random data at random offsets of the data disk's first 512 MiB
// (distinct offsets: every block changes 4 KiB), then `seq_mib` MiB in one run at `seq_at` MiB.
std::string GuestWrites(int count, int seq_mib, int seq_at) {
  return "i=0; seen=' '; while [ $i -lt " + std::to_string(count) +
         " ]; do o=$(( (RANDOM * 32768 + RANDOM) % 131072 )); case \"$seen\" in *\" $o \"*) "
         "continue;; esac; seen=\"$seen$o \"; dd if=/dev/urandom of=/dev/vdb bs=4k count=1 "
         "seek=$o conv=notrunc 2>/dev/null; i=$((i+1)); done; " +
         (seq_mib > 0 ? "dd if=/dev/urandom of=/dev/vdb bs=1M count=" + std::to_string(seq_mib) +
                            " seek=" + std::to_string(seq_at) + " conv=notrunc 2>/dev/null; "
                      : std::string()) +
         "sync; echo done";
}

// Mode "reprotect": after an unplanned failover (region A's VM still running and writing: the
// split-brain case), the VM writes in B; reprotect sends B's VM back onto A's old copy. Bytes sent
// against bytes changed (both sides' writes), and the peer a user has: rsync's delta transfer of
// B's disk (as raw) onto A's (as raw), which reads both disks whole.
Status RunReprotect(const Options& o) {
  InstallStopHandlers();
  ASSIGN_OR_RETURN(Regions r, StartPairedRegions(o, "stratus-rpbench", "rb"));
  ApiClient api_a(r.a->endpoint()), api_b(r.b->endpoint());
  const std::string prov = "/providers/Stratus.RecoveryServices";
  const std::string rg_a = r.rg_a, rg_b = r.rg_b;
  RETURN_IF_ERROR(Expect(api_a.Put(rg_a + prov + "/vaults/v", R"({"location":"benchA"})"), 201,
                         "vault A"));
  RETURN_IF_ERROR(Expect(api_b.Put(rg_b + prov + "/vaults/v", R"({"location":"benchB"})"), 201,
                         "vault B"));
  std::string vm_a = rg_a + "/providers/Stratus.Compute/virtualMachines/db";
  ASSIGN_OR_RETURN(auto made, MakeDataVm(api_a, rg_a, "db"));
  const auto& [vm_id_a, domain_a] = made;
  RETURN_IF_ERROR(WaitAgent(domain_a, 300));
  // Some data before replication starts (the seed carries it).
  RETURN_IF_ERROR(Guest(domain_a, GuestWrites(0, 64, 256), 300).status());
  std::string item = rg_b + prov + "/vaults/v/replicationProtectedItems/db";
  Json body = {{"properties",
                {{"sourceRegion", "benchA"},
                 {"sourceVmId", vm_id_a},
                 {"policy", {{"crashConsistentFrequencyInSeconds", 5}}}}}};
  HttpResult en = api_b.Put(item, body.dump());
  RETURN_IF_ERROR(Expect(en, 201, "enable replication"));
  RETURN_IF_ERROR(WaitOp(api_b, en));
  std::fprintf(stderr, "replication_bench: waiting for two points\n");
  for (auto t0 = Now();;) {
    Json it = Json::parse(api_b.Get(item).body, nullptr, false);
    if (it.is_object() && it["properties"].value("recoveryPointCount", 0) >= 2) break;
    if (StopRequested()) return Interrupted();
    if (MsBetween(t0, Now()) > 600000) return Unavailable("no points in 10 minutes");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  // The failover (A not asked; its VM runs on), then A's VM writes on its own.
  HttpResult fo = api_b.Post(item + "/unplannedFailover", "{}");
  RETURN_IF_ERROR(Expect(fo, 202, "failover"));
  RETURN_IF_ERROR(WaitOp(api_b, fo));
  const int a_blocks = 256;
  std::fprintf(stderr, "replication_bench: A writes %d scattered 4 KiB blocks after the cut\n",
               a_blocks);
  RETURN_IF_ERROR(Guest(domain_a, GuestWrites(a_blocks, 0, 0), 600).status());
  HttpResult vm_b = api_b.Get(rg_b + "/providers/Stratus.Compute/virtualMachines/db");
  RETURN_IF_ERROR(Expect(vm_b, 200, "GET B's VM"));
  std::string domain_b = "stratus-" + Json::parse(vm_b.body)["properties"].value("vmId", "");
  RETURN_IF_ERROR(WaitAgent(domain_b, 300));
  const int b_blocks = 512, b_seq_mib = 16;
  std::fprintf(stderr, "replication_bench: B writes %d scattered 4 KiB blocks and %d MiB\n",
               b_blocks, b_seq_mib);
  RETURN_IF_ERROR(Guest(domain_b, GuestWrites(b_blocks, b_seq_mib, 600), 600).status());
  const double written = (a_blocks + b_blocks) * 4096.0 + b_seq_mib * 1048576.0;

  // Ours.
  std::fprintf(stderr, "replication_bench: reprotect\n");
  auto t0 = Now();
  HttpResult rp = api_b.Post(item + "/reprotect", "{}");
  RETURN_IF_ERROR(Expect(rp, 202, "reprotect"));
  RETURN_IF_ERROR(WaitOp(api_b, rp, 1800));
  double ours_s = MsBetween(t0, Now()) / 1000.0;
  Json sum = Json::parse(api_b.Get(item).body, nullptr, false)["properties"]["reprotect"];
  double sent = sum.value("bytesSent", 0.0), changed = sum.value("bytesChanged", 0.0);

  // The peer: both data disks as raw files (what rsync can compare block by block), then
  // rsync's delta transfer of B's onto A's old copy. B's VM stops first: its disk file is then
  // all there (A's is held stopped by the reprotect).
  HttpResult off = api_b.Post(rg_b + "/providers/Stratus.Compute/virtualMachines/db/powerOff", "{}");
  RETURN_IF_ERROR(Expect(off, 202, "power off B's VM"));
  RETURN_IF_ERROR(WaitOp(api_b, off));
  auto disk_file = [&](ApiClient& api, const std::string& rg, Daemon& d,
                       const std::string& name) -> Result<std::string> {
    HttpResult disk = api.Get(rg + "/providers/Stratus.Storage/disks/" + name);
    RETURN_IF_ERROR(Expect(disk, 200, "GET disk " + name));
    return JoinPath(d.data_dir(), "disks/" + Json::parse(disk.body)["properties"].value("uniqueId", "") +
                                      ".qcow2");
  };
  ASSIGN_OR_RETURN(std::string a_disk, disk_file(api_a, rg_a, *r.a, "data"));
  ASSIGN_OR_RETURN(std::string b_disk, disk_file(api_b, rg_b, *r.b, "db-lun0"));
  std::string a_raw = JoinPath(r.dir->path(), "a.raw"), b_raw = JoinPath(r.dir->path(), "b.raw");
  RETURN_IF_ERROR(RunChecked({"qemu-img", "convert", "-U", "-O", "raw", a_disk, a_raw}).status());
  RETURN_IF_ERROR(RunChecked({"qemu-img", "convert", "-U", "-O", "raw", b_disk, b_raw}).status());
  std::fprintf(stderr, "replication_bench: rsync --inplace --no-whole-file (delta transfer)\n");
  auto t1 = Now();
  // Through a pipe to itself (`-e` a local shell), so that the delta algorithm runs as over a
  // link: rsync copies local files whole otherwise.
  ASSIGN_OR_RETURN(std::string stats,
                   RunChecked({"rsync", "--inplace", "--no-whole-file", "--ignore-times", "--stats", "-e",
                               "sh -c 'shift; exec \"$@\"' x", b_raw, "localhost:" + a_raw}));
  double peer_s = MsBetween(t1, Now()) / 1000.0;
  double peer_sent = 0;
  for (size_t at = stats.find("Total bytes sent: "); at != std::string::npos;) {
    std::string num;
    for (size_t k = at + 18; k < stats.size() && (std::isdigit(stats[k]) || stats[k] == ','); ++k)
      if (stats[k] != ',') num += stats[k];
    peer_sent = std::atof(num.c_str());
    break;
  }
  HttpResult del = api_b.Delete(rg_b);
  if (del.status == 202) (void)WaitOp(api_b, del, 600);
  // A's old VM is held by the reverse item: that goes first, then the VM.
  HttpResult del_item = api_a.Delete(rg_a + prov + "/vaults/v/replicationProtectedItems/db");
  if (del_item.status == 202) (void)WaitOp(api_a, del_item);
  HttpResult del_a = api_a.Delete(vm_a);
  if (del_a.status == 202) (void)WaitOp(api_a, del_a);

  std::printf("## Site recovery: reprotect after a failover (%s)\n\n", LoadAverage().c_str());
  std::printf("1 GiB data disk; after an unplanned failover region A's VM (still running) writes "
              "%d scattered 4 KiB blocks, the failed-over VM in B writes %d scattered 4 KiB blocks "
              "and %d MiB in one run: %s written in all. Reprotect sends B's VM back onto A's old "
              "copy. Peer: rsync's delta transfer of B's disk onto A's (both as raw files; rsync "
              "reads both whole).\n\n",
              a_blocks, b_blocks, b_seq_mib, MiB(written).c_str());
  Table t({"measure", "peer (rsync delta)", "Stratus reprotect", "ratio", "target"});
  t.Add({"bytes sent", MiB(peer_sent), MiB(sent), FormatRatio(sent / std::max(1.0, peer_sent)),
         ""});
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f×", sent / written);
  std::string ours_x = buf;
  std::snprintf(buf, sizeof buf, "%.2f×", peer_sent / written);
  t.Add({"bytes sent per byte written", buf, ours_x, "",
         std::string("≤ 1.1×: ") + (sent <= 1.1 * written ? "met" : "not met")});
  t.Add({"bytes read to find what differs", "2 GiB (both disks)",
         MiB(changed) + " (the changed extents)", "", "no full-disk read"});
  t.Add({"time", Secs(peer_s), Secs(ours_s), FormatRatio(ours_s / std::max(0.001, peer_s)),
         ""});
  t.Add({"anchor: ASR reprotect", "re-reads whole disks", "", "", ""});
  std::printf("%s\n", t.Render().c_str());
  std::printf("Stratus's time is the whole reprotect operation (the source region stops and holds "
              "its VM, the first reverse cycle); the peer's excludes turning the qcow2 disks into "
              "raw files. Per disk: %s\n\n",
              sum.value("disks", Json::object()).dump().c_str());
  return Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"replication_bench - site recovery RPO against rsync rounds"};
  app.add_option("--stratusd", o.stratusd, "stratusd binary")->capture_default_str();
  app.add_option("--work", o.work, "Parent of the temporary state")->capture_default_str();
  app.add_option("--guest-dir", o.guest_dir, "Folder holding tiny/")->required();
  app.add_option("--seconds", o.seconds, "Seconds per phase")->capture_default_str();
  app.add_option("--frequency", o.frequency, "Seconds between points")->capture_default_str();
  app.add_option("--write-kib-per-s", o.write_kib_per_s, "Guest write rate asked")
      ->capture_default_str();
  app.add_option("--mode", o.mode, "rpo (RPO while writing), plan (recovery plan RTO) or reprotect (bytes sent)")
      ->capture_default_str();
  app.add_option("--plan-groups", o.plan_groups, "Groups of the plan (mode plan)")
      ->capture_default_str();
  app.add_option("--plan-vms-per-group", o.plan_vms_per_group, "VMs per group (mode plan)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  Status s = o.mode == "plan"        ? RunPlanRto(o)
             : o.mode == "reprotect" ? RunReprotect(o)
                                     : Run(o);
  if (!s.ok()) {
    std::fprintf(stderr, "replication_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
