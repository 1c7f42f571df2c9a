// Backup under faults, end to end on a real stratusd + libvirt/QEMU + the tiny guest:
//  - a protected VM's data disk file vanishes: the job fails with DiskNotFound, the item says
//    Failed, and the vault's alert webhook gets the failure;
//  - kill -9 of stratusd while a backup of a running VM reads: after the restart the job is
//    Failed (interrupted), the vault verifies clean, nothing of the old job is left (qemu-nbd,
//    libvirt backup job) and the next backup completes and restores;
//  - kill -9 while the vault's GC deletes chunks: verify is clean, GC runs again, backups and
//    restores still work;
//  - a customer-key vault after a restart: Locked, a wrong passphrase is refused, the right one
//    unlocks, and the passphrase never shows up in the API or the activity log.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "harness.h"

namespace stratus::e2e {
namespace {

constexpr const char* kFaultRg = "rg-bkfault";
constexpr uint64_t kGiB = uint64_t{1} << 30;

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// An HTTP server on 127.0.0.1 (any free port) that records the bodies POSTed to /hook. Stopped
// and joined by the destructor, so a failing test does not leave it running.
class WebhookServer {
 public:
  WebhookServer() {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        bodies_.push_back(req.body);
      }
      res.status = 200;
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ > 0) thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~WebhookServer() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  WebhookServer(const WebhookServer&) = delete;
  WebhookServer& operator=(const WebhookServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  std::vector<std::string> bodies() const {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }
  // Waits until at least `n` bodies arrived (or `timeout`); returns all of them.
  std::vector<std::string> WaitFor(size_t n, Seconds timeout) const {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      auto b = bodies();
      if (b.size() >= n || Clock::now() >= deadline) return b;
      std::this_thread::sleep_for(milliseconds(100));
    }
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = -1;
  mutable std::mutex mu_;
  std::vector<std::string> bodies_;  // guarded by mu_
};

// Virtual size of a disk image (qemu-img info -U), 0 if it cannot be read.
uint64_t VirtualSize(const std::string& image) {
  std::string out;
  if (RunCommand({"qemu-img", "info", "-U", "--output=json", image}, &out) != 0) return 0;
  Json j = Json::parse(out, nullptr, false);
  return j.is_object() ? j.value("virtual-size", uint64_t{0}) : 0;
}

std::vector<std::string> Qcow2FilesIn(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& f : FilesUnder(dir))
    if (f.size() > 6 && f.compare(f.size() - 6, 6, ".qcow2") == 0) out.push_back(f);
  return out;
}

// qemu-nbd processes working on files of the test root, as "pid: cmdline" lines.
std::vector<std::string> QemuNbdProcesses(const std::string& root) {
  std::vector<std::string> out;
  for (pid_t p : ProcessesMentioning(root + "/")) {
    std::string cmd = ReadWholeFile("/proc/" + std::to_string(p) + "/cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find("qemu-nbd") != std::string::npos) out.push_back(std::to_string(p) + ": " + cmd);
  }
  return out;
}

// "virsh domjobinfo" of a domain: the output, and whether it reports an active job.
bool DomainHasJob(const std::string& dom, std::string* text) {
  std::string out;
  int rc = RunCommand({"virsh", "-c", "qemu:///system", "domjobinfo", dom}, &out);
  *text = "rc=" + std::to_string(rc) + " " + out;
  if (rc != 0) return false;  // e.g. the domain is gone
  auto pos = out.find("Job type:");
  if (pos == std::string::npos) return false;
  auto end = out.find('\n', pos);
  std::string type =
      out.substr(pos + 9, end == std::string::npos ? std::string::npos : end - pos - 9);
  return type.find("None") == std::string::npos;
}

// Whether libvirt has a backup job on the domain (virsh backup-dumpxml succeeds).
bool DomainHasBackupJob(const std::string& dom, std::string* text) {
  std::string out;
  int rc = RunCommand({"virsh", "-c", "qemu:///system", "backup-dumpxml", dom}, &out);
  *text = "rc=" + std::to_string(rc) + " " + out;
  return rc == 0;
}

class BackupFaultTest : public DaemonTest {
 protected:
  BackupFaultTest() : DaemonTest(DaemonOptions("regionBkF").Group(kFaultRg)) {}
  void SetUp() override {
    t0_ = Clock::now();
    DaemonTest::SetUp();
  }
  void TearDown() override {
    DaemonTest::TearDown();
    if (!IsSkipped())
      std::fprintf(stderr, "[e2e] %s took %.1f s\n",
                   ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                   std::chrono::duration<double>(Clock::now() - t0_).count());
  }

  // A VM of the tiny image with a 1 GiB OS disk and a 2 GiB data disk at LUN 0.
  void CreateDataVm(const std::string& name, TestVm* vm) {
    CreateVm(name,
             TinyVm().ComputerName(name).OsDisk(name + "-os", 1).DataDisk(0, name + "-data", 2),
             vm);
  }

  // The qcow2 file of the VM's 2 GiB data disk (the only 2 GiB image of the data dir), or "".
  std::string DataDiskFile() const {
    std::vector<std::string> found;
    for (auto& f : Qcow2FilesIn(d().data_dir() + "/disks"))
      if (VirtualSize(f) == 2 * kGiB) found.push_back(f);
    EXPECT_EQ(found.size(), 1u) << "2 GiB images under " << d().data_dir() << "/disks";
    return found.size() == 1 ? found[0] : "";
  }

  // Vault `vault` (extra `vault_props`), a daily policy and a protected item for `vm_rid`.
  // Returns the item's path.
  std::string Protect(const std::string& vault, const Json& vault_props, const std::string& vm_rid,
                      const std::string& consistency) {
    Json body = {{"location", d().region()}};
    if (!vault_props.empty()) body["properties"] = vault_props;
    auto v = d().Put(VaultPath(vault), body);
    EXPECT_EQ(v.status, 201) << v.Describe();
    auto pol =
        d().Put(VaultPath(vault) + "/backupPolicies/daily", DailyPolicyBody(30, consistency));
    EXPECT_EQ(pol.status, 201) << pol.Describe();
    const std::string item_path = VaultPath(vault) + "/protectedItems/" + vault + "-item";
    auto item = d().Put(item_path, ProtectedItemBody(vm_rid, pol.json.value("id", "")));
    EXPECT_EQ(item.status, 201) << item.Describe();
    return item_path;
  }

  // Restores `point_path` as managed disks named `prefix`-<disk>; checks the job completed and
  // the disks exist. Returns the qcow2 files the restore added to the data dir.
  std::vector<std::string> RestoreDisks(const std::string& point_path, const std::string& prefix) {
    auto before = Qcow2FilesIn(d().data_dir() + "/disks");
    Json r = FinishJob(d().Post(point_path + "/restore",
                                {{"restoreType", "RestoreDisks"}, {"diskNamePrefix", prefix}}));
    EXPECT_EQ(r["properties"].value("status", ""), "Completed") << r.dump();
    Json disks = r["properties"]["result"].value("disks", Json::object());
    EXPECT_EQ(disks.size(), 2u) << r.dump();
    for (auto& [name, id] : disks.items()) {
      auto g = d().Get(id.get<std::string>());
      EXPECT_EQ(g.status, 200) << "restored disk " << name << ": " << g.Describe();
    }
    std::vector<std::string> added;
    for (auto& f : Qcow2FilesIn(d().data_dir() + "/disks"))
      if (std::find(before.begin(), before.end(), f) == before.end()) added.push_back(f);
    return added;
  }

  // Checks that `restored` (a restored 2 GiB image) holds the same data as `source`.
  static void ExpectSameData(const std::string& source, const std::string& restored) {
    std::string out;
    int rc = RunCommand({"qemu-img", "compare", "-U", source, restored}, &out);
    EXPECT_EQ(rc, 0) << "restored data disk " << restored << " differs from " << source << ": "
                     << out;
  }

  Clock::time_point t0_;
};

// ---------------------------------------------------------------------------------------------

TEST_F(BackupFaultTest, DiskFileVanishedFailsJobAndAlerts) {
  Daemon& d = this->d();
  WebhookServer hook;
  ASSERT_GT(hook.port(), 0) << "cannot bind the webhook server on 127.0.0.1";

  TestVm vm;
  ASSERT_NO_FATAL_FAILURE(CreateDataVm("gone", &vm));
  // Stopped, so that no QEMU holds the files open.
  ASSERT_SUCCEEDED(ActAndWait("POST", vm.path + "/powerOff", Json::object(), Seconds(120)));
  ASSERT_EQ(Daemon::DomainState(vm.domain), "shut off");

  const std::string item_path =
      Protect("vgone", {{"alerts", {{"webhooks", {hook.url()}}}}}, vm.id, "CrashConsistent");
  ASSERT_FALSE(HasFailure());
  {
    auto v = d.Get(VaultPath("vgone"));
    ASSERT_EQ(v.status, 200) << v.Describe();
    ASSERT_EQ(v.json["properties"]["alerts"]["webhooks"], Json::array({hook.url()})) << v.body;
  }

  const std::string data_file = DataDiskFile();
  ASSERT_FALSE(data_file.empty());
  ASSERT_TRUE(std::filesystem::remove(data_file)) << data_file;

  auto accepted = d.Post(item_path + "/backup");
  Json job = FinishJob(accepted);
  const Json& p = job["properties"];
  ASSERT_EQ(p.value("status", ""), "Failed") << job.dump();
  const Json err = p.value("error", Json::object());
  const std::string msg = err.value("message", "");
  EXPECT_TRUE(err.value("code", "") == "DiskNotFound" || msg.find("lun0") != std::string::npos)
      << "the error must be DiskNotFound or name the disk: " << err.dump();
  EXPECT_EQ(job["operation"].value("status", ""), "Failed") << job["operation"].dump();
  EXPECT_FALSE(p.value("endTime", "").empty()) << job.dump();

  auto item = d.Get(item_path);
  ASSERT_EQ(item.status, 200) << item.Describe();
  EXPECT_EQ(item.json["properties"].value("lastBackupStatus", ""), "Failed") << item.body;
  EXPECT_EQ(item.json["properties"].value("recoveryPointCount", -1), 0) << item.body;
  EXPECT_TRUE(RecoveryPoints(item_path).empty()) << "a failed backup leaves no recovery point";

  // The webhook got exactly one POST naming the job and its error.
  auto bodies = hook.WaitFor(1, Seconds(15));
  std::this_thread::sleep_for(milliseconds(1000));  // a duplicate would arrive now
  bodies = hook.bodies();
  ASSERT_EQ(bodies.size(), 1u) << "webhook POSTs: " << Json(bodies).dump();
  Json alert = Json::parse(bodies[0], nullptr, false);
  ASSERT_TRUE(alert.is_object()) << "webhook body is not JSON: " << bodies[0];
  EXPECT_EQ(Lower(alert.value("jobId", "")), Lower(job.value("id", ""))) << alert.dump();
  ASSERT_TRUE(alert.contains("error") && alert["error"].is_object()) << alert.dump();
  EXPECT_EQ(alert["error"].value("code", ""), err.value("code", "")) << alert.dump();
  EXPECT_FALSE(alert["error"].value("message", "").empty()) << alert.dump();
  EXPECT_EQ(alert.value("operation", ""), "Backup") << alert.dump();
  EXPECT_EQ(Lower(alert.value("protectedItemId", "")), Lower(item.json.value("id", "")))
      << alert.dump();
  EXPECT_EQ(Lower(alert.value("vaultId", "")), Lower(VaultPath("vgone"))) << alert.dump();
}

// ---------------------------------------------------------------------------------------------

TEST_F(BackupFaultTest, Kill9MidBackupThenRecover) {
  Daemon& d = this->d();
  TestVm vm;
  ASSERT_NO_FATAL_FAILURE(CreateDataVm("k9", &vm));
  std::string dev;
  ASSERT_NO_FATAL_FAILURE(WaitGuestDisk(vm, "lun0", &dev));
  Guest(vm.domain, "set -e; dd if=/dev/urandom of=/dev/" + dev +
                       " bs=1M count=300 conv=fsync 2>/dev/null; sync");
  ASSERT_FALSE(HasFailure());
  const std::string data_file = DataDiskFile();
  ASSERT_FALSE(data_file.empty());

  const std::string item_path = Protect("vk9", Json::object(), vm.id, "FileSystemConsistent");
  ASSERT_FALSE(HasFailure());

  // Backup now; kill -9 the daemon while the job reads.
  auto accepted = d.Post(item_path + "/backup");
  ASSERT_EQ(accepted.status, 202) << accepted.Describe();
  const std::string job_path = accepted.json.value("id", "");
  ASSERT_FALSE(job_path.empty()) << accepted.Describe();
  Json seen;
  {
    auto deadline = Clock::now() + Seconds(180);
    bool reading = false;
    while (Clock::now() < deadline) {
      auto j = d.Get(job_path);
      if (j.status == 200 && j.json.is_object()) {
        seen = j.json;
        std::string s = seen["properties"].value("status", "");
        ASSERT_TRUE(s == "Queued" || s == "InProgress")
            << "the backup ended before it could be interrupted: " << seen.dump();
        if (s == "InProgress" &&
            seen["properties"]["progress"].value("bytesDone", uint64_t{0}) > 0) {
          reading = true;
          break;
        }
      }
      std::this_thread::sleep_for(milliseconds(30));
    }
    ASSERT_TRUE(reading) << "the job never reported bytes read: " << seen.dump();
  }
  ASSERT_TRUE(d.Kill9());
  std::fprintf(stderr, "[e2e] killed stratusd during the backup at %s\n",
               seen["properties"]["progress"].dump().c_str());
  {
    std::string info;
    bool job_active = DomainHasBackupJob(vm.domain, &info);
    std::fprintf(stderr, "[e2e] after kill -9: libvirt backup job on %s: %s\n", vm.domain.c_str(),
                 job_active ? "yes" : "no");
  }

  ASSERT_TRUE(d.Start());
  // The interrupted job: Failed, saying so.
  Json job = WaitJobEnd(job_path, Seconds(60));
  ASSERT_EQ(job["properties"].value("status", ""), "Failed") << job.dump();
  EXPECT_NE(Lower(job["properties"]["error"].value("message", "")).find("interrupted"),
            std::string::npos)
      << job.dump();
  EXPECT_TRUE(RecoveryPoints(item_path).empty()) << "the interrupted backup must leave no point";
  std::fprintf(stderr, "[e2e] item lastBackupStatus after the interrupted job: %s\n",
               d.Get(item_path).json["properties"].value("lastBackupStatus", "?").c_str());

  // The vault is consistent.
  {
    auto ver = d.Post(VaultPath("vk9") + "/verify");
    ASSERT_EQ(ver.status, 202) << ver.Describe();
    Json op = d.WaitFor(ver);
    EXPECT_SUCCEEDED(op);
    EXPECT_TRUE(op["properties"].value("problems", Json::array()).empty()) << op.dump();
  }

  // A new backup completes (the old libvirt backup job must not get in its way).
  Json next = FinishJob(d.Post(item_path + "/backup"));
  {
    std::string info;
    DomainHasBackupJob(vm.domain, &info);
    ASSERT_EQ(next["properties"].value("status", ""), "Completed")
        << next.dump() << "\nvirsh backup-dumpxml: " << info;
  }
  const std::string type = next["properties"].value("backupType", "");
  EXPECT_TRUE(type == "Full" || type == "FullDedup" || type == "Incremental") << next.dump();
  const std::string point_path = next["properties"].value("recoveryPointId", "");
  ASSERT_FALSE(point_path.empty()) << next.dump();
  EXPECT_EQ(RecoveryPoints(item_path).size(), 1u);

  auto added = RestoreDisks(point_path, "k9r");
  for (auto& f : added)
    if (VirtualSize(f) == 2 * kGiB) ExpectSameData(data_file, f);

  // Nothing of the killed job is left: no qemu-nbd, no libvirt job on the domain.
  EXPECT_TRUE(QemuNbdProcesses(d.root()).empty()) << Json(QemuNbdProcesses(d.root())).dump();
  std::string jobinfo, backupxml;
  EXPECT_FALSE(DomainHasJob(vm.domain, &jobinfo))
      << "virsh domjobinfo " << vm.domain << ": " << jobinfo;
  EXPECT_FALSE(DomainHasBackupJob(vm.domain, &backupxml))
      << "virsh backup-dumpxml " << vm.domain << ": " << backupxml;
  EXPECT_TRUE(FilesUnder(d.data_dir() + "/scratch").empty())
      << Json(FilesUnder(d.data_dir() + "/scratch")).dump();
}

// ---------------------------------------------------------------------------------------------

TEST_F(BackupFaultTest, Kill9MidGcThenRecover) {
  Daemon& d = this->d();
  TestVm vm;
  ASSERT_NO_FATAL_FAILURE(CreateDataVm("gc", &vm));
  std::string dev;
  ASSERT_NO_FATAL_FAILURE(WaitGuestDisk(vm, "lun0", &dev));
  const std::string item_path = Protect("vgc", Json::object(), vm.id, "FileSystemConsistent");
  ASSERT_FALSE(HasFailure());
  const std::string data_file = DataDiskFile();
  ASSERT_FALSE(data_file.empty());

  // Three backups, each after the guest overwrote the same 128 MiB with new random data: the
  // older points hold many chunks nobody else references.
  std::vector<std::string> point_paths;
  for (int i = 0; i < 3; ++i) {
    Guest(vm.domain, "set -e; dd if=/dev/urandom of=/dev/" + dev +
                         " bs=1M count=128 conv=fsync 2>/dev/null; sync");
    Json j = FinishJob(d.Post(item_path + "/backup"));
    ASSERT_EQ(j["properties"].value("status", ""), "Completed") << j.dump();
    point_paths.push_back(j["properties"].value("recoveryPointId", ""));
  }
  ASSERT_EQ(RecoveryPoints(item_path).size(), 3u);
  for (int i = 0; i < 2; ++i) {
    auto del = d.Act("DELETE", point_paths[i]);
    ASSERT_EQ(del.status, 200) << del.Describe();
    EXPECT_EQ(d.Get(point_paths[i]).status, 404);
  }
  ASSERT_EQ(RecoveryPoints(item_path).size(), 1u);

  auto chunk_files = [&] { return VaultChunkFiles(d.data_dir()).size(); };
  const size_t chunks_before = chunk_files();

  auto gc = d.Post(VaultPath("vgc") + "/gc");
  ASSERT_EQ(gc.status, 202) << gc.Describe();
  ASSERT_TRUE(d.Kill9());
  const size_t chunks_after_kill = chunk_files();
  std::fprintf(stderr, "[e2e] chunk files: %zu before gc, %zu after kill -9 during gc\n",
               chunks_before, chunks_after_kill);

  ASSERT_TRUE(d.Start());
  {
    Json op = d.WaitFor(gc, Seconds(60));
    std::fprintf(stderr, "[e2e] the killed gc operation after restart: %s\n", op.dump().c_str());
    EXPECT_NE(op.value("status", ""), "InProgress") << op.dump();
  }
  auto verify = [&](const char* when) {
    auto ver = d.Post(VaultPath("vgc") + "/verify");
    ASSERT_EQ(ver.status, 202) << when << ": " << ver.Describe();
    Json op = d.WaitFor(ver);
    EXPECT_SUCCEEDED(op) << when;
    EXPECT_TRUE(op["properties"].value("problems", Json::array()).empty())
        << when << ": " << op.dump();
    EXPECT_GT(op["properties"].value("chunksChecked", 0), 0) << when << ": " << op.dump();
  };
  verify("after the kill during gc");
  {
    Json op = ActAndWait("POST", VaultPath("vgc") + "/gc");
    ASSERT_SUCCEEDED(op);
    // The deleted points' chunks are gone now (whatever the killed run managed).
    EXPECT_LT(chunk_files(), chunks_before) << op.dump();
  }
  verify("after the second gc");

  // The surviving point still restores, a new backup succeeds, the newest point restores.
  {
    auto added = RestoreDisks(point_paths[2], "gcold");
    EXPECT_EQ(added.size(), 2u);
  }
  Json j = FinishJob(d.Post(item_path + "/backup"));
  ASSERT_EQ(j["properties"].value("status", ""), "Completed") << j.dump();
  auto pts = RecoveryPoints(item_path);
  ASSERT_EQ(pts.size(), 2u);
  EXPECT_EQ(Lower(pts[0].value("id", "")), Lower(j["properties"].value("recoveryPointId", "")));
  auto added = RestoreDisks(pts[0].value("id", ""), "gcnew");
  for (auto& f : added)
    if (VirtualSize(f) == 2 * kGiB) ExpectSameData(data_file, f);
  EXPECT_TRUE(QemuNbdProcesses(d.root()).empty()) << Json(QemuNbdProcesses(d.root())).dump();
}

// ---------------------------------------------------------------------------------------------

TEST_F(BackupFaultTest, CustomerKeyLockedAfterRestartWrongKeyRefused) {
  Daemon& d = this->d();
  const std::string kPass = "correct horse battery";
  const std::string kWrong = "incorrect horse battery";
  TestVm vm;
  ASSERT_NO_FATAL_FAILURE(CreateDataVm("ck", &vm));
  ASSERT_SUCCEEDED(ActAndWait("POST", vm.path + "/powerOff", Json::object(), Seconds(120)));

  std::string seen;  // every response body of this test, searched for the passphrase at the end
  auto keep = [&](const HttpResponse& r) {
    seen += r.body;
    seen += "\n";
    return r;
  };
  auto put = keep(d.Put(
      VaultPath("vck"),
      {{"location", d.region()},
       {"properties", {{"encryption", {{"keySource", "Customer"}, {"passphrase", kPass}}}}}}));
  ASSERT_EQ(put.status, 201) << put.Describe();
  EXPECT_EQ(put.json["properties"]["encryption"].value("keySource", ""), "Customer") << put.body;
  EXPECT_EQ(put.json["properties"].value("state", ""), "Unlocked") << put.body;
  auto pol = keep(d.Put(VaultPath("vck") + "/backupPolicies/daily", DailyPolicyBody()));
  ASSERT_EQ(pol.status, 201) << pol.Describe();
  const std::string item_path = VaultPath("vck") + "/protectedItems/ck";
  auto item = keep(d.Put(item_path, ProtectedItemBody(vm.id, pol.json.value("id", ""))));
  ASSERT_EQ(item.status, 201) << item.Describe();
  Json first = FinishJob(keep(d.Post(item_path + "/backup")));
  ASSERT_EQ(first["properties"].value("status", ""), "Completed") << first.dump();
  seen += first.dump();

  // A graceful restart: the key is not kept, the vault is Locked.
  ASSERT_TRUE(d.Restart());
  auto v = keep(d.Get(VaultPath("vck")));
  ASSERT_EQ(v.status, 200) << v.Describe();
  EXPECT_EQ(v.json["properties"].value("state", ""), "Locked") << v.body;
  {
    auto b = keep(d.Post(item_path + "/backup"));
    EXPECT_EQ(b.status, 409) << b.Describe();
    EXPECT_EQ(b.ErrorCode(), "VaultLocked") << b.Describe();
  }
  // A wrong passphrase: a 4xx that says so; still locked.
  {
    auto u = keep(d.Post(VaultPath("vck") + "/unlock", {{"passphrase", kWrong}}));
    EXPECT_EQ(u.status, 400) << u.Describe();
    EXPECT_EQ(u.ErrorCode(), "CustomerKeyMismatch") << u.Describe();
    EXPECT_FALSE(u.ErrorMessage().empty()) << u.Describe();
    auto still = keep(d.Get(VaultPath("vck")));
    EXPECT_EQ(still.json["properties"].value("state", ""), "Locked") << still.body;
    auto b = keep(d.Post(item_path + "/backup"));
    EXPECT_EQ(b.status, 409) << "a wrong passphrase must not unlock: " << b.Describe();
  }
  // The right one.
  {
    auto u = keep(d.Post(VaultPath("vck") + "/unlock", {{"passphrase", kPass}}));
    ASSERT_EQ(u.status, 200) << u.Describe();
    auto now = keep(d.Get(VaultPath("vck")));
    EXPECT_EQ(now.json["properties"].value("state", ""), "Unlocked") << now.body;
  }
  Json second = FinishJob(keep(d.Post(item_path + "/backup")));
  ASSERT_EQ(second["properties"].value("status", ""), "Completed") << second.dump();
  seen += second.dump();
  EXPECT_EQ(RecoveryPoints(item_path).size(), 2u);

  // The passphrase (right or wrong) is nowhere: not in any GET, not in the activity log.
  for (const std::string& path :
       {VaultPath("vck"), d.GroupPath(kFaultRg) + "/providers/Stratus.RecoveryServices/vaults",
        item_path, item_path + "/recoveryPoints", VaultPath("vck") + "/backupJobs",
        VaultPath("vck") + "/backupPolicies", d.GroupPath(kFaultRg) + "/resources",
        d.ActivityLogPath()}) {
    auto r = keep(d.Get(path));
    EXPECT_EQ(r.status, 200) << path << ": " << r.Describe();
  }
  auto log = d.Get(d.ActivityLogPath());
  ASSERT_EQ(log.status, 200) << log.Describe();
  size_t unlocks = 0;
  for (auto& e : log.json["value"])
    if (Lower(e.value("operationName", "")).find("unlock") != std::string::npos ||
        Lower(e.value("resourceId", "")).find("/unlock") != std::string::npos)
      ++unlocks;
  EXPECT_GE(unlocks, 2u) << "both unlock attempts are writes and must be logged: " << log.body;
  for (const std::string& secret : {kPass, kWrong}) {
    EXPECT_EQ(seen.find(secret), std::string::npos)
        << "the passphrase '" << secret << "' appears in an API response";
    EXPECT_EQ(log.body.find(secret), std::string::npos)
        << "the passphrase '" << secret << "' appears in the activity log";
    EXPECT_EQ(ReadWholeFile(d.root() + "/stratusd.log").find(secret), std::string::npos)
        << "the passphrase '" << secret << "' appears in the daemon's log";
  }
}

}  // namespace
}  // namespace stratus::e2e
