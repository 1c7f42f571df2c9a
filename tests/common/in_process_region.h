// InProcessRegion: a region's whole control plane (daemon::ControlPlane, the daemon's own
// wiring) in the test process, over a FakeHypervisor, a FakeNetworkEngine, the real SqliteStore and the real
// Qcow2DiskEngine in a temp dir, with a fake clock and a 64 MiB platform image "tiny" (its first
// MiB written with 0x5a). Requests go through ApiServer::Handle (authenticated with the admin
// token), as HTTP requests would. Restart() is a daemon restart: the control plane is stopped
// and built again over the same data dir; the hypervisor keeps its domains, as libvirt does.
//
// InProcessRegionTest is the gtest fixture of the provider unit tests built on it.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "api/server.h"
#include "common/api_request.h"
#include "compute/fake_hypervisor.h"
#include "core/fs.h"
#include "core/scoped_temp_dir.h"
#include "core/subprocess.h"
#include "daemon/control_plane.h"
#include "network/fake_network_engine.h"
#include "network/fake_probe_runner.h"
#include "storage/qcow2_disk_engine.h"
#include "store/sqlite_store.h"

namespace stratus::test {

class InProcessRegion {
 public:
  static constexpr const char* kSub = "sub1";
  static constexpr const char* kRg = "/subscriptions/sub1/resourceGroups/rg";

  // Builds and starts region `region` with resource group "rg"; ok() says whether that worked
  // (qemu-img and qemu-io are needed). `peer_link`: with a peer listener on 127.0.0.1 (any port),
  // so that two InProcessRegions can pair.
  explicit InProcessRegion(std::string region = "regionA", bool peer_link = false)
      : region_(std::move(region)), peer_link_(peer_link) {
    data_dir_ = dir_.Path("data");
    std::string tiny = dir_.Path("images/tiny");
    image_disk_ = JoinPath(tiny, "disk.qcow2");
    if (!MakeDirs(data_dir_).ok() || !MakeDirs(tiny).ok() ||
        !RunChecked({"qemu-img", "create", "-q", "-f", "qcow2", image_disk_, "64M"}).ok() ||
        !RunChecked({"qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 1M", image_disk_}).ok() ||
        !WriteFileAtomic(JoinPath(tiny, "image.json"),
                         Json{{"name", "tiny"}, {"disk", "disk.qcow2"}, {"osType", "Linux"}}.dump())
             .ok())
      return;
    if (!Boot()) return;
    auto token = ReadFile(JoinPath(data_dir_, "admin.token"));
    if (!token.ok()) return;
    token_ = *token;
    while (!token_.empty() && token_.back() == '\n') token_.pop_back();
    ok_ = Call("PUT", kRg, {{"location", region_}}).status == 201;
  }
  ~InProcessRegion() { Halt(); }

  bool ok() const { return ok_; }

  // A daemon restart over the same data dir (operations drain first). With `resume` false the
  // interrupted operations are left for the test to resume (ops()->RecoverInterrupted()).
  // False if it failed.
  bool Restart(bool resume = true) {
    Halt();
    ok_ = Boot(resume);
    return ok_;
  }

  api::ApiResponse Call(const std::string& method, const std::string& path, Json body = nullptr,
                        std::map<std::string, std::string> headers = {}) {
    return control_->server()->Handle(
        MakeApiRequest(method, path, std::move(body), token_, std::move(headers)));
  }

  // Waits for the operation a response started (Azure-AsyncOperation) and returns it.
  Json Finish(const api::ApiResponse& r) {
    auto it = r.headers.find("Azure-AsyncOperation");
    EXPECT_NE(it, r.headers.end()) << r.status << " " << r.body.dump();
    if (it == r.headers.end()) return Json::object();
    ops_->WaitIdle();
    api::ApiResponse op = Call("GET", it->second);
    EXPECT_EQ(op.status, 200) << op.body.dump();
    return op.body;
  }

  static std::string Code(const api::ApiResponse& r) { return ArmCode(r); }

  // A VM body: size Standard_S1, image "tiny", `data_disks` empty data disks of 1 GiB.
  static Json VmBody(int data_disks = 1) {
    Json dds = Json::array();
    for (int i = 0; i < data_disks; ++i) dds.push_back({{"lun", i}, {"diskSizeGB", 1}});
    return {{"location", "regionA"},
            {"properties",
             {{"hardwareProfile", {{"vmSize", "Standard_S1"}}},
              {"storageProfile", {{"imageReference", {{"id", "tiny"}}}, {"dataDisks", dds}}},
              {"osProfile", {{"computerName", "host-1"}, {"customData", "echo hi\n"}}}}}};
  }
  static std::string Path(const std::string& provider_type, const std::string& name) {
    return std::string(kRg) + "/providers/" + provider_type + "/" + name;
  }
  // The file of managed disk `name` of the group ("" if there is none).
  std::string DiskFile(const std::string& name) {
    auto rec = store_->Get(ToLower(Path("Stratus.Storage/disks", name)));
    return rec.ok() ? rec->internal.value("path", "") : "";
  }
  // Entries of folder `sub` of the data dir.
  size_t FilesIn(const std::string& sub) const {
    std::error_code ec;
    size_t n = 0;
    for (auto it = std::filesystem::directory_iterator(JoinPath(data_dir_, sub), ec);
         !ec && it != std::filesystem::directory_iterator(); ++it)
      ++n;
    return n;
  }
  // qemu-img compare: 0 same guest data, 1 different, -1 error.
  static int Compare(const std::string& a, const std::string& b) {
    auto r = RunProcess({"qemu-img", "compare", "-q", a, b});
    return r.ok() ? r->exit_code : -1;
  }

