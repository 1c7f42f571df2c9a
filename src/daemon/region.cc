#include "daemon/region.h"

#include "network/ipv4.h"

#include "network/kernel_names.h"

#include <spdlog/spdlog.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "compute/image_import.h"
#include "compute/libvirt_hypervisor.h"
#include "core/fs.h"
#include "core/subprocess.h"
#include "core/uuid.h"
#include "daemon/control_plane.h"
#include "storage/qcow2_disk_engine.h"
#include "store/sqlite_store.h"

namespace stratus::daemon {

Status EnsureLibvirtd(const std::string& uri) {
  auto probe = [&] {
    auto r = RunProcess({"virsh", "-c", uri, "version"});
    return r.ok() && r->exit_code == 0;
  };
  if (probe()) return Status::Ok();
  if (uri.rfind("qemu:///system", 0) != 0)
    return Unavailable("libvirt at '" + uri + "' does not answer");
  spdlog::info("no libvirtd answers at {}; starting virtlogd and libvirtd", uri);
  // Without udev, /dev/kvm stays root-only; libvirt then re-probes QEMU (~40 s) at every domain
  // definition because the QEMU user cannot open it. Give it udev's usual root:kvm 0660.
  struct stat kvm;
  struct group* kvm_group = ::getgrnam("kvm");
  if (::stat("/dev/kvm", &kvm) == 0 && kvm_group && (kvm.st_mode & 0060) == 0) {
    if (::chown("/dev/kvm", 0, kvm_group->gr_gid) != 0 || ::chmod("/dev/kvm", 0660) != 0)
      spdlog::warn("cannot give /dev/kvm mode 0660 root:kvm; domain definitions will be slow");
  }
  RunProcess({"virtlogd", "-d"});
  RunProcess({"libvirtd", "-d"});
  for (int i = 0; i < 60; ++i) {
    if (probe()) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return Unavailable("started libvirtd but it does not answer at '" + uri + "' after 30 s");
}

// QEMU runs as libvirt's unprivileged user; every folder above the files it opens must let it
// through.
static Status CheckTraversable(const std::string& dir, const std::string& flag) {
  std::filesystem::path p = std::filesystem::absolute(dir);
  for (; !p.empty() && p != p.root_path(); p = p.parent_path()) {
    struct stat st;
    if (::stat(p.c_str(), &st) == 0 && !(st.st_mode & S_IXOTH))
      return InvalidArgument("The folder '" + dir + "' (" + flag + ") is not reachable by QEMU: '" +
                                 p.string() + "' has mode " +
                                 fmt::format("{:o}", st.st_mode & 07777) +
                                 " (needs o+x, e.g. chmod 711).",
                             flag);
  }
  return Status::Ok();
}

// Files of an older stratusd may be readable by other users: owner-only files, folders
// traversable (o+x) at most. Folders that are already owner-only are not descended into (nobody
// else can reach what they hold), sockets and links are left alone.
static void TightenModes(const std::string& dir) {
  std::error_code ec;
  std::filesystem::recursive_directory_iterator it(dir, ec), end;
  int changed = 0;
  for (; !ec && it != end; it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    mode_t mode = st.st_mode & 07777;
    if (S_ISDIR(st.st_mode)) {
      if ((mode & 077) == 0) {
        it.disable_recursion_pending();
        continue;
      }
      mode_t want = mode & ~static_cast<mode_t>(066);
      if (want != mode && ::chmod(it->path().c_str(), want) == 0) ++changed;
    } else if (S_ISREG(st.st_mode) && (mode & 077) != 0) {
      if (::chmod(it->path().c_str(), mode & 0700) == 0) ++changed;
    }
  }
  if (changed > 0) spdlog::info("made {} files and folders under {} owner-only", changed, dir);
}

Result<std::optional<network::EdgeDatapath>> EdgeOf(const RegionConfig& config) {
  int given = !config.public_pool.empty() + !config.uplink.empty() +
              !config.uplink_address.empty() + !config.uplink_gateway.empty();
  if (given == 0) return std::optional<network::EdgeDatapath>();
  if (given != 4)
    return InvalidArgument("--public-pool, --uplink, --uplink-address and --uplink-gateway go "
                           "together", "--uplink");
  network::EdgeDatapath e;
  e.uplink = config.uplink;
  if (e.uplink.empty() || e.uplink.size() > 15 ||
      e.uplink.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                 "-_.@") != std::string::npos)
    return InvalidArgument("--uplink '" + config.uplink + "' is not an interface name", "--uplink");
  ASSIGN_OR_RETURN(e.pool, network::ParseIpv4Prefix(config.public_pool, "--public-pool"));
  if (e.pool.length < 24 || e.pool.length > 32)
    return InvalidArgument("--public-pool must be a /24 to /32", "--public-pool");
  size_t slash = config.uplink_address.find('/');
  std::string len = slash == std::string::npos ? "" : config.uplink_address.substr(slash + 1);
  if (len.empty() || len.size() > 2 || len.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(len) < 8 || std::stoi(len) > 30)
    return InvalidArgument("--uplink-address must be an address with its prefix length "
                           "(198.51.100.2/24)", "--uplink-address");
  ASSIGN_OR_RETURN(e.uplink_ip,
                   network::ParseIpv4(config.uplink_address.substr(0, slash), "--uplink-address"));
  e.uplink_length = std::stoi(len);
  ASSIGN_OR_RETURN(e.uplink_gateway, network::ParseIpv4(config.uplink_gateway, "--uplink-gateway"));
  uint32_t mask = ~uint32_t{0} << (32 - e.uplink_length);
  network::Ipv4Prefix uplink_net{network::Ipv4{e.uplink_ip.value & mask}, e.uplink_length};
  if (!uplink_net.Contains(e.uplink_gateway) || e.uplink_gateway == e.uplink_ip)
    return InvalidArgument("--uplink-gateway must be another address of --uplink-address's "
                           "subnet " + uplink_net.ToString(), "--uplink-gateway");
  // The pool is routed to the uplink by the upstream: it is not the uplink's own subnet, and
  // never a range the VNETs keep inside.
  for (const char* r : {"169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                        "100.64.0.0/10", "127.0.0.0/8", "224.0.0.0/3", "0.0.0.0/8"}) {
    auto range = network::ParseIpv4Prefix(r, "");
    if (range.ok() && range->Overlaps(e.pool))
      return InvalidArgument("--public-pool " + e.pool.ToString() + " overlaps " + r +
                             ", which cannot be public", "--public-pool");
  }
  if (uplink_net.Overlaps(e.pool))
    return InvalidArgument("--public-pool " + e.pool.ToString() + " overlaps the uplink's subnet " +
                           uplink_net.ToString() + "; the upstream routes the pool to the uplink",
                           "--public-pool");
  return std::optional<network::EdgeDatapath>(e);
}

Result<std::unique_ptr<Region>> Region::Start(const RegionConfig& config) {
  std::unique_ptr<Region> r(new Region());
  r->config_ = config;
  // QEMU runs as an unprivileged user: it must be able to traverse to the disk files, and no
  // other user may list or read anything.
  RETURN_IF_ERROR(MakeDirs(config.data_dir, 0711));
  if (::chmod(config.data_dir.c_str(), 0711) != 0)
    return Internal("chmod 0711 of the data directory '" + config.data_dir + "' failed");
  RETURN_IF_ERROR(CheckTraversable(config.data_dir, "--data-dir"));
  if (!config.platform_images_dir.empty())
    RETURN_IF_ERROR(CheckTraversable(config.platform_images_dir, "--platform-images"));
  TightenModes(config.data_dir);
  // The folders QEMU reaches its files through are traversable (0711), whatever an older
  // stratusd killed inside a mkdir left them as.
  for (const char* sub : {"disks", "vms", "snapshots"}) {
    const std::string dir = JoinPath(config.data_dir, sub);
    struct stat st;
    if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) != 0711 &&
        ::chmod(dir.c_str(), 0711) == 0)
      spdlog::warn("{} was mode {:o}: made 0711 again (QEMU reaches the files under it)", dir,
                   st.st_mode & 07777);
  }
  ASSIGN_OR_RETURN(std::vector<std::string> import_dirs,
                   compute::ResolveImportDirs(config.import_dirs));
  ASSIGN_OR_RETURN(r->store_, store::SqliteStore::Open(
                                  JoinPath(config.data_dir, "state.db"),
                                  config.durable_store ? store::SqliteStore::Durability::kFull
                                                       : store::SqliteStore::Durability::kNormal));
  ASSIGN_OR_RETURN(r->auth_, auth::TokenAuthenticator::Init(r->store_.get(), config.data_dir));
  ASSIGN_OR_RETURN(auto sub, r->store_->GetSetting("default_subscription"));
  if (!sub) {
    sub = NewUuid();
    RETURN_IF_ERROR(r->store_->PutSetting("default_subscription", *sub));
  }
  r->subscription_ = *sub;

