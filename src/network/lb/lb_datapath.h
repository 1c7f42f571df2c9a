// The load balancers' datapath in a VNET router: what LoadBalancerService asks of a router
// (LbDatapath) and its nftables form, an `ip` family table "stratus_lb" in the router's
// namespace, beside the `stratus` NAT table of the way out (nat_rules.h):
//
//   count  (filter, prerouting -200)  every packet to a rule's frontend and port, counted by the
//                                     rule's named counter `c_<key>` (the API's per-rule figures)
//   pre    (nat, prerouting -110)     a new flow to a rule's frontend: its hash (5-, 3- or
//                                     2-tuple, by the rule's distribution) picks a slot of the
//                                     rule's Maglev table, the map `m_<key>` (slot -> backend),
//                                     and is DNATed to that backend (and the backend port);
//                                     a NAT rule's flow to its one backend; anything else to a
//                                     frontend address is dropped (no rule, or no healthy
//                                     backend: the map is empty)
//   post   (nat, postrouting 90)      a flow DNATed back out of the subnet it came from (a
//                                     client beside its backend, a backend reaching its own
//                                     frontend: hairpin) is SNATed to the frontend, so the reply
//                                     comes back through the router; backends' new flows out of
//                                     the uplink are SNATed to their outbound frontend
//
// Established flows keep their backend: the NAT is conntrack's, made by the first packet. So a
// backend leaving a table (a failed probe, a pool change) only sends new flows elsewhere, and a
// table change moves only the slots Maglev moves (maglev.h).
//
// A change of the backends of a rule is a change of its map's elements only (LbElementChanges):
// the rules, counters and every other map stay as they are. Anything else rebuilds the table in
// one transaction (counters start again; flows keep their NAT).
//
// Pure values and functions, thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/json.h"
#include "network/ipv4.h"
#include "network/lb/load_balancer.h"

namespace stratus::network {

inline constexpr char kLbTable[] = "stratus_lb";

// One load-balancing rule as a router applies it.
struct LbRuleDatapath {
  std::string key;  // short, stable, unique in the router: names its map and counter
  Ipv4 frontend;
  std::string protocol = "tcp";  // "tcp", "udp" or "all" (HA ports)
  int frontend_port = 0;         // 0: every port (HA ports)
  int backend_port = 0;          // 0: the flow's own port
  LbDistribution distribution = LbDistribution::kDefault;
  std::vector<Ipv4> backends;  // the healthy members of its pool: its Maglev table's
  bool operator==(const LbRuleDatapath&) const = default;
};

// An inbound NAT rule: one frontend port to one backend's port.
struct LbNatDatapath {
  std::string key;
  Ipv4 frontend;
  std::string protocol = "tcp";
  int frontend_port = 0;
  Ipv4 backend;
  int backend_port = 0;
  bool operator==(const LbNatDatapath&) const = default;
};

// Backends whose new flows out of the uplink leave with a frontend's address.
struct LbSnatDatapath {
  std::vector<Ipv4> sources;
  Ipv4 to;
  bool operator==(const LbSnatDatapath&) const = default;
};

struct LbDatapath {
  std::vector<LbRuleDatapath> rules;
  std::vector<LbNatDatapath> nats;
  std::vector<LbSnatDatapath> snats;
  std::vector<Ipv4> frontends;            // every frontend address that reaches this router
  std::vector<std::string> subnet_links;  // the router's links into its subnets (gw<subnet>)
  std::string uplink;                     // the router's uplink link, "" for none
  bool empty() const { return rules.empty() && nats.empty() && frontends.empty(); }
  bool operator==(const LbDatapath&) const = default;
};

// The table without its maps' elements: what decides whether a change is a rebuild.
Json LbStructure(const LbDatapath& lb);
// Every map's elements: map name -> the backend of each slot ("" when the rule has no backend).
std::map<std::string, std::vector<std::string>> LbElements(const LbDatapath& lb);
// The whole table, made anew in one transaction (made if absent, deleted, made again).
Json LbTableDocument(const Json& structure,
                     const std::map<std::string, std::vector<std::string>>& elements);
// The transaction that turns the maps' elements `have` into `want` (same structure): the
// slots that changed, deleted and added again; null when nothing changed.
Json LbElementChanges(const std::map<std::string, std::vector<std::string>>& have,
                      const std::map<std::string, std::vector<std::string>>& want);
// Removes the table whether or not it exists.
Json RemoveLbDocument();

}  // namespace stratus::network
