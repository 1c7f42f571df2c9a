// Integration tests of LibvirtHypervisor against the host's real libvirtd (qemu:///system).
// Skipped when libvirtd does not answer (scripts/ensure-libvirtd.sh starts it).
//
// Guests without an OS boot SeaBIOS from an empty disk and loop there: enough for lifecycle,
// hot-plug, I/O limits and push-mode backups. The tiny Linux guest (build/guest/tiny, built by
// guest/build-tiny-image.sh) covers the guest agent and live disk detach when present.
#include "compute/libvirt_hypervisor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libnbd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <ostream>
#include <set>
#include <thread>

#include "core/fs.h"
#include "core/subprocess.h"
#include "core/uuid.h"
#include "storage/qcow2_disk_engine.h"

namespace stratus::compute {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Clock = std::chrono::steady_clock;

// Where the tiny guest image lives: $STRATUS_TINY_GUEST_DIR, else <build>/guest/tiny next to
// this test binary (<build>/tests/compute_tests).
std::string TinyGuestDir() {
  if (const char* env = std::getenv("STRATUS_TINY_GUEST_DIR")) return env;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  for (auto dir = exe.parent_path(); !dir.empty() && dir != dir.root_path();
       dir = dir.parent_path()) {
    auto cand = dir / "guest" / "tiny";
    if (std::filesystem::exists(cand / "rootfs.qcow2")) return cand.string();
  }
  return {};
}

class LibvirtHypervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LibvirtHypervisor::Options o;
    o.uri = "qemu:///system";
    o.xml.domain_type = "qemu";
    o.detach_timeout_ms = 1000;  // guests without an OS never release a disk
    o.disk_engine = &engine_;
    auto h = LibvirtHypervisor::Open(o);
    if (!h.ok()) GTEST_SKIP() << "libvirtd not reachable: " << h.status().ToString();
    hv_ = std::move(h).value();
    prefix_ = "stratus-test-" + RandomHex(4) + "-";
    dir_ = "/var/tmp/stratus-hv-test-" + RandomHex(6);
    ASSERT_TRUE(MakeDirs(dir_, 0755).ok());
    ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
  }

  void TearDown() override {
    if (hv_) {
      for (const auto& name : made_) {
        Status st = hv_->PowerOff(name);
        if (!st.ok() && st.code() != StatusCode::kNotFound) ADD_FAILURE() << st.ToString();
        st = hv_->Undefine(name);
        if (!st.ok()) ADD_FAILURE() << st.ToString();
      }
    }
    if (!dir_.empty()) RemoveTree(dir_);
  }

  std::string NewName(const std::string& suffix) {
    made_.push_back(prefix_ + suffix);
    return made_.back();
  }

  std::string Path(const std::string& file) const { return JoinPath(dir_, file); }

  std::string MakeDisk(const std::string& file, const std::string& size = "64M") {
    std::string path = Path(file);
    auto r = RunChecked({"qemu-img", "create", "-q", "-f", "qcow2", path, size});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return path;
  }

  void WritePattern(const std::string& path, const std::string& pattern,
                    const std::string& offset) {
    auto r = RunChecked(
        {"qemu-io", "-f", "qcow2", "-c", "write -P " + pattern + " " + offset + " 1M", path});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  // Whether two images hold the same guest-visible content (-U: the source may be in use).
  static bool SameContent(const std::string& a, const std::string& b) {
    auto r = RunProcess({"qemu-img", "compare", "-U", a, b});
    EXPECT_TRUE(r.ok());
    if (r.ok() && r->exit_code != 0) ADD_FAILURE() << r->out << r->err;
    return r.ok() && r->exit_code == 0;
  }

  DomainSpec Spec(const std::string& name, const std::vector<std::string>& disk_paths) {
    DomainSpec s;
    s.name = name;
    s.uuid = NewUuid();
    s.vcpus = 1;
    s.memory_mib = 128;
    char dev = 'a';
    for (const auto& p : disk_paths) {
      DiskAttachment d;
      d.target_dev = std::string("vd") + dev++;
      d.path = p;
      d.serial = "ser-" + d.target_dev;
      s.disks.push_back(d);
    }
    s.console_log_path = Path(name + ".console.log");
    s.metadata_json = Json{{"resourceId", "/vms/" + name}, {"quote", "<&'\">"}}.dump();
    return s;
  }

  ParsedDomain Xml(const std::string& name, bool inactive) {
    auto xml = hv_->DomainXmlDesc(name, inactive);
    EXPECT_TRUE(xml.ok()) << xml.status().ToString();
    if (!xml.ok()) return {};
    auto p = ParseDomainXml(*xml);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? *p : ParsedDomain{};
  }

  storage::Qcow2DiskEngine engine_;
  std::unique_ptr<LibvirtHypervisor> hv_;
  std::string prefix_;
  std::string dir_;
  std::vector<std::string> made_;
};

std::string Console(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return "(no console log: " + text.status().message() + ")";
  return text->size() > 4000 ? text->substr(text->size() - 4000) : *text;
}

