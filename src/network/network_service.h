// NetworkService: the virtual networks of a region — their desired state in the store and the
// datapath that makes it real (NetworkEngine). The Stratus.Network API (network_provider.h)
// validates requests and answers them through it; compute plugs NICs through NicBindings.
//
// State: a VNET record holds its address space and its subnets inline (one record, so a VNET
// and its subnets change atomically); a NIC record holds its IP configurations (subnet, address,
// allocation method), MAC and tap name. Which addresses are taken is read from the NIC records
// themselves (no second book to drift from them).
//
// Changes are applied before the call returns: the record is written, then the VNET's datapath
// is converged (a few `ip` commands, a SIGHUP or restart of dnsmasq: tens of milliseconds). A
// crash in between leaves the record ahead of the host; Start() converges every VNET and sweeps
// what no record claims, so the datapath always catches up with the store.
//
// Kernel names: each VNET, subnet and NIC gets an index once (a counter in the store's
// settings), from which its namespace, bridge, veth and tap names are made (kernel_names.h).
//
// Thread-safety: one mutex serialises every change and convergence of the region's networks
// (they are short); reads take it too.
#pragma once

#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "api/provider.h"
#include "network/ipv4.h"
#include "network/lb/lb_hooks.h"
#include "network/network_engine.h"
#include "network/nic_bindings.h"
#include "network/nic_layout.h"

namespace stratus::network {

inline constexpr char kVnetType[] = "stratus.network/virtualnetworks";
inline constexpr char kNicType[] = "stratus.network/networkinterfaces";
inline constexpr char kNsgType[] = "stratus.network/networksecuritygroups";
inline constexpr char kRouteTableType[] = "stratus.network/routetables";
inline constexpr char kPublicIpType[] = "stratus.network/publicipaddresses";

class NetworkService final : public NicBindings {
 public:
  // `engine` outlives it; `region_id` is ShortRegionId() of this region.
  NetworkService(api::RegionContext ctx, NetworkEngine* engine, std::string region_id)
      : ctx_(std::move(ctx)), engine_(engine), rid_(std::move(region_id)) {}

  const std::string& region_id() const { return rid_; }

  struct Written {
    store::Record record;
    bool created = false;
  };

  // Creates or replaces VNET `id` from a PUT body (location, tags, properties.addressSpace,
  // properties.subnets: when present, the whole set of subnets; when absent, the subnets stay).
  // InvalidArgument naming the field (Netcfg* codes from ipv4.h); Conflict
  // "InUseSubnetCannotBeDeleted" / "InUseSubnetCannotBeUpdated" for a subnet with NICs.
  Result<Written> PutVnet(const ResourceId& id, const Json& body, const std::string& caller,
                          const store::WriteCondition& cond);
  // Creates or replaces subnet `id` (virtualNetworks/{v}/subnets/{s}) from a PUT body.
  Result<Written> PutSubnet(const ResourceId& id, const Json& body, const std::string& caller);
  // Conflict "InUseSubnetCannotBeDeleted" while a NIC uses one of its subnets,
  // "InUseVirtualNetworkCannotBeDeleted" while it has peerings (unless `force`, inside a group's
  // deletion: its peerings go with it); NotFound if absent.
  Status DeleteVnet(const ResourceId& id, bool force = false);
  Status DeleteSubnet(const ResourceId& id);

  // Creates or updates peering `id` (virtualNetworks/{v}/virtualNetworkPeerings/{p}) to the
  // VNET in properties.remoteVirtualNetwork.id (network_peering.cc). InvalidArgument
  // "VnetAddressSpacesOverlap" when the spaces overlap (or overlap another peer's),
  // "CannotPeerVirtualNetworkToItself", "VirtualNetworkPeeringAlreadyExists" (a second peering
  // to the same VNET), "CannotChangeRemoteVirtualNetwork", "FeatureNotAvailable" (gateway
  // transit); NotFound "InvalidResourceReference" for an unknown remote VNET.
  Result<Written> PutPeering(const ResourceId& id, const Json& body, const std::string& caller);
  // Removes the peering (and the datapath link); the remote side becomes Disconnected.
  Status DeletePeering(const ResourceId& id);
  Result<Json> PeeringView(const ResourceId& id);
  Result<Json> PeeringList(const ResourceId& vnet);

