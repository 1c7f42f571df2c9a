// NetworkEngine: makes a region's virtual networks real on the host — one router namespace per
// VNET, a bridge per subnet, the gateways, DHCP and names — from a description of what each
// VNET should be (VnetDatapath).
//
// The network service (network_service.h) owns the desired state (the store) and hands the
// engine a whole VNET at a time; the engine converges the host to it. Engines:
// LinuxNetworkEngine (linux_network_engine.h: iproute2 and dnsmasq in network namespaces);
// unit tests use a fake that records what it was given.
//
// Convergence, not commands: ApplyVnet compares what exists with what is asked and changes only
// the difference, so calling it again with the same description changes nothing on the host and
// cuts no traffic (this is what a restarted stratusd does for every VNET). Every object it makes
// is named by kernel_names.h from the region id, so RemoveVnet and Sweep can find them without
// any other record: a crash between two steps leaves objects that the next ApplyVnet adopts or
// the next Sweep removes.
//
// Where addresses live: only inside the VNET's namespace (the gateways, dnsmasq). Bridges and
// the bridge ends of the gateway veths are in the root namespace without addresses (IPv6 off),
// so the host cannot reach into a VNET and a VNET cannot reach the host's networks.
//
// Thread-safety: calls may come from any thread; an engine serialises calls on the same VNET
// (same namespace) and may run calls on different VNETs concurrently.
//
// Errors: InvalidArgument for a description that names an object of another region or repeats
// a name; Unavailable when a host tool (ip, dnsmasq) is missing; Internal, naming the object and
// the tool's message, when the kernel or a tool refuses. A failed call may leave part of the
// change made; calling it again finishes it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "network/ipv4.h"
#include "network/lb/lb_datapath.h"
#include "network/nsg_compiler.h"
#include "network/nsg_counters.h"
#include "network/route_tables.h"

namespace stratus::network {

struct SubnetDatapath {
  std::string name;            // the subnet's resource name (for messages)
  std::string bridge;          // root-namespace bridge the NIC taps join (kernel_names.h)
  std::string veth_on_bridge;  // gateway veth, bridge end (root namespace)
  std::string veth_in_router;  // gateway veth, router end (VNET namespace), holds the gateway
  Ipv4Prefix prefix;
  Ipv4 gateway;  // GatewayOf(prefix); also the DHCP and DNS server
  int mtu = 1500;
  // With a route table: the kernel routing table its traffic is routed by (RouteTableId) and
  // the effective routes to put in it (router_routing.h). 0: the main table (system routes).
  uint32_t route_table = 0;
  std::vector<EffectiveRoute> routes;
  // Internal load balancers' frontend addresses in this subnet: the router holds them (as /32
  // on its link, beside the gateway) so that it answers ARP for them and their flows meet the
  // load balancers' table (lb_datapath.h).
  std::vector<Ipv4> frontends;
};

// A NIC as DHCP and DNS see it.
struct DhcpHost {
  std::string mac;  // "52:54:00:12:34:56"
  Ipv4 ip;
  std::string hostname;  // the VM's computer name when the NIC is its primary one, else ""
};

// A subnet of a peer whose route table sends traffic to appliances in this VNET (hub and spoke:
// the firewall VM sits in the hub). What enters from the peer with a source in `source` is
// routed by `routes` first, longest match: to the appliance (`appliance` set) or, for the
// subnet's other routes (`appliance` empty), on as any traffic from the peer. So the hub
// follows the spoke subnet's own routing decision, and other subnets of the spoke are untouched.
struct SteeredSubnet {
  Ipv4Prefix source;
  uint32_t table = 0;  // the kernel table (PeerSteeringTable of the source subnet's index)
  struct Hop {
    Ipv4Prefix prefix;
    std::optional<Ipv4> appliance;
    bool operator==(const Hop&) const = default;
  };
  std::vector<Hop> routes;
};

// A peering as the router of one side sees it: a veth pair between the two routers, the peer's
// address spaces routed over it, and what may come in from it. Only Connected peerings (both
// sides exist) are in a VnetDatapath.
struct PeeringDatapath {
  std::string name;          // the peering's resource name (for messages)
  std::string veth;          // this router's end (PeeringVeth of the remote VNET's index)
  std::string remote_netns;  // the peer VNET's router namespace
  std::string remote_veth;   // the end in `remote_netns` (PeeringVeth of this VNET's index)
  Ipv4 remote_transit;       // the peer router's address on its peering links
  std::vector<Ipv4Prefix> remote_spaces;  // routed to the peer
  bool allow_access = true;               // false: nothing from the peer enters this VNET
  bool allow_forwarded = false;           // false: only packets from `remote_spaces` enter
  std::vector<SteeredSubnet> steered;     // the peer's subnets that use this VNET's appliances
};

// A public IP on one of the VNET's NICs: 1:1 NAT in the router (inbound DNAT, ICMP too;
// outbound SNAT to the public address).
struct PublicNat {
  Ipv4 public_ip;
  Ipv4 private_ip;
  auto operator<=>(const PublicNat&) const = default;
};

// A VNET's way to the region's uplink: a veth pair from its router (`veth`, holding the router's
// transit address) to the edge namespace (`edge_veth`, holding kEdgeAddress). With it the
// router's main table and the subnet tables' Internet routes lead to the edge, private ranges
// stay blackholed, NICs with a public IP are NATed 1:1 and the others SNATed to the transit
// address (the edge masquerades that to the uplink's address). Empty `edge_netns`: the region
// has no uplink; Internet routes are unreachable.
struct UplinkDatapath {
  std::string edge_netns;  // EdgeNamespace(rid), "" for none
  std::string veth;        // the router end (kUplinkVethInRouter)
  std::string edge_veth;   // the edge end (UplinkVethInEdge of the VNET's index)
  std::vector<PublicNat> nats;
  // Public load balancers' frontend addresses whose backends are in this VNET: the edge routes
  // them to this router, as it does the public IPs of `nats`.
  std::vector<Ipv4> routed;
  // Subnets without default outbound access (Azure's private subnets, defaultOutboundAccess
  // false): what their NICs send out of the VNET is dropped unless it comes from a private
  // address with a public IP (`nats`).
  std::vector<Ipv4Prefix> private_subnets;
};

struct VnetDatapath {
  std::string name;        // the VNET's resource name (for messages)
  std::string netns;       // its router namespace
  std::string dns_domain;  // "<vnet>.internal": names are <host> and <host>.<dns_domain>
  std::vector<std::string> upstream_dns;  // resolvers other names go to; empty: none
  std::vector<SubnetDatapath> subnets;
  std::vector<DhcpHost> hosts;
  Ipv4 transit;  // this router's address on its peering links (TransitAddress)
  std::vector<PeeringDatapath> peerings;
  UplinkDatapath uplink;
  // The load balancers whose backends are in this VNET (lb_datapath.h).
  LbDatapath lb;
};

// The region's edge: the namespace that holds the uplink (an interface moved into it, so the
// root namespace never holds its address) with its address and default route, forwards the
// public pool to the VNET routers (UplinkDatapath) and masquerades what leaves without a
// public address. From the uplink only packets to the pool (or replies) come in.
struct EdgeDatapath {
  std::string netns;       // EdgeNamespace(rid)
  std::string uplink;      // interface name (in the root namespace before the first apply)
  Ipv4 uplink_ip;          // its address ...
  int uplink_length = 24;  // ... and prefix length
  Ipv4 uplink_gateway;     // the default route's next hop on the uplink
  Ipv4Prefix pool;         // the region's public addresses
};

// What exists on the host for one region (names only), for cleanup and checks.
struct RegionObjects {
  std::vector<std::string> namespaces;  // stv-<rid>-*, ste-<rid>
  std::vector<std::string> links;       // root-namespace bridges and veths of the region
  std::vector<int> dns_pids;            // dnsmasq processes serving the region's VNETs
  std::vector<std::string> nft_tables;  // the region's security table, when it exists
};

class NetworkEngine {
 public:
  virtual ~NetworkEngine() = default;