// Runs `script` with /bin/sh in the guest through the agent; returns its exit code.
Result<int> GuestShell(Hypervisor& hv, const std::string& name, const std::string& script) {
  Json exec = {{"execute", "guest-exec"},
               {"arguments", {{"path", "/bin/sh"}, {"arg", {"-c", script}}}}};
  ASSIGN_OR_RETURN(Json started, hv.AgentCommand(name, exec, 5));
  Json status = {{"execute", "guest-exec-status"}, {"arguments", {{"pid", started["pid"]}}}};
  for (int i = 0; i < 100; ++i) {
    ASSIGN_OR_RETURN(Json st, hv.AgentCommand(name, status, 5));
    if (st.value("exited", false)) return st.value("exitcode", -1);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Unavailable("guest command did not finish: " + script);
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST_F(LibvirtHypervisorTest, LifecycleInfoAndList) {
  std::string a = NewName("a");
  std::string b = NewName("b");
  DomainSpec sa = Spec(a, {MakeDisk("a.qcow2")});
  DomainSpec sb = Spec(b, {MakeDisk("b.qcow2")});
  ASSERT_TRUE(hv_->Define(sa).ok());
  ASSERT_TRUE(hv_->Define(sb).ok());
  // Define again replaces the definition (same UUID); another UUID under the name conflicts.
  sa.memory_mib = 160;
  ASSERT_TRUE(hv_->Define(sa).ok());
  DomainSpec other = sa;
  other.uuid = NewUuid();
  EXPECT_EQ(hv_->Define(other).code(), StatusCode::kConflict);

  auto info = hv_->Info(a);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->name, a);
  EXPECT_EQ(info->uuid, sa.uuid);
  EXPECT_EQ(info->state, PowerState::kStopped);
  EXPECT_EQ(info->boot_time_ms, 0);
  EXPECT_EQ(info->metadata_json, sa.metadata_json);

  int64_t before_start = NowMs();
  ASSERT_TRUE(hv_->Start(a).ok());
  EXPECT_TRUE(hv_->Start(a).ok()) << "Start of a running domain is OK";
  info = hv_->Info(a);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->state, PowerState::kRunning);
  EXPECT_GT(info->boot_time_ms, 0);
  EXPECT_GE(info->boot_time_ms, before_start - 2000);
  EXPECT_LE(info->boot_time_ms, NowMs() + 2000);
  EXPECT_EQ(info->metadata_json, sa.metadata_json);
  auto again = hv_->Info(a);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->boot_time_ms, info->boot_time_ms) << "boot time is stable";

  auto list = hv_->List(prefix_);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, a);
  EXPECT_EQ((*list)[0].state, PowerState::kRunning);
  EXPECT_EQ((*list)[1].name, b);
  EXPECT_EQ((*list)[1].state, PowerState::kStopped);
  EXPECT_EQ((*list)[1].metadata_json, sb.metadata_json);
  auto only_b = hv_->List(b);
  ASSERT_TRUE(only_b.ok());
  ASSERT_EQ(only_b->size(), 1u);

  EXPECT_EQ(hv_->Undefine(a).code(), StatusCode::kConflict) << "running domains stay defined";
  EXPECT_TRUE(hv_->Reboot(a).ok()) << "the request is sent even if no OS acts on it";

  // No OS answers ACPI: Shutdown ends in a hard power-off after the timeout.
  ASSERT_TRUE(hv_->Shutdown(a, 300).ok());
  info = hv_->Info(a);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, PowerState::kStopped);
  EXPECT_EQ(info->boot_time_ms, 0);
  EXPECT_TRUE(hv_->Shutdown(a, 300).ok()) << "already stopped";

  ASSERT_TRUE(hv_->Start(a).ok());
  ASSERT_TRUE(hv_->PowerOff(a).ok());
  EXPECT_EQ(hv_->Info(a)->state, PowerState::kStopped);
  EXPECT_TRUE(hv_->PowerOff(a).ok()) << "already stopped";
  EXPECT_EQ(hv_->Reboot(a).code(), StatusCode::kConflict) << "not running";

  // Started paused: QEMU is up, the guest runs nothing until Start resumes it.
  ASSERT_TRUE(hv_->StartPaused(b).ok());
  EXPECT_EQ(hv_->Info(b)->state, PowerState::kPaused);
  EXPECT_TRUE(hv_->StartPaused(b).ok()) << "active already";
  EXPECT_EQ(hv_->Info(b)->state, PowerState::kPaused);
  ASSERT_TRUE(hv_->Start(b).ok());
  EXPECT_EQ(hv_->Info(b)->state, PowerState::kRunning);
  EXPECT_TRUE(hv_->StartPaused(b).ok()) << "running: nothing to do";
  EXPECT_EQ(hv_->Info(b)->state, PowerState::kRunning);
  ASSERT_TRUE(hv_->PowerOff(b).ok());

  ASSERT_TRUE(hv_->Undefine(a).ok());
  EXPECT_EQ(hv_->Info(a).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(hv_->Undefine(a).ok()) << "absent is OK";
  list = hv_->List(prefix_);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 1u);
}

