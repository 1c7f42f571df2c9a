#include "daemon/control_plane.h"

#include "network/kernel_names.h"
#include "recovery/site/site_recovery_provider.h"

namespace stratus::daemon {

Result<std::unique_ptr<ControlPlane>> ControlPlane::Build(const api::RegionContext& ctx,
                                                          auth::TokenAuthenticator* auth,
                                                          compute::Hypervisor* hv,
                                                          storage::DiskEngine* engine,
                                                          network::NetworkEngine* net,
                                                          const ControlPlaneOptions& options) {
  std::unique_ptr<ControlPlane> c(new ControlPlane());
  c->ctx_ = ctx;
  // Services other modules call (never a provider's HTTP-shaped entry points).
  c->disks_ = std::make_unique<storage::DiskService>(ctx, engine);
  c->images_ = std::make_unique<compute::ImageCatalog>(ctx.store, engine,
                                                         options.platform_images_dir);
  c->networks_ = std::make_unique<network::NetworkService>(
      ctx, net, network::ShortRegionId(ctx.region, ctx.data_dir));
  if (options.edge) c->networks_->ConfigureEdge(*options.edge);
  c->load_balancers_ =
      std::make_unique<network::LoadBalancerService>(ctx, c->networks_.get(), options.probe_runner);
  c->networks_->SetLoadBalancers(c->load_balancers_.get());
  c->vms_ = std::make_unique<compute::VmService>(ctx, hv, c->disks_.get(), c->images_.get(),
                                                 c->networks_.get());
  c->disks_->SetOwners(c->vms_.get());
  if (options.peer) {
    ASSIGN_OR_RETURN(c->pairing_, recovery::site::PairingService::Open(ctx, *options.peer));
  }
  c->replication_ = std::make_unique<recovery::site::ReplicationService>(
      recovery::site::ReplicationDeps{ctx, c->pairing_.get(), hv, c->disks_.get(), engine,
                                      c->vms_.get(), c->networks_.get()});
  c->replication_->RegisterRoutes();

  // Providers: the API of each namespace's resource types.
  auto compute_p = std::make_unique<compute::ComputeProvider>(
      ctx, c->vms_.get(), c->disks_.get(), c->images_.get(), options.image_import);
  auto storage_p =
      std::make_unique<storage::StorageProvider>(ctx, c->disks_.get(), c->images_.get());
  auto recovery_p = std::make_unique<recovery::service::RecoveryProvider>(
      ctx, recovery::service::RecoveryProvider::Services{hv, c->vms_.get(), c->disks_.get(),
                                                         c->networks_.get(),
                                                         c->replication_.get()});
  auto network_p = std::make_unique<network::NetworkProvider>(ctx, c->networks_.get());
  auto lb_p = std::make_unique<network::LoadBalancerProvider>(ctx, c->load_balancers_.get());
  auto site_p = std::make_unique<recovery::site::SiteRecoveryProvider>(ctx, c->pairing_.get());
  c->compute_ = compute_p.get();
  c->network_ = network_p.get();
  c->storage_ = storage_p.get();
  c->recovery_ = recovery_p.get();

  // The API server routes each (namespace, type) to its provider.
  c->server_ = std::make_unique<api::ApiServer>(ctx, auth, options.activity);
  RETURN_IF_ERROR(c->server_->AddProvider(std::move(compute_p)));
  RETURN_IF_ERROR(c->server_->AddProvider(std::move(storage_p)));
  RETURN_IF_ERROR(c->server_->AddProvider(std::move(network_p)));
  RETURN_IF_ERROR(c->server_->AddProvider(std::move(lb_p)));
  RETURN_IF_ERROR(c->server_->AddProvider(std::move(recovery_p)));
  RETURN_IF_ERROR(c->server_->AddProvider(std::move(site_p)));
  return c;
}

ControlPlane::~ControlPlane() { Stop(); }

Status ControlPlane::Start() {
  RETURN_IF_ERROR(StartProviders());
  return ctx_.ops->RecoverInterrupted();
}

Status ControlPlane::StartProviders() {
  // Networks first: VMs that compute starts again plug into bridges that exist.
  RETURN_IF_ERROR(network_->Start());
  RETURN_IF_ERROR(compute_->Start());
  RETURN_IF_ERROR(storage_->Start());
  RETURN_IF_ERROR(recovery_->Start());
  if (pairing_) RETURN_IF_ERROR(pairing_->Start().status());
  return replication_->Start();
}

void ControlPlane::Stop() {
  if (server_) server_->Stop();
  if (replication_) replication_->Stop();
  if (pairing_) pairing_->Stop();
  if (recovery_) recovery_->Stop();  // queued jobs stop waiting before the workers are joined
}

}  // namespace stratus::daemon
