// LbHooks: what NetworkService asks of the load balancers (LoadBalancerService implements it),
// so that NICs, public IPs and VNET datapaths account for them without the network service
// knowing their shape. Every call is made with NetworkService's change lock held (the one
// LoadBalancerService takes for its own writes), so what it reads cannot change meanwhile; an
// implementation must not call back into NetworkService's locking methods.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/resource_id.h"
#include "core/status.h"
#include "network/ipv4.h"
#include "network/lb/lb_datapath.h"
#include "store/store.h"

namespace stratus::network {

// A VNET's share of the load balancers: the router's table, the internal frontends each of its
// subnets' links holds (by subnet name, lower case) and the public frontends the edge routes to
// it.
struct VnetLoadBalancing {
  LbDatapath lb;
  std::map<std::string, std::vector<Ipv4>> subnet_frontends;
  std::vector<Ipv4> routed;
};

// One IP configuration's load-balancer references, as a NIC's PUT gives them (ids as written).
struct NicLbReferences {
  std::string config;  // the IP configuration's name
  std::vector<std::string> pools;
  std::vector<std::string> nat_rules;
  std::string field;  // where they are in the body, for errors
};

class LbHooks {
 public:
  virtual ~LbHooks() = default;
  // Checks the references of NIC `nic` (which will be in VNET `vnet_key`) and returns them as
  // the NIC records them: per configuration, the ids of its pools and NAT rules as the load
  // balancers spell them. NotFound "InvalidResourceReference" for a pool or NAT rule that does
  // not exist; InvalidArgument "NicAndLoadBalancerInDifferentVirtualNetworks" for a load
  // balancer whose backends or frontend are in another VNET; Conflict
  // "InboundNatRuleInUse" for a NAT rule another IP configuration has.
  virtual Result<
      std::map<std::string, std::pair<std::vector<std::string>, std::vector<std::string>>>>
  CheckNicReferences(const ResourceId& nic, const std::string& vnet_key,
                     const std::vector<NicLbReferences>& refs) = 0;
  // The addresses internal frontends hold in VNET `vnet_key` (no NIC may take them).
  virtual Result<std::vector<Ipv4>> FrontendAddresses(const std::string& vnet_key) = 0;
  // The id of the load balancer whose frontend uses public IP `pip_key`, "" when none does.
  virtual Result<std::string> PublicIpUser(const std::string& pip_key) = 0;
  // VNET `vnet`'s share (`nics`: the subscription's NIC records), with the backends' health.
  virtual Result<VnetLoadBalancing> DatapathOf(const store::Record& vnet,
                                               const std::vector<store::Record>& nics,
                                               bool has_uplink) = 0;
};

}  // namespace stratus::network
