// What an e2e test needs of a region's kernel network objects: its short region id, what of it
// exists on the host (namespaces, links, dnsmasq processes), removing all of it (Daemon::Cleanup
// does, also after a failure), and running commands inside namespaces the test makes itself.
#pragma once

#include <string>
#include <vector>

namespace stratus::e2e {

// network::ShortRegionId of a daemon's region and data dir.
std::string RegionNetworkId(const std::string& region, const std::string& data_dir);

struct RegionNetwork {
  std::vector<std::string> namespaces;
  std::vector<std::string> links;    // root-namespace links (bridges, veths, taps)
  std::vector<int> dnsmasq;          // processes serving the region
  std::vector<std::string> nft_tables;
  bool empty() const { return namespaces.empty() && links.empty() && dnsmasq.empty() && nft_tables.empty(); }
  std::string Describe() const;
};
RegionNetwork ListRegionNetwork(const std::string& rid);
// Kills the region's dnsmasq, deletes its namespaces, links and nft tables, removes
// /run/stratus/<rid>.
void RemoveRegionNetwork(const std::string& rid);

// Whether any root-namespace address lies in `cidr_prefix` (e.g. "10.10."): the host must never
// get a VNET address.
bool HostHasAddressWithPrefix(const std::string& prefix);

}  // namespace stratus::e2e