  // Creates or updates NIC `id`. Dynamic addresses are allocated in order from the subnet and
  // kept for the NIC's life; a Static address must be in the subnet, not reserved, not taken.
  // InvalidArgument "PrivateIPAddressNotInSubnet" / "PrivateIPAddressInReservedRange" /
  // "PrivateIPAddressInUse" / "SubnetIsFull"; NotFound "InvalidResourceReference" for an
  // unknown subnet. A Dynamic configuration given a privateIPAddress gets that address when it
  // is free in the subnet (a restore keeps a VM's addresses so), else the next free one.
  Result<Written> PutNic(const ResourceId& id, const Json& body, const std::string& caller,
                         const store::WriteCondition& cond) {
    return WriteNic(id, body, caller, cond, false);
  }
  // The error PutNic would return for `body`, or OK; writes nothing.
  Status CheckNic(const ResourceId& id, const Json& body) {
    return WriteNic(id, body, "", {}, true).status();
  }
  // Conflict "NicInUse" while a VM holds it (unless `force`, inside a group's deletion).
  Status DeleteNic(const ResourceId& id, bool force = false);

  // Creates or replaces security group `id` (properties.securityRules: when present, the whole
  // set; when absent, the rules stay). InvalidArgument with the codes of security_rules.h.
  Result<Written> PutNsg(const ResourceId& id, const Json& body, const std::string& caller,
                         const store::WriteCondition& cond);
  // Creates or replaces rule `id` (networkSecurityGroups/{n}/securityRules/{r}).
  Result<Written> PutSecurityRule(const ResourceId& id, const Json& body,
                                  const std::string& caller);
  // Conflict "InUseNetworkSecurityGroupCannotBeDeleted" while a subnet or NIC uses it.
  Status DeleteNsg(const ResourceId& id);
  Status DeleteSecurityRule(const ResourceId& id);
  // An NSG with its defaultSecurityRules and the subnets and NICs that use it; one rule; the list.
  Json NsgView(const store::Record& nsg);
  Result<Json> SecurityRuleView(const ResourceId& id);
  Result<Json> SecurityRuleList(const ResourceId& nsg);
  // The rules that apply to NIC `nic`, per NSG (its subnet's, then its own), in evaluation
  // order with the tags expanded: ARM's effectiveNetworkSecurityGroups.
  // Each rule also carries `packets` and `bytes`: what it matched (nsg_counters.h) on every NIC
  // of this VNET that the NSG applies to.
  Result<Json> EffectiveSecurityRules(const ResourceId& nic);
  // Every rule of NSG `nsg` (its own, then the defaults; inbound, then outbound) with the packets
  // and bytes it matched, in total and per VNET where the NSG applies: the `ruleCounters` action.
  Result<Json> SecurityRuleCounters(const ResourceId& nsg);
  // The security datapath the region should have: every NIC (its source check) and the NSGs
  // on NICs and subnets.
  Result<SecurityDatapath> DesiredSecurity();

  // Creates or replaces route table `id` (properties.routes: when present, the whole set; when
  // absent, the routes stay; network_routes.cc). InvalidArgument with the codes of
  // route_tables.h, and "NextHopIpAddressNotInVirtualNetwork" when a subnet using the table has
  // no subnet holding an appliance's address. The VNETs of the subnets using it converge.
  Result<Written> PutRouteTable(const ResourceId& id, const Json& body, const std::string& caller,
                                const store::WriteCondition& cond);
  // Creates or replaces route `id` (routeTables/{t}/routes/{r}).
  Result<Written> PutRoute(const ResourceId& id, const Json& body, const std::string& caller);
  // Conflict "InUseRouteTableCannotBeDeleted" while a subnet uses it.
  Status DeleteRouteTable(const ResourceId& id);
  Status DeleteRoute(const ResourceId& id);
  // A route table with the subnets that use it; one route; the list.
  Json RouteTableView(const store::Record& table);
  Result<Json> RouteView(const ResourceId& id);
  Result<Json> RouteList(const ResourceId& table);
  // The routes NIC `nic`'s traffic follows (its subnet's system and user routes, each Active or
  // Invalid): ARM's effectiveRouteTable.
  Result<Json> EffectiveRouteTable(const ResourceId& nic);

  // The region's uplink and public pool (EdgeDatapath; its netns is set here), before Start.
  // Without it the region has no public IPs and no way out.
  void ConfigureEdge(EdgeDatapath edge);

