// Region: one region daemon — its store, engines (libvirt, qcow2) and control plane
// (control_plane.h), serving HTTP. Owns everything it builds; destruction stops the API, then the
// operation workers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "api/operations.h"
#include "api/server.h"
#include "auth/token_authenticator.h"
#include "compute/hypervisor.h"
#include "daemon/control_plane.h"
#include "network/linux_network_engine.h"
#include "storage/disk_engine.h"
#include "store/store.h"

namespace stratus::daemon {

struct RegionConfig {
  std::string region = "regionA";
  std::string data_dir = "/var/lib/stratus/regionA";
  std::string listen_host = "127.0.0.1";
  int listen_port = 8780;  // 0 = any free port
  std::string libvirt_uri = "qemu:///system";
  std::string domain_type = "qemu";  // "kvm" on hosts with working KVM
  std::string platform_images_dir = "/var/lib/stratus/images";
  std::string cli_config_path;       // "" = $HOME/.stratus/config.json
  bool durable_store = true;         // SQLite synchronous=FULL
  int operation_workers = 4;
  // Host folders images may be imported from (properties.source.filePath); none by default.
  std::vector<std::string> import_dirs;
  uint64_t max_upload_bytes = 64ull << 30;  // largest image disk one may upload
  // HTTP front (api/http_server.h).
  std::string public_url;  // "" = http(s)://listen_host:port
  std::string tls_cert_file, tls_key_file;
  int http_io_threads = 2;
  int http_workers = 16;
  int max_connections = 1024;
  int max_connections_per_client = 256;
  int http_header_timeout_s = 10;  // the request head must arrive within this
  int http_body_timeout_s = 30;    // a body must arrive (an upload: make progress) within this
  int64_t activity_retention_days = 90;
  // The way out of the region's VNETs (docs/network.md "Public IPs"): the public pool (CIDR),
  // the uplink interface stratusd moves into the edge namespace, its address (CIDR) and the
  // next hop of its default route. All four, or none.
  std::string public_pool, uplink, uplink_address, uplink_gateway;
  // The peer link (site recovery, docs/site-recovery.md): mutual-TLS listener for paired
  // regions. Port -1 = the API's port + 1 (any free port when the API's is 0).
  std::string peer_host = "";       // "" = listen_host
  int peer_port = -1;
  std::string peer_advertise_host;  // what pairing tokens tell peers; "" = peer_host
};

class Region {
 public:
  static Result<std::unique_ptr<Region>> Start(const RegionConfig& config);
  ~Region();

  int port() const { return port_; }
  int peer_port() const;
  const std::string& subscription() const { return subscription_; }
  const std::string& admin_token_path() const { return auth_->admin_token_path(); }
  bool created_admin_token() const { return auth_->created_admin_token(); }
  void Stop();

 private:
  Region() = default;
  Status WriteCliConfig();

  RegionConfig config_;
  int port_ = 0;
  std::string subscription_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<auth::TokenAuthenticator> auth_;
  std::unique_ptr<api::OperationManager> ops_;
  std::unique_ptr<compute::Hypervisor> hypervisor_;
  std::unique_ptr<storage::DiskEngine> disk_engine_;
  std::unique_ptr<network::NetworkEngine> network_engine_;
  std::unique_ptr<ControlPlane> control_;
  api::ApiServer* server_ = nullptr;  // owned by control_
};

// Starts virtlogd and libvirtd when no libvirtd answers at `uri` (hosts without systemd), then
// waits up to 30 s for it.
Status EnsureLibvirtd(const std::string& uri);

}  // namespace stratus::daemon
