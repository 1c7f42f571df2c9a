// A load balancer's configuration (Stratus.Network/loadBalancers, ARM's shape): the body of a
// PUT parsed and checked on its own, and written back as the API shows it. What needs other
// resources (the public IP or subnet of a frontend, the NICs in a pool) is checked by
// LoadBalancerService (load_balancer_service.h).
//
// Sub-resources are named in the body and referenced by id, as in ARM:
// <lb id>/frontendIPConfigurations/<name>, /backendAddressPools/<name>, /probes/<name>,
// /loadBalancingRules/<name>, /inboundNatRules/<name>, /outboundRules/<name>.
//
// Errors: InvalidArgument naming the field (`properties.loadBalancingRules[1].properties.probe`)
// with ARM's codes where ARM has one: "InvalidResourceReference" (a reference to a sub-resource
// the body does not have, or of another load balancer), "RulesUseSameBackendPortProtocolAndPool",
// "LoadBalancingRuleFrontendPortConflict" (two rules or NAT rules on one frontend, protocol and
// port), "HaPortsRuleRequiresInternalLoadBalancer", "InvalidProbeRequestPath",
// "InvalidLoadBalancerSku", "DuplicateResourceName"; "InvalidParameter" otherwise.
//
// Pure values and functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/resource_id.h"
#include "core/status.h"

namespace stratus::network {

inline constexpr char kLoadBalancerType[] = "stratus.network/loadbalancers";
inline constexpr char kLoadBalancerTypeName[] = "Stratus.Network/loadBalancers";

struct LbFrontend {
  std::string name;
  std::string public_ip;   // the public IP's id (a public frontend), or ""
  std::string subnet;      // the subnet's id (an internal frontend), or ""
  std::string private_ip;  // an internal frontend's address: given (Static) or chosen (Dynamic)
  bool private_static = false;
};

struct LbProbe {
  std::string name;
  std::string protocol = "Tcp";  // "Tcp" or "Http"
  int port = 0;
  std::string request_path;  // Http: starts with '/'
  int interval_seconds = 5;  // 1..3600
  int threshold = 2;         // consecutive failures that take a backend out (and successes
                             // that bring it back): numberOfProbes / probeThreshold
  // Http: the statuses that mean healthy, inclusive ranges (default 200-200, as Azure).
  std::vector<std::pair<int, int>> expected_status = {{200, 200}};
};

enum class LbDistribution { kDefault, kSourceIpProtocol, kSourceIp };

struct LbRule {
  std::string name;
  std::string frontend;  // names of this load balancer's sub-resources
  std::string pool;
  std::string probe;             // "" for none: every backend in the pool counts as healthy
  std::string protocol = "Tcp";  // "Tcp", "Udp" or "All" (HA ports with ports 0)
  int frontend_port = 0;
  int backend_port = 0;
  LbDistribution distribution = LbDistribution::kDefault;
  int idle_timeout_minutes = 4;
  bool floating_ip = false;  // direct server return: the backend sees the frontend address
  bool disable_outbound_snat = false;
  bool HaPorts() const { return protocol == "All" && frontend_port == 0; }
};

struct LbNatRule {
  std::string name;
  std::string frontend;
  std::string protocol = "Tcp";  // "Tcp" or "Udp"
  int frontend_port = 0;
  int backend_port = 0;
  int idle_timeout_minutes = 4;
  bool floating_ip = false;
};

struct LbOutboundRule {
  std::string name;
  std::vector<std::string> frontends;
  std::string pool;
  std::string protocol = "All";
  int idle_timeout_minutes = 4;
};

struct LoadBalancer {
  std::string sku = "Standard";
  std::vector<LbFrontend> frontends;
  std::vector<std::string> pools;
  std::vector<LbProbe> probes;
  std::vector<LbRule> rules;
  std::vector<LbNatRule> nat_rules;
  std::vector<LbOutboundRule> outbound_rules;

  const LbFrontend* Frontend(const std::string& name) const;
  const LbProbe* Probe(const std::string& name) const;
  bool Internal() const;  // its frontends are private addresses (checked: all or none)
};

// Parses the body of a PUT of load balancer `lb` (its sku and properties) and checks it on its
// own: names, ports, enums, references between its sub-resources, conflicts between rules.
Result<LoadBalancer> ParseLoadBalancer(const Json& body, const ResourceId& lb);

// The id of sub-resource `name` of kind `kind` ("frontendIPConfigurations", ...) of `lb`.
std::string LbChildId(const ResourceId& lb, const std::string& kind, const std::string& name);

// The ARM form: sku and properties (sub-resources with id, name, type, etag and properties).
// Read-only members that depend on other resources (backendIPConfigurations, the frontends'
// address) are added by the service.
Json LoadBalancerSku(const LoadBalancer& lb);
Json LoadBalancerProperties(const LoadBalancer& lb, const ResourceId& id);

}  // namespace stratus::network