  // Creates or updates public IP `id` (publicIPAddresses/{p}; network_public_ips.cc): sku
  // Basic or Standard (Standard must be Static: "StandardSkuPublicIPAddressesMustBeStatic"),
  // publicIPAllocationMethod Static (an address of the pool reserved now, kept until the
  // resource is deleted) or Dynamic (taken when a NIC's IP configuration uses it, given back
  // when none does). InvalidArgument "PublicIPAddressPoolNotConfigured" in a region without a
  // pool; Conflict "PublicIPAddressPoolExhausted" (nothing created) when no address is free.
  Result<Written> PutPublicIp(const ResourceId& id, const Json& body, const std::string& caller,
                              const store::WriteCondition& cond) {
    return WritePublicIp(id, body, caller, cond, false);
  }
  // The error PutPublicIp would return for `body`, or OK; writes nothing.
  Status CheckPublicIp(const ResourceId& id, const Json& body) {
    return WritePublicIp(id, body, "", {}, true).status();
  }
  // Conflict "PublicIPAddressPoolExhausted" unless the pool has `new_addresses` free addresses
  // plus one for each public IP of `existing` (ids) that has none yet (a Dynamic one a NIC will
  // use): what a plan of several public IPs checks before it makes any. OK when it needs none.
  Status CheckPoolHolds(uint32_t new_addresses, const std::vector<std::string>& existing);
  // Conflict "PublicIPAddressCannotBeDeleted" while a NIC's IP configuration uses it.
  Status DeletePublicIp(const ResourceId& id);
  // A public IP with the IP configuration that uses it (properties.ipConfiguration).
  Json PublicIpView(const store::Record& pip);
  // The id of the NIC whose IP configuration uses public IP `id` ("" when none does);
  // NotFound when it does not exist.
  Result<std::string> PublicIpHolder(const std::string& id);

  // The load balancers (lb/load_balancer_service.h), before Start: NICs join their pools,
  // public IPs and addresses they use are not given to others, VNET datapaths carry their
  // tables. Without it there are none.
  void SetLoadBalancers(LbHooks* hooks) { lb_ = hooks; }
  // For the load balancers' own writes: the lock every network change holds, and under it the
  // convergence of VNET `vnet_key` and PublicIpHolder.
  std::unique_lock<std::mutex> LockChanges() { return std::unique_lock<std::mutex>(mu_); }
  Status ConvergeVnetLocked(const std::string& vnet_key) { return ConvergeLocked(vnet_key); }
  // Only the load balancers' table of VNET `vnet_key`'s router (NetworkEngine::
  // ApplyLoadBalancing): what a health change needs.
  Status ConvergeLoadBalancingLocked(const std::string& vnet_key);
  Result<std::string> PublicIpHolderLocked(const std::string& id);

  // The NICs `nic_ids` (a VM's, primary first) as a backup records them (nic_layout.h), with
  // the public IP each IP configuration uses. A NIC that does not exist (or an id that does
  // not parse) is NotFound, or, with `missing`, left out and appended to it.
  Result<std::vector<NicLayout>> Layouts(const std::vector<std::string>& nic_ids,
                                         std::vector<std::string>* missing = nullptr);

  // The VNETs of `subnet_ids` (each once, in order) as site recovery records them, to make an
  // isolated copy for a test failover (nic_layout.h: VNET layout JSON). A VNET that does not
  // exist is left out.
  Json VnetLayouts(const std::vector<std::string>& subnet_ids);

  // The views the API returns: a VNET with its subnets' ipConfigurations; one subnet; the list.
  Json VnetView(const store::Record& vnet);
  Result<Json> SubnetView(const ResourceId& id);
  Result<Json> SubnetList(const ResourceId& vnet);

  // Converges every VNET of the region with its record, then removes kernel objects no record
  // claims. Running traffic is not cut: objects that are as they should be are left alone.
  Status Start();

  // NicBindings.
  Result<std::vector<NicPlug>> Resolve(const std::vector<std::string>& nic_ids,
                                       const std::string& vm_id) override;
  Status Bind(const std::string& nic_id, const std::string& vm_id, bool primary,
              const std::string& hostname) override;
  Status Unbind(const std::string& nic_id, const std::string& vm_id, bool delete_nic) override;

  // The datapath VNET `vnet` should have (for tests and the effective views).
  Result<VnetDatapath> Desired(const store::Record& vnet);