  RETURN_IF_ERROR(EnsureLibvirtd(config.libvirt_uri));
  // Engines first: the disk engine, then the hypervisor that works on its disks.
  r->disk_engine_ = std::make_unique<storage::Qcow2DiskEngine>();
  ASSIGN_OR_RETURN(auto hv, compute::LibvirtHypervisor::Open(config.libvirt_uri, config.domain_type,
                                                             r->disk_engine_.get()));
  r->hypervisor_ = std::move(hv);
  network::LinuxNetworkEngineOptions net;
  net.region_id = network::ShortRegionId(config.region, config.data_dir);
  ASSIGN_OR_RETURN(r->network_engine_, network::LinuxNetworkEngine::Open(net));

  r->ops_ = std::make_unique<api::OperationManager>(r->store_.get(), SystemClock::Default(),
                                                    config.operation_workers);
  api::RegionContext ctx{r->store_.get(), r->ops_.get(), SystemClock::Default(), config.region,
                         config.data_dir};
  ControlPlaneOptions cp;
  ASSIGN_OR_RETURN(cp.edge, EdgeOf(config));
  cp.platform_images_dir = config.platform_images_dir;
  cp.image_import.import_dirs = import_dirs;
  cp.image_import.max_upload_bytes = config.max_upload_bytes;
  cp.activity.retention_days = config.activity_retention_days;
  recovery::site::PeerLinkOptions peer;
  peer.listen_host = config.peer_host.empty() ? config.listen_host : config.peer_host;
  peer.listen_port = config.peer_port >= 0     ? config.peer_port
                     : config.listen_port == 0 ? 0
                                               : config.listen_port + 1;
  peer.advertise_host = config.peer_advertise_host;
  cp.peer = peer;
  ASSIGN_OR_RETURN(r->control_, ControlPlane::Build(ctx, r->auth_.get(), r->hypervisor_.get(),
                                                    r->disk_engine_.get(),
                                                    r->network_engine_.get(), cp));
  r->server_ = r->control_->server();
  RETURN_IF_ERROR(r->server_->EnsureSubscription(r->subscription_, "Default subscription"));
  RETURN_IF_ERROR(r->control_->Start());