  // Converges VNET `vnet` (creating its namespace on first use): every subnet has its bridge,
  // gateway veth and gateway address; subnets of this namespace not in `vnet.subnets` are
  // removed (bridge and veth); dnsmasq serves exactly `vnet.hosts` (address, gateway, DNS, MTU,
  // infinite lease; names) and is started, told to re-read (a host added or gone) or restarted
  // (a subnet added or gone) only when its configuration changed. Peerings: the veth pair to
  // each peer router (made by whichever side is applied first, once both namespaces exist; a
  // peering no longer listed is removed, which removes the peer's end too), the peer's spaces
  // routed over it, and policy rules on what enters from it: never on to another peer
  // (peering is not transitive), only sources in the peer's spaces unless forwarded traffic is
  // allowed, nothing when access is off.
  virtual Status ApplyVnet(const VnetDatapath& vnet) = 0;
  // Makes the load balancers' table of the router `netns` (made by ApplyVnet) what `lb` says:
  // only the changed slots of the rules' maps when nothing else changed, else the table anew
  // in one transaction (lb_datapath.h); removed when `lb` is empty. For health changes, which
  // need nothing else of the VNET; ApplyVnet applies VnetDatapath::lb the same way.
  virtual Status ApplyLoadBalancing(const std::string& netns, const LbDatapath& lb) = 0;
  // Removes everything of the VNET whose namespace is `netns`: dnsmasq, the subnets' bridges
  // and veths, the namespace. OK when nothing is left already.
  virtual Status RemoveVnet(const std::string& netns) = 0;
  // Removes every object of the region that is not in `keep_netns` (VNET namespaces) or on a
  // kept namespace's subnets: what a restarted stratusd calls after applying every VNET, so
  // that nothing a deleted resource made survives a crash.
  virtual Status Sweep(const std::vector<std::string>& keep_netns) = 0;
  // Makes the region's security table exactly `security` (nsg_compiler.h) in one transaction:
  // no moment without rules, and replies of flows already allowed keep passing; after the
  // first call only what changed is changed. With no stage
  // and no NIC the table is removed.
  virtual Status ApplySecurity(const SecurityDatapath& security) = 0;
  // The hit counters of every rule of the stages `stages` (NsgStage keys; empty: all) as the
  // table holds them since the last ApplySecurity of this engine (nsg_counters.h): packets and
  // bytes since the rule's elements were made (this process's first apply, or the rule's last
  // change). Empty when nothing was applied since the engine was made. Internal when the kernel
  // cannot be read.
  virtual Result<std::vector<RuleCounter>> SecurityCounters(
      const std::vector<std::string>& stages) = 0;
  // Makes the edge namespace what `edge` says (first call: creates it and moves the uplink
  // interface in). VNETs' uplink links are made by ApplyVnet (after this).
  virtual Status ApplyEdge(const EdgeDatapath& edge) = 0;
  // Removes the edge namespace (the uplink interface goes back to the root namespace when it
  // is a physical one; a veth is destroyed). OK when there is none.
  virtual Status RemoveEdge() = 0;
  // What exists now.
  virtual Result<RegionObjects> List() = 0;
};

}  // namespace stratus::network