 private:
  Status ConvergeLocked(const std::string& vnet_key);
  // Peerings (network_peering.cc).
  Result<std::vector<store::Record>> AllVnets();
  // The VNETs that `vnet_key` peers with or that peer with it (any state).
  static std::set<std::string> PeersOf(const std::string& vnet_key,
                                       const std::vector<store::Record>& vnets);
  // InvalidArgument "VnetAddressSpacesOverlap" when `spaces` (a VNET's new address space)
  // overlap a peer's.
  Status CheckPeeredSpaces(const std::string& vnet_key, const std::vector<Ipv4Prefix>& spaces);
  // Recomputes the state and remote address space of every peering of `vnet_keys`, writes the
  // records that changed, then converges each of those VNETs.
  Status RefreshPeeringsLocked(const std::set<std::string>& vnet_keys);
  // Route tables (network_routes.cc).
  // InvalidArgument "NextHopIpAddressNotInVirtualNetwork" unless every appliance of `routes`
  // is in one of `subnets` (VNET `vnet_key`'s) or in a subnet of a VNET peered with it.
  Status CheckAppliances(const std::vector<Route>& routes, const Json& subnets,
                         const std::string& vnet_key, const std::string& vnet_name,
                         const std::string& table);
  // The appliances of the route tables of `subnets` (a VNET's new set) are on those subnets
  // or its peers'.
  Status CheckRouteTablesOfSubnets(const Json& subnets, const std::string& vnet_key,
                                   const std::string& vnet_name);
  Result<Written> WriteRouteTableLocked(const ResourceId& id, const std::string& location,
                                        const Json& tags, const std::vector<Route>& routes,
                                        const std::string& caller,
                                        const store::WriteCondition& cond);
  Result<std::vector<EffectiveRoute>> SubnetRoutes(const store::Record& vnet, const Json& subnet);
  // Sets `sd`'s route table and routes when `subnet` has a route table.
  Status SubnetRoutesDatapath(const store::Record& vnet, const Json& subnet,
                              uint32_t subnet_index, SubnetDatapath& sd);
  // The subnets of `remote` (a peer of `vnet`) whose routes lead to appliances in `vnet`.
  Result<std::vector<SteeredSubnet>> SteeredSubnetsOf(const store::Record& remote,
                                                      const store::Record& vnet);
  // Adds the transit address and the Connected peerings of `vnet` to `d`.
  Status PeeringsDatapath(const store::Record& vnet, VnetDatapath& d);
  Result<std::vector<store::Record>> NicsOfSubscription(const std::string& subscription);
  // PutNic / PutPublicIp; with `validate_only`, every check and nothing written.
  Result<Written> WriteNic(const ResourceId& id, const Json& body, const std::string& caller,
                           const store::WriteCondition& cond, bool validate_only);
  Result<Written> WritePublicIp(const ResourceId& id, const Json& body, const std::string& caller,
                                const store::WriteCondition& cond, bool validate_only);
  // Public IPs (network_public_ips.cc). The lowest free address of the pool, or the errors of
  // PutPublicIp.
  // `also_taken`: addresses picked but not written yet.
  Result<Ipv4> AllocatePublicLocked(const std::vector<Ipv4>& also_taken = {});
  // The `count` lowest free addresses of the pool, or the errors of AllocatePublicLocked.
  Result<std::vector<Ipv4>> FreePublicLocked(uint32_t count, const std::vector<Ipv4>& also_taken);
  // For NIC `nic` whose IP configurations now use `wanted` (config name -> public IP key):
  // checks each exists and is used by no other NIC ("PublicIPAddressInUse"), picks addresses
  // for ones that have none and gives back those of Dynamic ones `nic` no longer uses
  // (`before`: what it used). Returns the public IP records to write once the NIC is written;
  // writes nothing itself.
  Result<std::vector<store::Record>> AssociatePublicIpsLocked(const ResourceId& nic,
                                                              const Json& wanted,
                                                              const Json& before,
                                                              const std::string& field);
  // Start: Dynamic public IPs get an address when used, lose it when not.
  Status ReconcilePublicIpsLocked();
  // The 1:1 NATs of the NICs of `vnet` (with their public IPs' addresses).
  Result<std::vector<PublicNat>> NatsOf(const store::Record& vnet,
                                        const std::vector<store::Record>& nics);
  Result<uint32_t> NextIndex(const std::string& kind, uint32_t max);
  Result<Json> ValidateSubnet(const Json& s, const std::string& where, const ResourceId& vnet);
  Status CheckSubnetsInUse(const store::Record& vnet, const Json& new_subnets);
  Result<Written> WriteVnetLocked(const ResourceId& id, const std::string& location,
                                  const Json& tags, const Json& spaces, const Json& subnets,
                                  const Json& dhcp, const std::string& caller,
                                  const store::WriteCondition& cond);
  Status DeleteNicLocked(const ResourceId& id, bool force);
  Status ConvergeSecurityLocked();
  Result<std::vector<store::Record>> ListAll(const char* type, const std::string& prefix);
  Result<Written> WriteNsgLocked(const ResourceId& id, const std::string& location,
                                 const Json& tags, const std::vector<SecurityRule>& rules,
                                 const std::string& caller, const store::WriteCondition& cond);

  api::RegionContext ctx_;
  NetworkEngine* engine_;
  std::string rid_;
  std::mutex mu_;  // serialises every network change and convergence
  std::optional<EdgeDatapath> edge_;
  LbHooks* lb_ = nullptr;  // set before Start; called under mu_
};

}  // namespace stratus::network
