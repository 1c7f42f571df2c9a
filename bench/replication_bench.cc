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
  std::string mode = "rpo";  // or "plan"
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
};

Result<Regions> StartPairedRegions(const Options& o, const std::string& prefix) {
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
  return r;
}

Status Run(const Options& o) {
  InstallStopHandlers();
  ASSIGN_OR_RETURN(Regions r, StartPairedRegions(o, "stratus-replbench"));
  auto& a = r.a;
  auto& dir = r.dir;
  ApiClient api_a(r.a->endpoint()), api_b(r.b->endpoint());
  const std::string prov = "/providers/Stratus.RecoveryServices";

  std::string rg_a = api_a.SubPath() + "/resourceGroups/rb";
  std::string rg_b = api_b.SubPath() + "/resourceGroups/rb";
  RETURN_IF_ERROR(Expect(api_a.Put(rg_a, R"({"location":"benchA"})"), 201, "group A"));
  RETURN_IF_ERROR(Expect(api_b.Put(rg_b, R"({"location":"benchB"})"), 201, "group B"));
  Json vm = {{"location", "benchA"},
             {"properties",
              {{"hardwareProfile", {{"vmSize", "Standard_S1"}}},
               {"storageProfile",
                {{"imageReference", {{"id", "tiny"}}},
                 {"dataDisks", {{{"lun", 0}, {"diskSizeGB", 1}, {"name", "data"}}}}}},
               {"osProfile", {{"computerName", "writer"}}}}}};
  std::string vm_path = rg_a + "/providers/Stratus.Compute/virtualMachines/writer";
  HttpResult put = api_a.Put(vm_path, vm.dump());
  RETURN_IF_ERROR(Expect(put, 201, "PUT VM"));
  RETURN_IF_ERROR(WaitOp(api_a, put));
  Json vmj = Json::parse(put.body);
  std::string vm_id = vmj.value("id", "");
  std::string domain = "stratus-" + vmj["properties"].value("vmId", "");
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
  ASSIGN_OR_RETURN(Regions r, StartPairedRegions(o, "stratus-planbench"));
  ApiClient api_a(r.a->endpoint()), api_b(r.b->endpoint());
  const std::string prov = "/providers/Stratus.RecoveryServices";
  std::string rg_a = api_a.SubPath() + "/resourceGroups/rp";
  std::string rg_b = api_b.SubPath() + "/resourceGroups/rp";
  RETURN_IF_ERROR(Expect(api_a.Put(rg_a, R"({"location":"benchA"})"), 201, "group A"));
  RETURN_IF_ERROR(Expect(api_b.Put(rg_b, R"({"location":"benchB"})"), 201, "group B"));
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
  app.add_option("--mode", o.mode, "rpo (RPO while writing) or plan (recovery plan RTO)")
      ->capture_default_str();
  app.add_option("--plan-groups", o.plan_groups, "Groups of the plan (mode plan)")
      ->capture_default_str();
  app.add_option("--plan-vms-per-group", o.plan_vms_per_group, "VMs per group (mode plan)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  Status s = o.mode == "plan" ? RunPlanRto(o) : Run(o);
  if (!s.ok()) {
    std::fprintf(stderr, "replication_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
