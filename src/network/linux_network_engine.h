// LinuxNetworkEngine: NetworkEngine on Linux with iproute2 (namespaces, bridges, veths,
// addresses: `ip -batch`, `ip -json` to read back), dnsmasq (DHCP and names, one process per
// VNET inside its namespace) and libnftables (security groups: nsg_compiler.h).
//
// Runtime files live in <run_dir> (default /run/stratus/<rid>): per VNET namespace a folder
// with dnsmasq's configuration, host files and pid file (mode 0755/0644: dnsmasq re-reads the
// host files as user nobody). They are runtime state like the namespaces themselves (gone at
// reboot, rebuilt by ApplyVnet); the store holds the truth.
//
// dnsmasq is started detached (it outlives a restart or crash of stratusd, so DHCP and DNS keep
// answering) and is found again through its pid file, checked against /proc/<pid>/cmdline.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "network/network_engine.h"
#include "network/nftables.h"

namespace stratus::network {

struct LinuxNetworkEngineOptions {
  std::string region_id;  // ShortRegionId(); every object name must belong to it
  std::string run_dir;    // "" = /run/stratus/<region_id>
};

class LinuxNetworkEngine final : public NetworkEngine {
 public:
  // Unavailable when `ip` or `dnsmasq` is missing.
  static Result<std::unique_ptr<LinuxNetworkEngine>> Open(const LinuxNetworkEngineOptions& opts);

  Status ApplyVnet(const VnetDatapath& vnet) override;
  Status ApplyLoadBalancing(const std::string& netns, const LbDatapath& lb) override;
  Status RemoveVnet(const std::string& netns) override;
  Status Sweep(const std::vector<std::string>& keep_netns) override;
  Status ApplySecurity(const SecurityDatapath& security) override;
  Result<std::vector<RuleCounter>> SecurityCounters(
      const std::vector<std::string>& stages) override;
  Status ApplyEdge(const EdgeDatapath& edge) override;
  Status RemoveEdge() override;
  Result<RegionObjects> List() override;

 private:
  LinuxNetworkEngine(LinuxNetworkEngineOptions opts, std::unique_ptr<Nftables> nft)
      : opts_(std::move(opts)), nft_(std::move(nft)) {}
  std::mutex& VnetMutex(const std::string& netns);
  // Returns the peering veths that are there (a peer's may wait for its namespace).
  Result<std::set<std::string>> ApplyLinks(const VnetDatapath& vnet);
  Status ApplyRouting(const VnetDatapath& vnet, const std::set<std::string>& peer_veths);
  Status ApplyDnsmasq(const VnetDatapath& vnet);
  // Tells the VNET's dnsmasq (dhcp_release) to forget the lease of every host of `old_hosts`
  // (its dhcp-hosts file) not in `new_hosts`, and drops the router's neighbour entry of it.
  // Internal when dhcp_release fails.
  Status ForgetGoneHosts(const VnetDatapath& vnet, const std::string& old_hosts,
                           const std::string& new_hosts);
  // The edge end of the VNET's uplink link (address, routes to the router and its public IPs)
  // and the router's NAT table; nothing when the link is not there.
  Status ApplyUplink(const VnetDatapath& vnet, const std::set<std::string>& present);
  // Runs `doc` in `netns` unless it is what was last applied there (remembered in `file`).
  Status ApplyNftIfChanged(const std::string& netns, const Json& doc, const std::string& file);
  Status RemoveVnetLocked(const std::string& netns);
  Status ApplyLoadBalancingLocked(const std::string& netns, const LbDatapath& lb);
  std::string VnetDir(const std::string& netns) const;

  LinuxNetworkEngineOptions opts_;
  std::mutex nft_mu_;  // guards nft_, security_ and model_
  std::unique_ptr<Nftables> nft_;
  // What the security table holds, as of the last ApplySecurity (listed once after a start).
  std::optional<ExistingSecurity> security_;
  // The model the table holds when this process applied it; later changes are diffs against
  // it. Reset after a failure (the next apply lists the table and compiles it whole).
  std::optional<SecurityModel> model_;
  std::mutex edge_mu_;  // serialises changes of the edge's routes (one per VNET)
  std::mutex mu_;                                               // guards vnet_mu_
  std::map<std::string, std::unique_ptr<std::mutex>> vnet_mu_;  // one per namespace
};

}  // namespace stratus::network
