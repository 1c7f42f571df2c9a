// The nftables form of a region's network security groups: one bridge-family table
// (`stratus_<rid>`, root namespace) that sees every frame a NIC's tap sends or receives on its
// subnet bridge, to a neighbour or to the gateway, so NIC and subnet rules hold both ways and
// between VMs of one subnet too. Rendered as libnftables JSON, applied as one transaction.
//
//   chain forward (hook forward)   frames from or to a tap of the region  -> goto vnet
//   chain vnet
//     frames other than IPv4 and ARP are dropped (VNETs are IPv4);
//     iifname vmap @spoof_by_tap -> the sending NIC's source check: its MAC (Ethernet and ARP
//       sender), and one of its addresses (IP and ARP sender) unless it forwards; DHCP
//       requests and ARP probes from 0.0.0.0 pass; then ARP passes;
//     DHCP, and DNS to the subnet gateways, pass (platform traffic, as in Azure);
//     replies of allowed flows pass: @flows (tcp/udp) and @pings (ICMP echo) hold the reverse
//       of every original packet that passed, with a timeout (stateful without conntrack, which
//       the bridge family of this kernel lacks); @pings is keyed by the address pair only;
//     iifname vmap @out_by_tap   -> the sending NIC's outbound chain
//     oifname vmap @in_by_tap    -> the receiving NIC's inbound chain
//     the packet passed: record its reverse in @flows / @pings.
//   chain nic_<tap>_out: jump the NIC's NSG stage, then the subnet's (outbound: NIC then subnet)
//   chain nic_<tap>_in:  jump the subnet's NSG stage, then the NIC's (inbound: subnet then NIC)
//   chain nsg_<stage>_in|out: the NSG's rules for one VNET (tags depend on it) in priority order,
//     each run of consecutive rules with the same access one lookup per set kind in a
//     concatenated interval set: `ip saddr . ip daddr . meta l4proto . th sport . th dport`
//     (rules with ports) and `ip saddr . ip daddr . meta l4proto` (rules without), named
//     r_<stage>_<in|out>_<priority of the run's first rule><p|a>[<layer>]; Allow -> return (to
//     the next stage), Deny -> drop. The default rules end every stage. Elements of one set
//     never overlap (the kernel refuses an element with a corner inside another): overlapping
//     elements of a run go to further layers, one more lookup each (most runs have one).
//
// So a packet costs a few hash/interval lookups whatever the number of rules. Original-direction
// packets are checked against the rules every time, not only the first: a new Deny cuts an
// established flow at its next packet, a new Allow opens new flows at once.
//
// Changes: the datapath is first compiled into a SecurityModel (every chain's rules, every rule
// set's elements, every map entry). The first apply of a process (or one after a failure)
// replaces the whole table's rules in one transaction under a new generation suffix ("_g7": a
// transaction cannot delete an object and make another of the same name); later ones are a
// diff against the model applied last, in one transaction too: only the set elements, chains and
// map entries that changed. So a one-rule change costs about the same at 10 and 10,000 rules,
// and elements that did not change keep their counters. @flows is never touched: replies of
// established flows keep passing.
//
// Counters: every rule-set element counts the packets and bytes it matched. Each element is
// counted on the rule that produced it first in evaluation order (an element two rules of one
// run produce is counted on the earlier; a packet that overlapping elements of two rules of one
// run match is counted in the lowest layer holding one of them, which holds the earlier rule's
// unless that one was itself pushed up by a yet earlier rule).
//
// Pure functions; deterministic output.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "network/security_rules.h"