TEST_F(LibvirtHypervisorTest, UnknownDomainIsNotFound) {
  std::string name = prefix_ + "missing";
  EXPECT_EQ(hv_->Info(name).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(hv_->Start(name).code(), StatusCode::kNotFound);
  EXPECT_EQ(hv_->StartPaused(name).code(), StatusCode::kNotFound);
  EXPECT_EQ(hv_->Shutdown(name, 100).code(), StatusCode::kNotFound);
  EXPECT_EQ(hv_->PowerOff(name).code(), StatusCode::kNotFound);
  EXPECT_EQ(hv_->Reboot(name).code(), StatusCode::kNotFound);
  EXPECT_EQ(hv_->SetIoTune(name, "vda", {}).code(), StatusCode::kNotFound);
  EXPECT_EQ(hv_->DetachDisk(name, "vdb").code(), StatusCode::kNotFound);
  EXPECT_EQ(hv_->AgentCommand(name, {{"execute", "guest-ping"}}, 1).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(hv_->SnapshotDisks(name, {{"vda", Path("x.qcow2")}}, false).status().code(),
            StatusCode::kNotFound);
  auto st = hv_->Info(name).status();
  EXPECT_THAT(st.message(), HasSubstr(name));
  EXPECT_TRUE(hv_->Undefine(name).ok());
  auto list = hv_->List(name);
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

// A start meets a disk whose write lock another process holds for a moment (a replication
// cycle's qemu-img adding a bitmap to a stopped VM's disk): it waits for it, up to 3 s; a lock
// held longer fails the start with QEMU's message.
TEST_F(LibvirtHypervisorTest, StartWaitsOutADiskLockedForAMoment) {
  std::string name = NewName("locked");
  std::string disk = MakeDisk("locked.qcow2");
  ASSERT_TRUE(hv_->Define(Spec(name, {disk})).ok());
  // qemu-io holds the image open read-write (its write lock) for `ms`.
  auto locked = [&] {
    auto info = RunProcess({"qemu-img", "info", disk});
    return info.ok() && info->exit_code != 0;
  };
  auto hold = [&](int ms) {
    for (int i = 0; i < 100 && locked(); ++i)  // a QEMU that was powered off lets go first
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::thread t([disk, ms] {
      auto r = RunProcess({"qemu-io", "-f", "qcow2", "-c", "sleep " + std::to_string(ms), disk});
      EXPECT_TRUE(r.ok() && r->exit_code == 0) << (r.ok() ? r->out + r->err : "");
    });
    // qemu-io opens it in well under 300 ms (asking earlier, qemu-img info's own shared lock
    // could keep qemu-io from taking the write lock).
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_TRUE(locked());
    return t;
  };
  std::thread held = hold(1000);
  Status st = hv_->Start(name);
  held.join();
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_TRUE(hv_->PowerOff(name).ok());
  held = hold(4000);
  st = hv_->StartPaused(name);
  held.join();
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("lock"));
  EXPECT_EQ(hv_->Info(name)->state, PowerState::kStopped);
}

TEST_F(LibvirtHypervisorTest, HotAttachIoTuneAndDetach) {
  std::string name = NewName("disks");
  ASSERT_TRUE(hv_->Define(Spec(name, {MakeDisk("os.qcow2")})).ok());
  ASSERT_TRUE(hv_->Start(name).ok());

  DiskAttachment data;
  data.target_dev = "vdb";
  data.path = MakeDisk("data.qcow2", "16M");
  data.serial = "data-1";
  ASSERT_TRUE(hv_->AttachDisk(name, data).ok());
  EXPECT_TRUE(hv_->AttachDisk(name, data).ok()) << "the same disk again: idempotent";
  DiskAttachment other = data;
  other.path = MakeDisk("other.qcow2", "16M");
  EXPECT_EQ(hv_->AttachDisk(name, other).code(), StatusCode::kConflict) << "target in use";
  ASSERT_NE(FindDisk(Xml(name, false), "vdb"), nullptr) << "attached live";
  const ParsedDisk* persistent = FindDisk(Xml(name, true), "vdb");
  ASSERT_NE(persistent, nullptr) << "attached persistently";

  // I/O limits: live and persistent, read back from libvirt's XML.
  IoTune tune{250, 8 << 20};
  ASSERT_TRUE(hv_->SetIoTune(name, "vdb", tune).ok());
  const ParsedDisk* live = FindDisk(Xml(name, false), "vdb");
  ASSERT_NE(live, nullptr);
  EXPECT_EQ(live->iotune, tune);
  EXPECT_EQ(FindDisk(Xml(name, true), "vdb")->iotune, tune);
  ASSERT_TRUE(hv_->SetIoTune(name, "vdb", {}).ok());
  EXPECT_EQ(FindDisk(Xml(name, false), "vdb")->iotune, IoTune{});
  EXPECT_EQ(hv_->SetIoTune(name, "vdq", tune).code(), StatusCode::kNotFound);

  // SeaBIOS does not handle ACPI hot-unplug: live detach fails clearly, definition unchanged.
  Status st = hv_->DetachDisk(name, "vdb");
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_THAT(st.message(), HasSubstr("did not release"));
  EXPECT_NE(FindDisk(Xml(name, true), "vdb"), nullptr);

  // Stopped: detach edits the definition.
  ASSERT_TRUE(hv_->PowerOff(name).ok());
  ASSERT_TRUE(hv_->DetachDisk(name, "vdb").ok());
  EXPECT_EQ(FindDisk(Xml(name, true), "vdb"), nullptr);
  EXPECT_EQ(hv_->DetachDisk(name, "vdb").code(), StatusCode::kNotFound);

  // Stopped: attach and I/O limits go to the definition only.
  ASSERT_TRUE(hv_->AttachDisk(name, data).ok());
  ASSERT_TRUE(hv_->SetIoTune(name, "vdb", {0, 4096}).ok());
  EXPECT_EQ(FindDisk(Xml(name, true), "vdb")->iotune, (IoTune{0, 4096}));
  ASSERT_TRUE(hv_->Start(name).ok()) << "the stored definition boots";
  EXPECT_EQ(FindDisk(Xml(name, false), "vdb")->iotune, (IoTune{0, 4096}));
}

TEST_F(LibvirtHypervisorTest, SnapshotOfRunningDomainCopiesDisksAtOneInstant) {
  std::string name = NewName("snap");
  std::string os = MakeDisk("os.qcow2");
  std::string data = MakeDisk("data.qcow2", "32M");
  std::string scratch = MakeDisk("scratch.qcow2", "16M");
  WritePattern(os, "0xab", "0");
  WritePattern(data, "0xcd", "4M");
  ASSERT_TRUE(hv_->Define(Spec(name, {os, data, scratch})).ok());
  ASSERT_TRUE(hv_->Start(name).ok());

  std::vector<SnapshotTarget> targets = {{"vda", Path("snap-os.qcow2")},
                                         {"vdb", Path("snap-data.qcow2")}};
  // No guest agent answers: quiesce is skipped and reported as not frozen.
  auto frozen = hv_->SnapshotDisks(name, targets, /*quiesce=*/true);
  ASSERT_TRUE(frozen.ok()) << frozen.status().ToString();
  EXPECT_FALSE(*frozen);
  EXPECT_TRUE(PathExists(targets[0].dest_path));
  EXPECT_TRUE(PathExists(targets[1].dest_path));
  std::set<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    if (e.path().extension() != ".log") files.insert(e.path().filename().string());
  }
  EXPECT_EQ(files, (std::set<std::string>{"os.qcow2", "data.qcow2", "scratch.qcow2",
                                          "snap-os.qcow2", "snap-data.qcow2"}))
      << "only the listed disks are copied";
  EXPECT_TRUE(SameContent(os, targets[0].dest_path));
  EXPECT_TRUE(SameContent(data, targets[1].dest_path));
  auto fmt = RunChecked({"qemu-img", "info", "-U", "--output=json", targets[1].dest_path});
  ASSERT_TRUE(fmt.ok());
  EXPECT_EQ(Json::parse(*fmt)["format"], "qcow2");
  EXPECT_EQ(Json::parse(*fmt)["virtual-size"], 32 << 20);

  // The domain keeps running, and a second snapshot works (no job left behind).
  EXPECT_EQ(hv_->Info(name)->state, PowerState::kRunning);
  auto again = hv_->SnapshotDisks(name, {{"vdb", Path("snap-data-2.qcow2")}}, false);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(SameContent(data, Path("snap-data-2.qcow2")));

  // Existing destination, unknown disk.
  EXPECT_EQ(hv_->SnapshotDisks(name, targets, false).status().code(), StatusCode::kConflict);
  auto bad = hv_->SnapshotDisks(name, {{"vdz", Path("z.qcow2")}}, false);
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(PathExists(Path("z.qcow2")));
}

TEST_F(LibvirtHypervisorTest, SnapshotOfStoppedDomainCopiesOffline) {
  std::string name = NewName("offline");
  std::string os = MakeDisk("os.qcow2");
  std::string data = MakeDisk("data.qcow2", "32M");
  WritePattern(os, "0x11", "1M");
  WritePattern(data, "0x22", "0");
  ASSERT_TRUE(hv_->Define(Spec(name, {os, data})).ok());
  std::vector<SnapshotTarget> targets = {{"vda", Path("s-os.qcow2")},
                                         {"vdb", Path("s-data.qcow2")}};
  auto frozen = hv_->SnapshotDisks(name, targets, /*quiesce=*/true);
  ASSERT_TRUE(frozen.ok()) << frozen.status().ToString();
  EXPECT_FALSE(*frozen);
  EXPECT_TRUE(SameContent(os, targets[0].dest_path));
  EXPECT_TRUE(SameContent(data, targets[1].dest_path));
}

TEST_F(LibvirtHypervisorTest, AgentCommandWithoutAgentFailsQuickly) {
  std::string name = NewName("noagent");
  ASSERT_TRUE(hv_->Define(Spec(name, {MakeDisk("os.qcow2")})).ok());
  EXPECT_EQ(hv_->AgentCommand(name, {{"execute", "guest-ping"}}, 2).status().code(),
            StatusCode::kUnavailable)
      << "not running";
  ASSERT_TRUE(hv_->Start(name).ok());
  auto start = Clock::now();
  auto r = hv_->AgentCommand(name, {{"execute", "guest-ping"}}, 2);
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr(name));
  // Not a latency assertion: a hang would exceed the 2 s agent timeout by far.
  EXPECT_LT(elapsed, std::chrono::seconds(20));
  EXPECT_EQ(hv_->AgentCommand(name, Json{{"arguments", {}}}, 2).status().code(),
            StatusCode::kInvalidArgument);
}

