// Names of the kernel objects a region's networks are made of.
//
// Every network namespace, bridge, veth, tap and nftables table a region creates is named from
// its short region id (4 characters of [a-z2-7], from a hash of the region's name and data
// folder, so two regions on one machine never share a name) and a small per-object index that
// the network service allocates once and stores with the resource, so that a name never changes
// for the life of the object. Every name fits the kernel's 15-character limit (IFNAMSIZ - 1) and
// none starts with a prefix libvirt reserves ("vnet", "macvtap", "macvlan"). Pure functions.
//
//   VNET router namespace   stv-<rid>-<vnet>   e.g. "stv-k3pa-0007"   (vnet: 4 hex)
//   region edge namespace   ste-<rid>          e.g. "ste-k3pa"
//   subnet bridge           sb<rid><subnet>    e.g. "sbk3pa00002a"    (subnet: 6 hex)
//   gateway veth, bridge    sg<rid><subnet>    end on the bridge; the router end is
//   gateway veth, router    gw<subnet>         "gw00002a" inside the VNET namespace
//   NIC tap                 st<rid><nic>       e.g. "stk3pa000101"    (nic: 6 hex)
//   peering veth, router    pr<remote vnet>    "pr0007" inside the VNET namespace, one end in
//                                              each of the two peered routers
//   uplink veth, router     up                 inside the VNET namespace; its other end is
//   uplink veth, edge       ex<vnet>           "ex0007" inside the edge namespace
//   nftables table          stratus_<rid>      bridge family (NSGs), in the root namespace
//                           stratus            ip family, inside a router or the edge (NAT)
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "network/ipv4.h"

namespace stratus::network {

// 4 characters of [a-z2-7] (base32 of SHA-256 of "<region>\n<data dir>").
std::string ShortRegionId(const std::string& region, const std::string& data_dir);

// Names from a short region id (as ShortRegionId returns) and an index; InvalidArgument when
// the id is not 4 characters of [a-z2-7] or the index does not fit (VNETs: 0xffff, subnets and
// NICs: 0xffffff).
Result<std::string> VnetNamespace(const std::string& rid, uint32_t vnet);
Result<std::string> EdgeNamespace(const std::string& rid);
Result<std::string> SubnetBridge(const std::string& rid, uint32_t subnet);
Result<std::string> GatewayVethOnBridge(const std::string& rid, uint32_t subnet);
Result<std::string> GatewayVethInRouter(uint32_t subnet);
Result<std::string> NicTap(const std::string& rid, uint32_t nic);
Result<std::string> NftTable(const std::string& rid);
// The end, inside a VNET's router namespace, of its peering link to VNET `remote_vnet`.
Result<std::string> PeeringVeth(uint32_t remote_vnet);
// The link address of VNET `vnet`'s router on its peering links: 169.254.<hi>.<lo> of the index
// (link-local, which no VNET address space may use; the same on each of the router's links).
Result<Ipv4> TransitAddress(uint32_t vnet);

// The MAC address of every subnet gateway (the router end of its gateway veth): one fixed,
// locally administered address, Azure's, so that a gateway made again is the same neighbour.
inline constexpr char kGatewayMac[] = "12:34:56:78:9a:bc";

// The uplink link of a VNET's router (kernel_names.h) and the edge's address on every one.
inline constexpr char kUplinkVethInRouter[] = "up";
inline constexpr uint32_t kEdgeAddress = 0xa9fe0000u;  // 169.254.0.0
Result<std::string> UplinkVethInEdge(uint32_t vnet);

// Whether `name` is a kernel object of region `rid` (any of the kinds above): what cleanup and
// the "nothing left" checks look for.
bool BelongsToRegion(const std::string& name, const std::string& rid);

}  // namespace stratus::network