namespace stratus::network {

// One NSG as the NICs of one VNET see it (the tags' meaning depends on the VNET).
struct NsgStage {
  std::string key;  // [a-z0-9]{1,12}: names its chains and sets, unique in the region
  std::vector<SecurityRule> rules;  // the user's rules (defaults are added)
  TagContext tags;
};

// A NIC of the region. Every NIC's frames must carry its MAC and (unless it forwards, as a
// virtual appliance does) one of its addresses as source: no VM can pose as another, which the
// NSGs' source matching relies on. NICs without NSGs pass everything else.
struct NicSecurity {
  std::string tap;
  std::string subnet_stage;  // NsgStage key of its subnet's NSG, "" none
  std::string nic_stage;     // NsgStage key of its own NSG, "" none
  std::string mac;           // "52:54:00:..", "" = not checked
  std::vector<Ipv4> addresses;  // its private addresses; empty = not checked
  bool forwarding = false;      // enableIPForwarding: any source address
};

struct SecurityDatapath {
  std::string table;       // "stratus_<rid>"
  std::string tap_prefix;  // "st<rid>": the region's taps
  std::vector<NsgStage> stages;
  std::vector<NicSecurity> nics;
  std::vector<Ipv4> gateways;  // DNS servers of the subnets (platform traffic)
};

// One element of a rule set: inclusive ranges of source and destination address, protocol and
// (in ported sets) source and destination port.
struct RuleBox {
  uint32_t src_first = 0, src_last = 0xffffffff;
  uint32_t dst_first = 0, dst_last = 0xffffffff;
  uint16_t proto_first = 0, proto_last = 255;
  uint16_t sport_first = 0, sport_last = 65535;
  uint16_t dport_first = 0, dport_last = 65535;
  auto operator<=>(const RuleBox&) const = default;
};

// One run's set: its elements, each with the rule it is counted on.
struct RuleSet {
  std::string stage;  // NsgStage key
  Direction direction = Direction::kInbound;
  bool ported = false;  // 5-field (ports) or 3-field elements
  // element -> the rule it is counted on: its index in the stage's StageRules::rules
  std::map<RuleBox, int> owners;
  bool operator==(const RuleSet&) const = default;
};

// The rules of one stage and direction, in evaluation order (the defaults last), named as the
// effective view names them: "securityRules/<name>", "defaultSecurityRules/<name>".
struct StageRules {
  std::string stage;
  Direction direction = Direction::kInbound;
  std::vector<std::string> rules;
  bool operator==(const StageRules&) const = default;
};

// A SecurityDatapath compiled at one generation: what the table holds, object by object.
struct SecurityModel {
  uint64_t generation = 0;
  std::string table;
  std::string tap_prefix;
  // Regular chains ("vnet" and the generation's nsg_*/nic_* chains): name -> rules (each a
  // libnftables "expr" array). The base chain "forward" is implied by tap_prefix.
  std::map<std::string, std::vector<Json>> chains;
  std::map<std::string, RuleSet> sets;  // rule sets (r_*) by name
  // Verdict maps: tap -> chain it jumps to.
  std::map<std::string, std::string> out_by_tap, in_by_tap, spoof_by_tap;
  std::vector<StageRules> rules;  // for counters
  bool operator==(const SecurityModel&) const = default;
};

// Compiles `d` with object names of generation `generation`.
SecurityModel ModelSecurity(const SecurityDatapath& d, uint64_t generation);

// What exists in the table now (from `list table`), to replace it in the same transaction.
struct ExistingSecurity {
  bool table = false;
  uint64_t generation = 0;          // the highest generation suffix found
  std::vector<std::string> chains;  // nsg_* and nic_* chains
  std::vector<std::string> sets;    // rule sets (r_*)
};

// The libnftables JSON transaction that makes the table exactly `model`, given what exists
// (`model.generation` must be above `existing.generation`).
Json CompileSecurity(const SecurityModel& model, const ExistingSecurity& existing);
// The same for `d` at the generation after `existing`'s.
Json CompileSecurity(const SecurityDatapath& d, const ExistingSecurity& existing);
// The transaction that turns a table holding exactly `from` into `to` (same table and
// generation): element, chain and map-entry changes only; an empty command list when nothing
// changed. nullopt when the change cannot be made as a diff (another table, tap prefix or
// generation, or a map entry that would point elsewhere): compile it whole instead.
std::optional<Json> DiffSecurity(const SecurityModel& from, const SecurityModel& to);
// The transaction that deletes the table (nothing when it does not exist).
Json DeleteSecurity(const std::string& table, const ExistingSecurity& existing);
// Reads ExistingSecurity out of `nft -j list table bridge <table>` output.
ExistingSecurity ParseExistingSecurity(const Json& listing);
// What exists once the table holds `model`.
ExistingSecurity ExistingOf(const SecurityModel& model);

}  // namespace stratus::network