// Needs the tiny Linux guest (guest/build-tiny-image.sh); skipped without it.
TEST_F(LibvirtHypervisorTest, TinyGuestAgentAndLiveDetach) {
  std::string img = TinyGuestDir();
  if (img.empty()) GTEST_SKIP() << "tiny guest image not built (build/guest/tiny)";
  std::string cmdline = "console=ttyS0 root=/dev/vda";
  if (auto meta = ReadFile(JoinPath(img, "image.json")); meta.ok()) {
    auto j = ParseJson(*meta);
    if (j.ok() && j->contains("cmdline")) cmdline = (*j)["cmdline"].get<std::string>();
  }
  // PCI hot-plug on the i440fx machine is ACPI-based: the guest must use ACPI for PCI.
  for (size_t p; (p = cmdline.find("pci=noacpi")) != std::string::npos;) {
    cmdline.erase(p, std::string("pci=noacpi").size());
  }
  // Kernel/initrd are labelled for QEMU by libvirt; copy them so the build tree stays untouched.
  std::string os = Path("os.qcow2");
  for (auto [from, to] : {std::pair{"vmlinuz", "vmlinuz"}, std::pair{"initrd.img", "initrd.img"}}) {
    ASSERT_TRUE(RunChecked({"cp", JoinPath(img, from), Path(to)}).ok());
  }
  ASSERT_TRUE(
      RunChecked({"qemu-img", "convert", "-O", "qcow2", JoinPath(img, "rootfs.qcow2"), os}).ok());

  std::string name = NewName("tiny");
  DomainSpec spec = Spec(name, {os});
  spec.memory_mib = 256;
  spec.kernel = Path("vmlinuz");
  spec.initrd = Path("initrd.img");
  spec.cmdline = cmdline;
  ASSERT_TRUE(hv_->Define(spec).ok());
  ASSERT_TRUE(hv_->Start(name).ok());

  auto deadline = Clock::now() + std::chrono::seconds(60);
  Result<Json> ping = Unavailable("not tried");
  while (Clock::now() < deadline) {
    ping = hv_->AgentCommand(name, {{"execute", "guest-ping"}}, 2);
    if (ping.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_TRUE(ping.ok()) << ping.status().ToString() << "\nconsole:\n"
                         << Console(spec.console_log_path);

  // Quiesced snapshot: the agent freezes the guest's file systems and thaws them again.
  auto frozen = hv_->SnapshotDisks(name, {{"vda", Path("snap-os.qcow2")}}, /*quiesce=*/true);
  ASSERT_TRUE(frozen.ok()) << frozen.status().ToString();
  EXPECT_TRUE(*frozen);
  auto fs = hv_->AgentCommand(name, {{"execute", "guest-fsfreeze-status"}}, 5);
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  EXPECT_EQ(*fs, "thawed");

  // Quiesced pull backup: frozen at the instant, thawed right after.
  PullBackupSpec pull;
  pull.target_devs = {"vda"};
  pull.checkpoint = "ck-1";
  pull.socket_path = Path("nbd/backup.sock");
  pull.scratch_dir = Path("scratch");
  pull.quiesce = true;
  auto backup = hv_->BeginPullBackup(name, pull);
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  EXPECT_TRUE(backup->frozen);
  fs = hv_->AgentCommand(name, {{"execute", "guest-fsfreeze-status"}}, 5);
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  EXPECT_EQ(*fs, "thawed");
  ASSERT_TRUE(hv_->EndPullBackup(name).ok());

  // Hot-plug a disk, let the guest see it, then unplug it live (with checkpoints covering it).
  LibvirtHypervisor::Options o;
  o.detach_timeout_ms = 30000;
  o.disk_engine = &engine_;
  auto opened = LibvirtHypervisor::Open(o);
  ASSERT_TRUE(opened.ok());
  LibvirtHypervisor& hv = **opened;
  DiskAttachment data;
  data.target_dev = "vdb";
  data.path = MakeDisk("data.qcow2", "16M");
  data.serial = "hot-data";
  ASSERT_TRUE(hv.AttachDisk(name, data).ok());
  bool seen = false;
  for (int i = 0; i < 60 && !seen; ++i) {
    auto rc = GuestShell(hv, name, "grep -q hot-data /sys/block/vdb/serial");
    ASSERT_TRUE(rc.ok()) << rc.status().ToString();
    seen = *rc == 0;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  EXPECT_TRUE(seen) << "the guest never saw vdb";
  pull.target_devs = {"vda", "vdb"};
  pull.checkpoint = "ck-2";
  pull.incremental_from = "ck-1";
  pull.quiesce = false;
  backup = hv.BeginPullBackup(name, pull);
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  EXPECT_NE(backup->disks[0].bitmap, "");
  EXPECT_EQ(backup->disks[1].bitmap, "") << "vdb is newer than ck-1";
  ASSERT_TRUE(hv.EndPullBackup(name).ok());
  Status detached = hv.DetachDisk(name, "vdb");
  ASSERT_TRUE(detached.ok()) << detached.ToString() << "\nconsole:\n"
                             << Console(spec.console_log_path);
  EXPECT_EQ(FindDisk(Xml(name, false), "vdb"), nullptr);
  EXPECT_EQ(FindDisk(Xml(name, true), "vdb"), nullptr);
  auto gone = GuestShell(hv, name, "test ! -e /sys/block/vdb");
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  EXPECT_EQ(*gone, 0);

  // A guest with an OS powers off on ACPI well before the timeout.
  ASSERT_TRUE(hv.Shutdown(name, 30000).ok());
  EXPECT_EQ(hv.Info(name)->state, PowerState::kStopped);
  EXPECT_THAT(Console(spec.console_log_path), HasSubstr("STRATUS-GUEST-READY"));
}

// ---------------------------------------------------------------------------------------------
// Pull backups and checkpoints. The guests run no OS (SeaBIOS idles after reading the boot
// sector), so nothing writes to the disks unless the test does, through QEMU's HMP `qemu-io`.

struct NbdCloser {
  void operator()(nbd_handle* h) const {
    if (h != nullptr) nbd_close(h);
  }
};
using Nbd = std::unique_ptr<nbd_handle, NbdCloser>;

// Connects to `export_name` on the unix socket, asking for `meta_context` unless empty.
Nbd ConnectNbd(const std::string& socket, const std::string& export_name,
               const std::string& meta_context = {}) {
  Nbd h(nbd_create());
  if (!h) {
    ADD_FAILURE() << "nbd_create: " << nbd_get_error();
    return nullptr;
  }
  if (nbd_set_export_name(h.get(), export_name.c_str()) == -1 ||
      (!meta_context.empty() && nbd_add_meta_context(h.get(), meta_context.c_str()) == -1) ||
      nbd_connect_unix(h.get(), socket.c_str()) == -1) {
    ADD_FAILURE() << "cannot connect to " << export_name << " on " << socket << ": "
                  << nbd_get_error();
    return nullptr;
  }
  return h;
}

std::string NbdRead(nbd_handle* h, uint64_t offset, uint64_t length) {
  std::string out(length, '\0');
  constexpr uint64_t kChunk = 4 << 20;
  for (uint64_t done = 0; done < length;) {
    uint64_t n = std::min(kChunk, length - done);
    if (nbd_pread(h, out.data() + done, n, offset + done, 0) == -1) {
      ADD_FAILURE() << "nbd_pread at " << offset + done << ": " << nbd_get_error();
      return {};
    }
    done += n;
  }
  return out;
}

struct Extent {
  uint64_t offset;
  uint64_t length;
  bool operator==(const Extent&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Extent& e) {
  return os << "[" << e.offset << ", +" << e.length << ")";
}

// The extents of the whole export that `context` reports with flag 1 (dirty / hole),
// coalesced.
std::vector<Extent> FlaggedExtents(nbd_handle* h, const std::string& context) {
  struct Acc {
    const std::string* context = nullptr;
    uint64_t next = 0;
    std::vector<Extent> out;
  } acc;
  acc.context = &context;
  int64_t size = nbd_get_size(h);
  EXPECT_GT(size, 0) << nbd_get_error();
  while (acc.next < static_cast<uint64_t>(size)) {
    uint64_t before = acc.next;
    nbd_extent_callback cb{};
    cb.user_data = &acc;
    cb.callback = [](void* user, const char* metacontext, uint64_t offset, uint32_t* entries,
                     size_t n, int* error) -> int {
      auto* a = static_cast<Acc*>(user);
      if (*a->context != metacontext) return 0;
      for (size_t i = 0; i + 1 < n; i += 2) {
        uint64_t len = entries[i];
        if ((entries[i + 1] & 1) != 0) {
          if (!a->out.empty() && a->out.back().offset + a->out.back().length == offset) {
            a->out.back().length += len;
          } else {
            a->out.push_back({offset, len});
          }
        }
        offset += len;
      }
      a->next = offset;
      return 0;
    };
    uint64_t count = std::min<uint64_t>(static_cast<uint64_t>(size) - acc.next, 1u << 30);
    if (nbd_block_status(h, count, acc.next, cb, 0) == -1) {
      ADD_FAILURE() << "nbd_block_status: " << nbd_get_error();
      break;
    }
    if (acc.next <= before) {
      ADD_FAILURE() << "block status made no progress at " << before;
      break;
    }
  }
  return acc.out;
}

class LibvirtHypervisorBackupTest : public LibvirtHypervisorTest {
 protected:
  PullBackupSpec Backup(const std::vector<std::string>& devs, const std::string& checkpoint,
                        const std::string& from = {}) {
    PullBackupSpec s;
    s.target_devs = devs;
    s.checkpoint = checkpoint;
    s.incremental_from = from;
    s.socket_path = Path("nbd/backup.sock");
    s.scratch_dir = Path("scratch");
    return s;
  }

  // Guest-visible content of an image (-U: the domain may be using it).
  std::string RawContent(const std::string& image) {
    std::string raw = image + ".raw";
    auto r = RunChecked({"qemu-img", "convert", "-U", "-O", "raw", image, raw});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    auto data = ReadFile(raw);
    EXPECT_TRUE(data.ok()) << data.status().ToString();
    RemoveFile(raw);
    return data.ok() ? *data : std::string();
  }

  // Writes `pattern` into the running domain's disk `alias` (virtio-disk<N>) from inside QEMU,
  // as a guest would.
  void GuestWrite(const std::string& name, const std::string& alias, const std::string& pattern,
                  const std::string& offset, const std::string& length) {
    std::string cmd = "qemu-io -d /machine/peripheral/" + alias + "/virtio-backend \"write -P " +
                      pattern + " " + offset + " " + length + "\"";
    auto out =
        RunChecked({"virsh", "-c", "qemu:///system", "qemu-monitor-command", name, "--hmp", cmd});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    // qemu-io reports success on QEMU's stdout (the domain log); only errors come back here.
    ASSERT_THAT(*out, Not(HasSubstr("rror"))) << *out;
  }

  std::set<std::string> Bitmaps(const std::string& image) {
    auto out = RunChecked({"qemu-img", "info", "-U", "--output=json", image});
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    std::set<std::string> names;
    if (!out.ok()) return names;
    Json info = Json::parse(*out);
    for (const auto& b : info["format-specific"]["data"].value("bitmaps", Json::array())) {
      names.insert(b["name"].get<std::string>());
    }
    return names;
  }

  std::vector<std::string> Checkpoints(const std::string& name) {
    auto list = hv_->ListCheckpoints(name);
    EXPECT_TRUE(list.ok()) << list.status().ToString();
    return list.ok() ? *list : std::vector<std::string>{};
  }

  std::set<std::string> FilesIn(const std::string& dir) {
    std::set<std::string> files;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      files.insert(e.path().filename().string());
    }
    return files;
  }
};

TEST_F(LibvirtHypervisorBackupTest, FullThenIncrementalExports) {
  std::string name = NewName("pull");
  std::string os = MakeDisk("os.qcow2");
  std::string data = MakeDisk("data.qcow2", "32M");
  std::string other = MakeDisk("other.qcow2", "16M");
  WritePattern(os, "0xab", "0");
  WritePattern(data, "0xcd", "4M");
  ASSERT_TRUE(hv_->Define(Spec(name, {os, data, other})).ok());
  ASSERT_TRUE(hv_->Start(name).ok());

  // Full export of two of the three disks; no agent answers, so the instant is not frozen.
  PullBackupSpec full = Backup({"vda", "vdb"}, "ck-1");
  full.quiesce = true;
  auto b = hv_->BeginPullBackup(name, full);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_FALSE(b->frozen);
  EXPECT_EQ(b->socket_path, full.socket_path);
  ASSERT_EQ(b->disks.size(), 2u);
  EXPECT_EQ(b->disks[0].target_dev, "vda");
  EXPECT_EQ(b->disks[0].bitmap, "") << "full export";
  EXPECT_EQ(b->disks[0].size_bytes, 64u << 20);
  EXPECT_EQ(b->disks[1].target_dev, "vdb");
  EXPECT_EQ(b->disks[1].size_bytes, 32u << 20);
  const std::vector<std::string> images = {os, data};
  for (size_t i = 0; i < 2; ++i) {
    Nbd h = ConnectNbd(b->socket_path, b->disks[i].export_name);
    ASSERT_TRUE(h);
    EXPECT_EQ(nbd_get_size(h.get()), static_cast<int64_t>(b->disks[i].size_bytes));
    std::string got = NbdRead(h.get(), 0, b->disks[i].size_bytes);
    EXPECT_TRUE(got == RawContent(images[i])) << b->disks[i].target_dev << " differs";
  }
  {
    Nbd h = ConnectNbd(b->socket_path, b->disks[1].export_name);
    ASSERT_TRUE(h);
    EXPECT_EQ(NbdRead(h.get(), 4 << 20, 4096), std::string(4096, '\xcd'));
  }
  EXPECT_EQ(hv_->BeginPullBackup(name, Backup({"vda"}, "ck-x")).status().code(),
            StatusCode::kConflict)
      << "one backup job at a time";

  ASSERT_TRUE(hv_->EndPullBackup(name).ok());
  EXPECT_FALSE(PathExists(full.socket_path)) << "the socket is gone";
  EXPECT_TRUE(FilesIn(full.scratch_dir).empty()) << "scratch files are gone";
  {
    Nbd h(nbd_create());
    EXPECT_EQ(nbd_connect_unix(h.get(), full.socket_path.c_str()), -1) << "nobody serves";
  }
  EXPECT_TRUE(hv_->EndPullBackup(name).ok()) << "no job: OK";
  EXPECT_EQ(Checkpoints(name), std::vector<std::string>{"ck-1"});
  EXPECT_EQ(hv_->Info(name)->state, PowerState::kRunning);

  // Incremental with nothing written since ck-1: a bitmap with no dirty block.
  auto inc = hv_->BeginPullBackup(name, Backup({"vda", "vdb"}, "ck-2", "ck-1"));
  ASSERT_TRUE(inc.ok()) << inc.status().ToString();
  ASSERT_EQ(inc->disks.size(), 2u);
  for (const auto& disk : inc->disks) {
    ASSERT_NE(disk.bitmap, "") << disk.target_dev;
    std::string ctx = "qemu:dirty-bitmap:" + disk.bitmap;
    Nbd h = ConnectNbd(inc->socket_path, disk.export_name, ctx);
    ASSERT_TRUE(h);
    EXPECT_EQ(nbd_can_meta_context(h.get(), ctx.c_str()), 1) << ctx;
    EXPECT_TRUE(FlaggedExtents(h.get(), ctx).empty()) << disk.target_dev;
  }
  // A write after the instant: the export still shows the disk as it was at the instant
  // (QEMU copies the old blocks to the scratch file first).
  Nbd vdb = ConnectNbd(inc->socket_path, inc->disks[1].export_name);
  ASSERT_TRUE(vdb);
  GuestWrite(name, "virtio-disk1", "0x77", "8M", "64k");
  EXPECT_EQ(NbdRead(vdb.get(), 8 << 20, 64 << 10), std::string(64 << 10, '\0'));
  vdb.reset();
  ASSERT_TRUE(hv_->EndPullBackup(name).ok());

  // The next incremental backup sees exactly that write.
  auto next = hv_->BeginPullBackup(name, Backup({"vda", "vdb"}, "ck-3", "ck-2"));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  std::vector<std::vector<Extent>> dirty;
  for (const auto& disk : next->disks) {
    std::string ctx = "qemu:dirty-bitmap:" + disk.bitmap;
    Nbd h = ConnectNbd(next->socket_path, disk.export_name, ctx);
    ASSERT_TRUE(h);
    dirty.push_back(FlaggedExtents(h.get(), ctx));
    if (disk.target_dev == "vdb") {
      EXPECT_EQ(NbdRead(h.get(), 8 << 20, 64 << 10), std::string(64 << 10, '\x77'));
    }
  }
  EXPECT_TRUE(dirty[0].empty());
  EXPECT_EQ(dirty[1], (std::vector<Extent>{{8 << 20, 64 << 10}}));
  ASSERT_TRUE(hv_->EndPullBackup(name).ok());

  // Incremental from an older checkpoint covers everything since it.
  auto older = hv_->BeginPullBackup(name, Backup({"vdb"}, "ck-4", "ck-1"));
  ASSERT_TRUE(older.ok()) << older.status().ToString();
  {
    std::string ctx = "qemu:dirty-bitmap:" + older->disks[0].bitmap;
    Nbd h = ConnectNbd(older->socket_path, older->disks[0].export_name, ctx);
    ASSERT_TRUE(h);
    EXPECT_EQ(FlaggedExtents(h.get(), ctx), (std::vector<Extent>{{8 << 20, 64 << 10}}));
  }
  ASSERT_TRUE(hv_->EndPullBackup(name).ok());
  EXPECT_EQ(Checkpoints(name), (std::vector<std::string>{"ck-1", "ck-2", "ck-3", "ck-4"}));
  EXPECT_EQ(Bitmaps(other), std::set<std::string>{}) << "disks not backed up get no bitmap";
}

TEST_F(LibvirtHypervisorBackupTest, Refusals) {
  std::string name = NewName("pullno");
  std::string os = MakeDisk("os.qcow2");
  ASSERT_TRUE(hv_->Define(Spec(name, {os})).ok());

  auto stopped = hv_->BeginPullBackup(name, Backup({"vda"}, "ck-1"));
  EXPECT_EQ(stopped.status().code(), StatusCode::kConflict) << stopped.status().ToString();
  EXPECT_EQ(stopped.status().arm_code(), "OperationNotAllowed");
  EXPECT_THAT(stopped.status().message(), HasSubstr("not running"));

  ASSERT_TRUE(hv_->Start(name).ok());
  auto missing = hv_->BeginPullBackup(name, Backup({"vda"}, "ck-1", "ck-0"));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();
  EXPECT_EQ(missing.status().arm_code(), "CheckpointNotFound");
  EXPECT_EQ(hv_->BeginPullBackup(name, Backup({"vdz"}, "ck-1")).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(hv_->BeginPullBackup(name, Backup({"vda"}, "ck/1")).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(hv_->BeginPullBackup(name, Backup({"vda", "vda"}, "ck-1")).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(hv_->BeginPullBackup(prefix_ + "absent", Backup({"vda"}, "ck-1")).status().code(),
            StatusCode::kNotFound);

  // A socket directory QEMU's user cannot write (root's, 0755): refused with a hint.
  PullBackupSpec root_dir = Backup({"vda"}, "ck-1");
  root_dir.socket_path = Path("backup.sock");
  auto denied = hv_->BeginPullBackup(name, root_dir);
  EXPECT_FALSE(denied.ok());
  EXPECT_THAT(denied.status().message(), HasSubstr("writable by QEMU's user"))
      << denied.status().ToString();
  EXPECT_TRUE(Checkpoints(name).empty()) << "a failed start leaves no checkpoint";
  EXPECT_TRUE(FilesIn(Path("scratch")).empty());

  ASSERT_TRUE(hv_->BeginPullBackup(name, Backup({"vda"}, "ck-1")).ok());
  ASSERT_TRUE(hv_->EndPullBackup(name).ok());
  EXPECT_EQ(hv_->BeginPullBackup(name, Backup({"vda"}, "ck-1")).status().code(),
            StatusCode::kConflict)
      << "checkpoint names are unique";

  EXPECT_TRUE(hv_->EndPullBackup(prefix_ + "absent").ok());
  EXPECT_TRUE(hv_->DeleteCheckpoint(prefix_ + "absent", "ck-1").ok());
  EXPECT_EQ(hv_->ListCheckpoints(prefix_ + "absent").status().code(), StatusCode::kNotFound);
}

TEST_F(LibvirtHypervisorBackupTest, AGroupIsCapturedAtOneInstantAllOrNothing) {
  std::vector<std::string> names, disks;
  for (int i = 0; i < 3; ++i) {
    names.push_back(NewName("grp" + std::to_string(i)));
    disks.push_back(MakeDisk("g" + std::to_string(i) + ".qcow2", "16M"));
    WritePattern(disks[i], "0x5" + std::to_string(i), "1M");
    ASSERT_TRUE(hv_->Define(Spec(names[i], {disks[i]})).ok());
    ASSERT_TRUE(hv_->Start(names[i]).ok());
  }
  auto members = [&](const std::string& cp, const std::string& from) {
    std::vector<GroupPullMember> m;
    for (int i = 0; i < 3; ++i) {
      GroupPullMember g;
      g.domain = names[i];
      g.spec = Backup({"vda"}, cp, from);
      g.spec.socket_path = Path("nbd" + std::to_string(i) + "/backup.sock");
      g.spec.scratch_dir = Path("scratch" + std::to_string(i));
      m.push_back(g);
    }
    return m;
  };
  auto group = hv_->BeginGroupPullBackup(members("g-1", ""));
  ASSERT_TRUE(group.ok()) << group.status().ToString();
  ASSERT_EQ(group->backups.size(), 3u);
  EXPECT_GT(group->freeze_us, 0) << "the group was paused";
  EXPECT_LT(group->freeze_us, 5'000'000);
  std::cerr << "[ info ] 3 domains held still for " << group->freeze_us / 1000.0 << " ms\n";
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(hv_->Info(names[i])->state, PowerState::kRunning) << "resumed: " << names[i];
    const auto& b = group->backups[i];
    Nbd h = ConnectNbd(b.socket_path, b.disks[0].export_name);
    ASSERT_TRUE(h);
    EXPECT_EQ(NbdRead(h.get(), 1 << 20, 4096), std::string(4096, static_cast<char>(0x50 + i)))
        << names[i];
  }
  for (auto& n : names) ASSERT_TRUE(hv_->EndPullBackup(n).ok());
  // All or nothing: the third member's job cannot start (QEMU cannot bind its socket in root's
  // directory), after the group was paused: the first two are undone and everyone runs on.
  auto bad = members("g-2", "g-1");
  bad[2].spec.socket_path = Path("g2.sock");
  auto failed = hv_->BeginGroupPullBackup(bad);
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(failed.status().message(), HasSubstr(names[2]));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Checkpoints(names[i]), std::vector<std::string>{"g-1"}) << names[i];
    EXPECT_EQ(hv_->Info(names[i])->state, PowerState::kRunning) << names[i];
    EXPECT_TRUE(FilesIn(Path("scratch" + std::to_string(i))).empty()) << names[i];
  }
  // Nothing is left running: the same group starts now.
  auto again = hv_->BeginGroupPullBackup(members("g-2", "g-1"));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  for (auto& b : again->backups) EXPECT_NE(b.disks[0].bitmap, "") << "incremental";
  for (auto& n : names) ASSERT_TRUE(hv_->EndPullBackup(n).ok());

  // Refused before anything happens: no members, a domain twice, a base one member lacks.
  EXPECT_EQ(hv_->BeginGroupPullBackup({}).status().code(), StatusCode::kInvalidArgument);
  auto twice = members("g-3", "g-2");
  twice[1].domain = names[0];
  EXPECT_EQ(hv_->BeginGroupPullBackup(twice).status().code(), StatusCode::kInvalidArgument);
  auto lacks = members("g-3", "g-2");
  lacks[1].spec.incremental_from = "g-0";
  auto nf = hv_->BeginGroupPullBackup(lacks);
  EXPECT_EQ(nf.status().arm_code(), "CheckpointNotFound") << nf.status().ToString();
  EXPECT_EQ(nf.status().target(), "g-0");
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(Checkpoints(names[i]), (std::vector<std::string>{"g-1", "g-2"})) << names[i];
}

TEST_F(LibvirtHypervisorBackupTest, RawDiskIsExportedInFullEveryTime) {
  std::string name = NewName("raw");
  std::string os = MakeDisk("os.qcow2");
  std::string raw = Path("data.raw");
  ASSERT_TRUE(RunChecked({"qemu-img", "create", "-q", "-f", "raw", raw, "8M"}).ok());
  ASSERT_TRUE(RunChecked({"qemu-io", "-f", "raw", "-c", "write -P 0x5a 1M 1M", raw}).ok());
  DomainSpec spec = Spec(name, {os, raw});
  spec.disks[1].format = "raw";
  ASSERT_TRUE(hv_->Define(spec).ok());
  ASSERT_TRUE(hv_->Start(name).ok());
  ASSERT_TRUE(hv_->BeginPullBackup(name, Backup({"vda", "vdb"}, "ck-1")).ok());
  ASSERT_TRUE(hv_->EndPullBackup(name).ok());
  // A raw image cannot hold a bitmap: ck-1 covers vda only, and vdb is exported in full.
  auto inc = hv_->BeginPullBackup(name, Backup({"vda", "vdb"}, "ck-2", "ck-1"));
  ASSERT_TRUE(inc.ok()) << inc.status().ToString();
  EXPECT_NE(inc->disks[0].bitmap, "");
  EXPECT_EQ(inc->disks[1].bitmap, "");
  Nbd h = ConnectNbd(inc->socket_path, inc->disks[1].export_name);
  ASSERT_TRUE(h);
  std::string got = NbdRead(h.get(), 0, 8 << 20);
  EXPECT_TRUE(got == RawContent(raw));
  h.reset();
  ASSERT_TRUE(hv_->EndPullBackup(name).ok());
}

TEST_F(LibvirtHypervisorBackupTest, CheckpointsAcrossRedefineDiskChangesDeleteAndUndefine) {
  std::string name = NewName("ckpt");
  std::string os = MakeDisk("os.qcow2");
  std::string data = MakeDisk("data.qcow2", "32M");
  DomainSpec spec = Spec(name, {os, data});
  ASSERT_TRUE(hv_->Define(spec).ok());
  ASSERT_TRUE(hv_->Start(name).ok());
  std::string from;
  for (std::string ck : {"ck-a", "ck-b", "ck-c"}) {
    auto b = hv_->BeginPullBackup(name, Backup({"vda", "vdb"}, ck, from));
    ASSERT_TRUE(b.ok()) << ck << ": " << b.status().ToString();
    ASSERT_TRUE(hv_->EndPullBackup(name).ok());
    from = ck;
  }
  EXPECT_EQ(Checkpoints(name), (std::vector<std::string>{"ck-a", "ck-b", "ck-c"}));

  // Deleting a checkpoint in the middle (running): the others stay usable.
  ASSERT_TRUE(hv_->DeleteCheckpoint(name, "ck-b").ok());
  EXPECT_TRUE(hv_->DeleteCheckpoint(name, "ck-b").ok()) << "absent is OK";
  EXPECT_EQ(Checkpoints(name), (std::vector<std::string>{"ck-a", "ck-c"}));
  auto after_delete = hv_->BeginPullBackup(name, Backup({"vda"}, "ck-d", "ck-a"));
  ASSERT_TRUE(after_delete.ok()) << after_delete.status().ToString();
  // libvirt lets the base of a running backup go: the export has its own copy of the bitmap.
  Status during = hv_->DeleteCheckpoint(name, "ck-c");
  EXPECT_TRUE(during.ok()) << during.ToString();
  {
    std::string ctx = "qemu:dirty-bitmap:" + after_delete->disks[0].bitmap;
    Nbd h = ConnectNbd(after_delete->socket_path, after_delete->disks[0].export_name, ctx);
    ASSERT_TRUE(h);
    EXPECT_TRUE(FlaggedExtents(h.get(), ctx).empty());
  }
  ASSERT_TRUE(hv_->EndPullBackup(name).ok());
  EXPECT_EQ(Checkpoints(name), (std::vector<std::string>{"ck-a", "ck-d"}));
  auto base_c = hv_->BeginPullBackup(name, Backup({"vda"}, "ck-dd", "ck-c"));
  EXPECT_EQ(base_c.status().arm_code(), "CheckpointNotFound") << base_c.status().ToString();

  // Hot-plug with checkpoints present; a disk the base checkpoint did not cover is exported
  // fully within the incremental backup.
  DiskAttachment extra;
  extra.target_dev = "vdc";
  extra.path = MakeDisk("extra.qcow2", "16M");
  ASSERT_TRUE(hv_->AttachDisk(name, extra).ok());
  auto mixed = hv_->BeginPullBackup(name, Backup({"vda", "vdc"}, "ck-e", "ck-d"));
  ASSERT_TRUE(mixed.ok()) << mixed.status().ToString();
  EXPECT_NE(mixed->disks[0].bitmap, "");
  EXPECT_EQ(mixed->disks[1].bitmap, "") << "vdc: full";
  EXPECT_EQ(mixed->disks[1].size_bytes, 16u << 20);
  ASSERT_TRUE(hv_->EndPullBackup(name).ok());

  // Redefinition keeps the checkpoints (running, then stopped).
  spec.disks.push_back(extra);
  spec.memory_mib = 160;
  ASSERT_TRUE(hv_->Define(spec).ok());
  const std::vector<std::string> all = {"ck-a", "ck-d", "ck-e"};
  EXPECT_EQ(Checkpoints(name), all);
  ASSERT_TRUE(hv_->PowerOff(name).ok());
  spec.memory_mib = 192;
  ASSERT_TRUE(hv_->Define(spec).ok());
  EXPECT_EQ(Checkpoints(name), all);

  // Stopped domain: each checkpoint is a persistent bitmap of the same name in the qcow2 of
  // every disk it covered (vdb was not in ck-d and ck-e; vdc only in ck-e).
  EXPECT_EQ(Bitmaps(os), (std::set<std::string>{"ck-a", "ck-d", "ck-e"}));
  EXPECT_EQ(Bitmaps(data), (std::set<std::string>{"ck-a"}));
  EXPECT_EQ(Bitmaps(extra.path), (std::set<std::string>{"ck-e"}));
  auto stopped = hv_->BeginPullBackup(name, Backup({"vda"}, "ck-f", "ck-e"));
  EXPECT_EQ(stopped.status().code(), StatusCode::kConflict);

  // Deleting while stopped (libvirt 9.0 itself refuses that).
  Status offline = hv_->DeleteCheckpoint(name, "ck-a");
  ASSERT_TRUE(offline.ok()) << offline.ToString();
  EXPECT_EQ(Checkpoints(name), (std::vector<std::string>{"ck-d", "ck-e"}));
  EXPECT_EQ(Bitmaps(os), (std::set<std::string>{"ck-d", "ck-e"}));
  EXPECT_EQ(Bitmaps(data), (std::set<std::string>{}));
  EXPECT_TRUE(hv_->DeleteCheckpoint(name, "ck-a").ok()) << "absent is OK";

  // A replaced disk lacks the checkpoint's bitmap: CheckpointNotFound.
  ASSERT_TRUE(hv_->DetachDisk(name, "vdc").ok()) << "detach with checkpoints present";
  extra.path = MakeDisk("extra-2.qcow2", "16M");
  ASSERT_TRUE(hv_->AttachDisk(name, extra).ok());
  ASSERT_TRUE(hv_->Start(name).ok());
  auto replaced = hv_->BeginPullBackup(name, Backup({"vda", "vdc"}, "ck-f", "ck-e"));
  EXPECT_EQ(replaced.status().code(), StatusCode::kNotFound) << replaced.status().ToString();
  EXPECT_EQ(replaced.status().arm_code(), "CheckpointNotFound");
  EXPECT_THAT(replaced.status().message(), HasSubstr("vdc"));
  auto unaffected = hv_->BeginPullBackup(name, Backup({"vda"}, "ck-f", "ck-e"));
  ASSERT_TRUE(unaffected.ok()) << unaffected.status().ToString();
  ASSERT_TRUE(hv_->EndPullBackup(name).ok());

  // Undefine with checkpoints present.
  ASSERT_TRUE(hv_->PowerOff(name).ok());
  Status undefined = hv_->Undefine(name);
  ASSERT_TRUE(undefined.ok()) << undefined.ToString();
  EXPECT_EQ(hv_->Info(name).status().code(), StatusCode::kNotFound);
  // A domain defined again on the same disks starts without checkpoints.
  ASSERT_TRUE(hv_->Define(spec).ok());
  EXPECT_TRUE(Checkpoints(name).empty());
}

}  // namespace
}  // namespace stratus::compute