  RETURN_IF_ERROR(r->server_->PruneActivityLog());
  api::HttpServerOptions http;
  http.host = config.listen_host;
  http.port = config.listen_port;
  http.io_threads = config.http_io_threads;
  http.worker_threads = config.http_workers;
  http.max_connections = config.max_connections;
  http.max_connections_per_client = config.max_connections_per_client;
  http.header_timeout = std::chrono::seconds(config.http_header_timeout_s);
  http.body_timeout = std::chrono::seconds(config.http_body_timeout_s);
  http.tls_cert_file = config.tls_cert_file;
  http.tls_key_file = config.tls_key_file;
  ASSIGN_OR_RETURN(r->port_, r->server_->Listen(http, config.public_url));
  RETURN_IF_ERROR(r->WriteCliConfig());
  return r;
}

Status Region::WriteCliConfig() {
  std::string path = config_.cli_config_path;
  if (path.empty()) {
    const char* home = std::getenv("HOME");
    path = JoinPath(home ? home : "/root", ".stratus/config.json");
  }
  RETURN_IF_ERROR(MakeDirs(std::filesystem::path(path).parent_path().string(), 0700));
  Json cfg = Json::object();
  auto existing = ReadFile(path);
  if (existing.ok()) {
    cfg = Json::parse(*existing, nullptr, false);
    if (!cfg.is_object()) cfg = Json::object();
  }
  if (!cfg.contains("regions") || !cfg["regions"].is_object()) cfg["regions"] = Json::object();
  cfg["version"] = 1;
  cfg["regions"][config_.region] = {
      {"endpoint", server_->public_url()},
      {"tokenFile", std::filesystem::absolute(auth_->admin_token_path()).string()},
      {"subscription", subscription_},
      {"location", config_.region}};
  // A self-signed certificate is the CA the CLI should trust for this region.
  if (!config_.tls_cert_file.empty())
    cfg["regions"][config_.region]["caFile"] =
        std::filesystem::absolute(config_.tls_cert_file).string();
  if (!cfg.contains("default")) cfg["default"] = config_.region;
  return WriteFileAtomic(path, cfg.dump(2) + "\n", 0600);
}

int Region::peer_port() const {
  return control_ && control_->pairing() ? control_->pairing()->advertised_port() : 0;
}

void Region::Stop() {
  if (control_) control_->Stop();
  if (ops_) ops_->Shutdown();
}

Region::~Region() { Stop(); }

}  // namespace stratus::daemon
