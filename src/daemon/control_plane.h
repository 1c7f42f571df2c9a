// ControlPlane: the wiring of one region's control plane, in the order a request flows —
// engines → services → providers → API server. Region (region.h) builds it over libvirt and
// qcow2 for stratusd; unit tests and the fuzzer build the same thing in-process over a fake
// hypervisor, so there is one wiring. It owns the services, the providers and the server; the
// store, operations, authenticator and engines are the caller's and outlive it.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "api/operations.h"
#include "api/server.h"
#include "auth/token_authenticator.h"
#include "compute/compute_provider.h"
#include "compute/hypervisor.h"
#include "compute/image_import.h"
#include "compute/images.h"
#include "compute/vm_service.h"
#include "network/lb/load_balancer_provider.h"
#include "network/lb/load_balancer_service.h"
#include "network/network_engine.h"
#include "network/network_provider.h"
#include "network/network_service.h"
#include "recovery/service/recovery_provider.h"
#include "recovery/site/pairing_service.h"
#include "recovery/site/replication_service.h"
#include "storage/disk_engine.h"
#include "storage/disk_service.h"
#include "storage/storage_provider.h"

namespace stratus::daemon {

struct ControlPlaneOptions {
  std::string platform_images_dir;  // "" = no platform images
  compute::ImageImportOptions image_import;
  api::ActivityLogOptions activity;
  // The region's uplink and public pool (network_engine.h); none: no public IPs, no way out.
  std::optional<network::EdgeDatapath> edge;
  // The peer link to paired regions (site recovery); none: this region cannot pair.
  std::optional<recovery::site::PeerLinkOptions> peer;
  // What runs the load balancers' health probes; none: network::LinuxProbeRunner.
  network::ProbeRunner* probe_runner = nullptr;
};

class ControlPlane {
 public:
  // Builds everything and registers the providers with the server; nothing runs yet. `net` must
  // have been opened for network::ShortRegionId(ctx.region, ctx.data_dir).
  static Result<std::unique_ptr<ControlPlane>> Build(const api::RegionContext& ctx,
                                                     auth::TokenAuthenticator* auth,
                                                     compute::Hypervisor* hv,
                                                     storage::DiskEngine* engine,
                                                     network::NetworkEngine* net,
                                                     const ControlPlaneOptions& options);
  ~ControlPlane();

  // Starts the providers (compute reconciles VMs with the engine, recovery resumes instant
  // restores and starts its scheduler) and the peer listener, then resumes the operations a
  // restart cut.
  Status Start();
  // Start() without resuming operations (tests that stage interrupted operations first).
  Status StartProviders();
  // Stops serving and makes waiting jobs give up. The caller then shuts down the operation
  // workers (OperationManager::Shutdown) before destroying this.
  void Stop();

  api::ApiServer* server() const { return server_.get(); }
  storage::DiskService* disks() const { return disks_.get(); }
  compute::VmService* vms() const { return vms_.get(); }
  compute::ImageCatalog* images() const { return images_.get(); }
  compute::ComputeProvider* compute() const { return compute_; }
  network::NetworkService* networks() const { return networks_.get(); }
  recovery::service::RecoveryProvider* recovery() const { return recovery_; }
  // nullptr without ControlPlaneOptions::peer.
  recovery::site::PairingService* pairing() const { return pairing_.get(); }
  recovery::site::ReplicationService* replication() const { return replication_.get(); }

 private:
  ControlPlane() = default;

  api::RegionContext ctx_;
  // Services.
  std::unique_ptr<storage::DiskService> disks_;
  std::unique_ptr<compute::ImageCatalog> images_;
  std::unique_ptr<compute::VmService> vms_;
  std::unique_ptr<network::NetworkService> networks_;
  std::unique_ptr<network::LoadBalancerService> load_balancers_;  // after networks_: uses it
  std::unique_ptr<recovery::site::PairingService> pairing_;
  std::unique_ptr<recovery::site::ReplicationService> replication_;
  // The server owns the providers; these point into it.
  std::unique_ptr<api::ApiServer> server_;
  compute::ComputeProvider* compute_ = nullptr;
  storage::StorageProvider* storage_ = nullptr;
  network::NetworkProvider* network_ = nullptr;
  recovery::service::RecoveryProvider* recovery_ = nullptr;
};

}  // namespace stratus::daemon