  FakeClock& clock() { return clock_; }
  compute::FakeHypervisor& hv() { return hv_; }
  network::FakeNetworkEngine& net() { return net_; }
  network::FakeProbeRunner& probes() { return probes_; }
  storage::DiskEngine& engine() { return engine_; }
  store::Store* store() const { return store_.get(); }
  api::OperationManager* ops() const { return ops_.get(); }
  daemon::ControlPlane* control() const { return control_.get(); }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& image_disk() const { return image_disk_; }  // the "tiny" image's qcow2
  const std::string& region() const { return region_; }

 private:
  bool Boot(bool resume = true) {
    auto s = store::SqliteStore::Open(JoinPath(data_dir_, "state.db"),
                                      store::SqliteStore::Durability::kNormal);
    if (!s.ok()) return false;
    store_ = std::move(s).value();
    ops_ = std::make_unique<api::OperationManager>(store_.get(), &clock_, 2);
    auto a = auth::TokenAuthenticator::Init(store_.get(), data_dir_);
    if (!a.ok()) return false;
    auth_ = std::move(a).value();
    api::RegionContext ctx{store_.get(), ops_.get(), &clock_, region_, data_dir_};
    daemon::ControlPlaneOptions options;
    options.platform_images_dir = dir_.Path("images");
    // A public pool of 6 addresses (203.0.113.1-6) behind a (fake) uplink.
    network::EdgeDatapath edge;
    edge.uplink = "uplink0";
    edge.uplink_ip = network::Ipv4{0xc6336402};       // 198.51.100.2
    edge.uplink_gateway = network::Ipv4{0xc6336401};  // 198.51.100.1
    edge.pool = {network::Ipv4{0xcb007100}, 29};      // 203.0.113.0/29
    options.edge = edge;
    if (peer_link_) {
      recovery::site::PeerLinkOptions peer;
      peer.listen_port = peer_port_;  // the same port again after a restart
      peer.call_timeout = std::chrono::seconds(5);
      options.peer = peer;
    }
    options.probe_runner = &probes_;
    auto c = daemon::ControlPlane::Build(ctx, auth_.get(), &hv_, &engine_, &net_, options);
    if (!c.ok()) return false;
    control_ = std::move(c).value();
    if (!control_->server()->EnsureSubscription(kSub, "Test").ok()) return false;
    if (!(resume ? control_->Start() : control_->StartProviders()).ok()) return false;
    if (control_->pairing()) peer_port_ = control_->pairing()->advertised_port();
    return true;
  }
  void Halt() {
    if (control_) control_->Stop();
    if (ops_) ops_->Shutdown();
    control_.reset();
    auth_.reset();
    ops_.reset();
    store_.reset();
  }

  std::string region_;
  bool peer_link_ = false;
  int peer_port_ = 0;
  ScopedTempDir dir_{"region"};
  std::string data_dir_, image_disk_, token_;
  FakeClock clock_{1795341600000};  // 2026-11-22T10:00:00Z
  compute::FakeHypervisor hv_;
  network::FakeNetworkEngine net_;  // keeps its VNETs across Restart(), as the kernel does
  network::FakeProbeRunner probes_;
  storage::Qcow2DiskEngine engine_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<api::OperationManager> ops_;
  std::unique_ptr<auth::TokenAuthenticator> auth_;
  std::unique_ptr<daemon::ControlPlane> control_;
  bool ok_ = false;
};

// A fresh InProcessRegion per test, with its calls at hand.
class InProcessRegionTest : public ::testing::Test {
 protected:
  static constexpr const char* kRg = InProcessRegion::kRg;

  void SetUp() override {
    // Looked up once per test binary, not once per test.
    static const bool have_tools =
        RunProcess({"qemu-img", "--version"}).ok() && RunProcess({"mke2fs", "-V"}).ok();
    if (!have_tools) GTEST_SKIP() << "qemu-img and mke2fs are needed";
    region_ = std::make_unique<InProcessRegion>();
    ASSERT_TRUE(region_->ok()) << "could not start the in-process region";
  }
  void TearDown() override { region_.reset(); }

  api::ApiResponse Call(const std::string& method, const std::string& path, Json body = nullptr,
                        std::map<std::string, std::string> headers = {}) {
    return region_->Call(method, path, std::move(body), std::move(headers));
  }
  Json Finish(const api::ApiResponse& r) { return region_->Finish(r); }
  static std::string Code(const api::ApiResponse& r) { return ArmCode(r); }
  // A daemon restart (see InProcessRegion::Restart).
  void Restart(bool resume = true) {
    ASSERT_TRUE(region_->Restart(resume)) << "the region did not start again";
  }
  std::string DiskFile(const std::string& name) { return region_->DiskFile(name); }
  size_t FilesIn(const std::string& sub) const { return region_->FilesIn(sub); }
  static int Compare(const std::string& a, const std::string& b) {
    return InProcessRegion::Compare(a, b);
  }

  compute::FakeHypervisor& hv() { return region_->hv(); }
  network::FakeNetworkEngine& net() { return region_->net(); }
  network::FakeProbeRunner& probes() { return region_->probes(); }
  storage::DiskEngine& engine() { return region_->engine(); }
  store::Store* store() const { return region_->store(); }
  api::OperationManager* ops() const { return region_->ops(); }
  FakeClock& clock() { return region_->clock(); }
  const std::string& data_dir() const { return region_->data_dir(); }
  const std::string& image_disk() const { return region_->image_disk(); }

  std::unique_ptr<InProcessRegion> region_;
};

}  // namespace stratus::test
