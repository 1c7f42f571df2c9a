// Integration tests of LibvirtHypervisor against the host's real libvirtd (qemu:///system).
// Skipped when libvirtd does not answer (scripts/ensure-libvirtd.sh starts it).
//
// Guests without an OS boot SeaBIOS from an empty disk and loop there: enough for lifecycle,
// hot-plug, I/O limits and push-mode backups. The tiny Linux guest (build/guest/tiny, built by
// guest/build-tiny-image.sh) covers the guest agent and live disk detach when present.
#include "compute/libvirt_hypervisor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include "core/fs.h"
#include "core/subprocess.h"
#include "core/uuid.h"

namespace stratus::compute {
namespace {

using ::testing::HasSubstr;
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

  // Hot-plug a disk, let the guest see it, then unplug it live.
  LibvirtHypervisor::Options o;
  o.detach_timeout_ms = 30000;
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

}  // namespace
}  // namespace stratus::compute
