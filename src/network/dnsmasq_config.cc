#include "network/dnsmasq_config.h"

#include <set>

#include "core/fs.h"

namespace stratus::network {

namespace {

std::string Netmask(int length) {
  uint32_t mask = length == 0 ? 0 : ~uint32_t{0} << (32 - length);
  return Ipv4{mask}.ToString();
}

}  // namespace

DnsmasqFiles RenderDnsmasq(const VnetDatapath& vnet, const std::string& dir) {
  DnsmasqFiles f;
  std::string& c = f.conf;
  c += "# dnsmasq of VNET " + vnet.name + " (" + vnet.netns + "), written by stratusd.\n";
  c += "port=53\nbind-interfaces\nno-hosts\ndomain-needed\nbogus-priv\n";
  c += "dhcp-authoritative\nleasefile-ro\n";
  c += "pid-file=" + JoinPath(dir, "dnsmasq.pid") + "\n";
  c += "addn-hosts=" + JoinPath(dir, "hosts") + "\n";
  c += "dhcp-hostsfile=" + JoinPath(dir, "dhcp-hosts") + "\n";
  if (!vnet.dns_domain.empty()) {
    c += "domain=" + vnet.dns_domain + "\n";
    c += "local=/" + vnet.dns_domain + "/\n";
  }
  // Never the host's /etc/resolv.conf: other names go to the region's resolvers, or nowhere.
  c += "no-resolv\n";
  for (auto& s : vnet.upstream_dns) c += "server=" + s + "\n";
  for (auto& s : vnet.subnets) {
    const std::string& tag = s.veth_in_router;
    c += "interface=" + tag + "\n";
    c += "dhcp-range=set:" + tag + "," + s.prefix.network.ToString() + ",static," +
         Netmask(s.prefix.length) + ",infinite\n";
    c += "dhcp-option=tag:" + tag + ",option:router," + s.gateway.ToString() + "\n";
    c += "dhcp-option=tag:" + tag + ",option:dns-server," + s.gateway.ToString() + "\n";
    if (!vnet.dns_domain.empty())
      c += "dhcp-option=tag:" + tag + ",option:domain-search," + vnet.dns_domain + "\n";
    c += "dhcp-option=tag:" + tag + ",option:mtu," + std::to_string(s.mtu) + "\n";
  }
  std::set<std::string> named;
  for (auto& h : vnet.hosts) {
    f.dhcp_hosts += h.mac + "," + h.ip.ToString();
    if (!h.hostname.empty()) f.dhcp_hosts += "," + h.hostname;
    f.dhcp_hosts += ",infinite\n";
    // A name resolves to one address: the first NIC that claims it (its primary).
    if (h.hostname.empty() || !named.insert(h.hostname).second) continue;
    f.hosts += h.ip.ToString() + " " + h.hostname;
    if (!vnet.dns_domain.empty()) f.hosts += " " + h.hostname + "." + vnet.dns_domain;
    f.hosts += "\n";
  }
  return f;
}

}  // namespace stratus::network
