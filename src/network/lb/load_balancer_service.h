// LoadBalancerService: the region's load balancers (Stratus.Network/loadBalancers) — their
// records, the checks that need other resources, and their share of each VNET's datapath
// (LbHooks, called by NetworkService when it converges a VNET).
//
// State: one record per load balancer; its body is the ARM shape (load_balancer.h) with the
// addresses chosen for Dynamic internal frontends; internal "vnet" is the VNET of its internal
// frontends. Pool and NAT-rule membership is on the NICs (ipConfigurations[].properties.
// loadBalancerBackendAddressPools / loadBalancerInboundNatRules, as in ARM), so a NIC deleted
// leaves its pools with nothing to clean. A load balancer's VNET is its internal frontends'
// or its members': one VNET per load balancer.
//
// Writes take NetworkService's change lock, write the record and converge the VNETs concerned
// before they answer: the datapath uses the change when the PUT returns.
//
// Health: a rule with a probe balances over the pool members its probe finds Up (lb_prober.h);
// a change of health converges the VNET's router (only map elements change). A rule without a
// probe balances over every member.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <string>

#include "api/provider.h"
#include "network/lb/lb_hooks.h"
#include "network/lb/lb_prober.h"
#include "network/lb/load_balancer.h"
#include "network/network_service.h"

namespace stratus::network {

class LoadBalancerService final : public LbHooks, public LbHealthListener {
 public:
  // `network` (and `probes`, when given) outlive it; call network->SetLoadBalancers(this)
  // before its Start. `probes`: what runs the health probes (null: LinuxProbeRunner).
  LoadBalancerService(api::RegionContext ctx, NetworkService* network,
                      ProbeRunner* probes = nullptr)
      : ctx_(std::move(ctx)),
        network_(network),
        prober_(ctx_.clock, probes ? probes : &linux_probes_, this) {}
  ~LoadBalancerService() override { prober_.Stop(); }

  // Creates or replaces load balancer `id` from a PUT body (load_balancer.h for the body's own
  // checks). NotFound "InvalidResourceReference" for a frontend's missing public IP or subnet;
  // InvalidArgument "PublicIPAddressInUse" (a NIC's or another frontend's),
  // "PublicIPAddressSkuMismatch", "PrivateIPAddressNotInSubnet", "PrivateIPAddressInUse",
  // "PrivateIPAddressInReservedRange", "SubnetIsFull",
  // "NicAndLoadBalancerInDifferentVirtualNetworks"; Conflict
  // "InUseBackendAddressPoolCannotBeDeleted" / "InUseInboundNatRuleCannotBeDeleted" for a pool or
  // NAT rule left out while a NIC uses it.
  Result<NetworkService::Written> Put(const ResourceId& id, const Json& body,
                                      const std::string& caller, const store::WriteCondition& cond);
  // Conflict "InUseLoadBalancerCannotBeDeleted" while a NIC is in one of its pools or NAT rules;
  // NotFound if absent.
  Status Delete(const ResourceId& id);
  // The load balancer as the API shows it: with each pool's backendIPConfigurations and each
  // NAT rule's backendIPConfiguration.
  Result<Json> View(const store::Record& lb);

  // The health of every backend of every rule: `{"value": [{"loadBalancingRule": {"id"},
  // "probe": {"id"}|null, "backends": [{"ipConfiguration": {"id"}, "ipAddress", "health":
  // "Up|Down|Unknown", "inRotation", "since", "lastProbe", "lastError"}]}]}`.
  Result<Json> BackendHealth(const ResourceId& id);

  // LbHealthListener: converges the VNET of router `netns`.
  void HealthChanged(const std::string& netns) override;

  // LbHooks (NetworkService's lock held).
  Result<std::map<std::string, std::pair<std::vector<std::string>, std::vector<std::string>>>>
  CheckNicReferences(const ResourceId& nic, const std::string& vnet_key,
                     const std::vector<NicLbReferences>& refs) override;
  Result<std::vector<Ipv4>> FrontendAddresses(const std::string& vnet_key) override;
  Result<std::string> PublicIpUser(const std::string& pip_key) override;
  Result<VnetLoadBalancing> DatapathOf(const store::Record& vnet,
                                       const std::vector<store::Record>& nics,
                                       bool has_uplink) override;

 private:
  // A load balancer record with its parsed configuration.
  struct Loaded {
    store::Record rec;
    ResourceId id;
    LoadBalancer lb;
  };
  Result<std::vector<Loaded>> AllLocked();
  // Members of the load balancer `lb_key`'s pools and NAT rules among `nics`: per NIC IP
  // configuration, its address and which pools / NAT rules (names) it is in.
  struct Member {
    const store::Record* nic = nullptr;
    std::string config;
    Ipv4 ip;
    std::vector<std::string> pools;
    std::vector<std::string> nat_rules;
    bool has_public_ip = false;
  };
  static std::vector<Member> MembersOf(const Loaded& lb, const std::vector<store::Record>& nics);
  // The VNET the load balancer's members or internal frontends are in ("" for none yet).
  static std::string VnetOf(const Loaded& lb, const std::vector<Member>& members);
  Result<std::vector<store::Record>> Nics(const std::string& subscription);

  api::RegionContext ctx_;
  NetworkService* network_;
  LinuxProbeRunner linux_probes_;
  std::mutex mu_;                                     // guards vnet_of_netns_
  std::map<std::string, std::string> vnet_of_netns_;  // router namespace -> VNET key
  LbProber prober_;                                   // last: stopped first
};

}  // namespace stratus::network
