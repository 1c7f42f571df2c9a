#include "network/linux_network_engine.h"

#include <dirent.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "core/fs.h"
#include "core/json.h"
#include "core/subprocess.h"
#include "network/dnsmasq_config.h"
#include "network/kernel_names.h"
#include "network/lb/lb_datapath.h"
#include "network/nat_rules.h"
#include "network/router_routing.h"

namespace stratus::network {

namespace {

constexpr char kNetnsDir[] = "/run/netns";

std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  closedir(d);
  return out;
}

bool NetnsExists(const std::string& netns) {
  return access((std::string(kNetnsDir) + "/" + netns).c_str(), F_OK) == 0;
}

// What an `ip -json ...` command printed: an array (ip prints nothing when there is nothing).
Result<Json> ParseIpJson(const std::string& out) {
  if (out.find_first_not_of(" \n") == std::string::npos) return Json::array();
  ASSIGN_OR_RETURN(Json j, ParseJson(out));
  if (!j.is_array()) return Internal("network: 'ip -json' did not print an array");
  return j;
}

// `ip -json [-n netns] addr show`: one object per link (ifname, link_type, master, operstate,
// addr_info).
Result<Json> Links(const std::string& netns) {
  std::vector<std::string> argv = {"ip", "-json"};
  if (!netns.empty()) argv.insert(argv.end(), {"-n", netns});
  argv.insert(argv.end(), {"addr", "show"});
  ASSIGN_OR_RETURN(std::string out, RunChecked(argv));
  return ParseIpJson(out);
}

// Runs `lines` as one `ip -batch` in `netns` (root when empty); stops at the first failure.
Status IpBatch(const std::vector<std::string>& lines, const std::string& netns,
               const std::string& dir) {
  if (lines.empty()) return Status::Ok();
  std::string text;
  for (auto& l : lines) text += l + "\n";
  std::string path =
      JoinPath(dir, "ip-batch." + std::to_string(getpid()) + "." +
                        std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id())));
  RETURN_IF_ERROR(WriteFileAtomic(path, text, 0600));
  std::vector<std::string> argv = {"ip"};
  if (!netns.empty()) argv.insert(argv.end(), {"-n", netns});
  argv.insert(argv.end(), {"-batch", path});
  auto r = RunChecked(argv);
  RemoveFile(path);
  if (!r.ok())
    return Internal("network: changing " +
                    (netns.empty() ? std::string("the host's links") : "namespace " + netns) +
                    " failed: " + r.status().message());
  return Status::Ok();
}

// Deletes links `names` of `netns` (root when empty). A link whose other end was in a namespace
// just deleted goes away on its own a moment later (the kernel tears namespaces down
// asynchronously), so one that vanished between listing and deleting is what was asked.
// Deletes links `names` of `netns` ("" the root namespace); links that vanish meanwhile (or,
// with `gone_ok`, were never there) are no error.
Status DeleteLinks(const std::vector<std::string>& names, const std::string& netns,
                   const std::string& dir, bool gone_ok = false) {
  std::vector<std::string> cmds;
  if (gone_ok) {
    ASSIGN_OR_RETURN(Json links, Links(netns));
    std::set<std::string> there;
    for (auto& l : links) there.insert(l.value("ifname", ""));
    for (auto& n : names)
      if (there.count(n)) cmds.push_back("link del dev " + n);
    if (cmds.empty()) return Status::Ok();
  } else {
    for (auto& n : names) cmds.push_back("link del dev " + n);
  }
  Status st = IpBatch(cmds, netns, dir);
  if (st.ok()) return st;
  ASSIGN_OR_RETURN(Json links, Links(netns));
  std::set<std::string> left;
  for (auto& l : links) left.insert(l.value("ifname", ""));
  cmds.clear();
  for (auto& n : names)
    if (left.count(n)) cmds.push_back("link del dev " + n);
  return IpBatch(cmds, netns, dir);
}

// The pid in `pid_file` when that process runs and its command line holds `marker`; else 0.
int LivePid(const std::string& pid_file, const std::string& marker) {
  auto text = ReadFile(pid_file);
  if (!text.ok()) return 0;
  int pid = std::atoi(text->c_str());
  if (pid <= 0) return 0;
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return 0;
  size_t rp = stat->rfind(')');
  if (rp != std::string::npos && rp + 2 < stat->size() && (*stat)[rp + 2] == 'Z') return 0;
  auto cmd = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  if (!cmd.ok() || cmd->find(marker) == std::string::npos) return 0;
  return pid;
}

// SIGTERM, then SIGKILL after 2 s; returns when the process is gone (or a zombie).
void StopProcess(int pid, const std::string& pid_file, const std::string& marker) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 200 && LivePid(pid_file, marker) == pid; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (LivePid(pid_file, marker) == pid) kill(pid, SIGKILL);
  for (int i = 0; i < 100 && LivePid(pid_file, marker) == pid; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

// Commands that leave `want` ("10.0.1.1/24") as the only IPv4 address of `dev` (one of
// `links`, by name; absent: a link the same batch creates).
// Makes `dev`'s IPv4 addresses exactly `want` ("a.b.c.d/len" each).
void OnlyAddresses(const std::map<std::string, const Json*>& links, const std::string& dev,
                   const std::vector<std::string>& want, std::vector<std::string>& cmds) {
  std::set<std::string> has;
  auto it = links.find(dev);
  if (it != links.end()) {
    for (auto& a : it->second->value("addr_info", Json::array())) {
      if (a.value("family", "") != "inet") continue;
      std::string cur = a.value("local", "") + "/" + std::to_string(a.value("prefixlen", 0));
      if (std::find(want.begin(), want.end(), cur) != want.end()) {
        has.insert(cur);
      } else {
        cmds.push_back("addr del " + cur + " dev " + dev);
      }
    }
  }
  for (auto& w : want)
    if (!has.count(w)) cmds.push_back("addr add " + w + " dev " + dev);
}

void OnlyAddress(const std::map<std::string, const Json*>& links, const std::string& dev,
                 const std::string& want, std::vector<std::string>& cmds) {
  OnlyAddresses(links, dev, {want}, cmds);
}

std::string Suffix(const std::string& name, size_t prefix_len) {
  return name.size() > prefix_len ? name.substr(prefix_len) : "";
}

}  // namespace

Result<std::unique_ptr<LinuxNetworkEngine>> LinuxNetworkEngine::Open(
    const LinuxNetworkEngineOptions& opts) {
  if (!EdgeNamespace(opts.region_id).ok())
    return InvalidArgument("network: region id '" + opts.region_id + "' is not a short region id");
  for (const char* tool : {"ip", "dnsmasq"}) {
    auto r = RunProcess({tool, "--version"});
    if (!r.ok())
      return Unavailable(std::string("network: '") + tool + "' is not installed (" +
                         r.status().message() + ")");
  }
  LinuxNetworkEngineOptions o = opts;
  if (o.run_dir.empty()) o.run_dir = "/run/stratus/" + o.region_id;
  RETURN_IF_ERROR(MakeDirs(o.run_dir, 0755));
  ASSIGN_OR_RETURN(auto nft, Nftables::Open());
  return std::unique_ptr<LinuxNetworkEngine>(new LinuxNetworkEngine(o, std::move(nft)));
}

std::mutex& LinuxNetworkEngine::VnetMutex(const std::string& netns) {
  std::lock_guard<std::mutex> l(mu_);
  auto& m = vnet_mu_[netns];
  if (!m) m = std::make_unique<std::mutex>();
  return *m;
}

std::string LinuxNetworkEngine::VnetDir(const std::string& netns) const {
  return JoinPath(opts_.run_dir, netns);
}

Status LinuxNetworkEngine::ApplyVnet(const VnetDatapath& vnet) {
  const std::string& rid = opts_.region_id;
  if (!BelongsToRegion(vnet.netns, rid) || vnet.netns.rfind("stv-", 0) != 0)
    return InvalidArgument("network: namespace '" + vnet.netns +
                           "' is not a VNET namespace of "
                           "region " +
                           rid);
  std::set<std::string> seen;
  for (auto& s : vnet.subnets) {
    if (!BelongsToRegion(s.bridge, rid) || !BelongsToRegion(s.veth_on_bridge, rid) ||
        s.veth_in_router.rfind("gw", 0) != 0)
      return InvalidArgument("network: subnet '" + s.name + "' names objects of another region");
    if (!seen.insert(s.bridge).second || !seen.insert(s.veth_in_router).second)
      return InvalidArgument("network: subnet '" + s.name + "' repeats a link name");
  }
  for (auto& p : vnet.peerings) {
    if (p.veth.rfind("pr", 0) != 0 || p.remote_veth.rfind("pr", 0) != 0 ||
        !BelongsToRegion(p.remote_netns, rid) || p.remote_netns.rfind("stv-", 0) != 0 ||
        p.remote_netns == vnet.netns)
      return InvalidArgument("network: peering '" + p.name + "' names objects of another region");
    if (!seen.insert(p.veth).second)
      return InvalidArgument("network: peering '" + p.name + "' repeats a link name");
  }
  std::lock_guard<std::mutex> l(VnetMutex(vnet.netns));
  RETURN_IF_ERROR(MakeDirs(VnetDir(vnet.netns), 0755));
  ASSIGN_OR_RETURN(auto peer_veths, ApplyLinks(vnet));
  RETURN_IF_ERROR(ApplyRouting(vnet, peer_veths));
  // DHCP and names do not wait for the way out: a failed uplink still serves new NICs.
  Status uplink = ApplyUplink(vnet, peer_veths);
  RETURN_IF_ERROR(ApplyDnsmasq(vnet));
  // The load balancers' table does not need the way out (internal ones).
  Status lb = ApplyLoadBalancingLocked(vnet.netns, vnet.lb);
  return !uplink.ok() ? uplink : lb;
}

Status LinuxNetworkEngine::ApplyLoadBalancing(const std::string& netns, const LbDatapath& lb) {
  if (!BelongsToRegion(netns, opts_.region_id) || netns.rfind("stv-", 0) != 0)
    return InvalidArgument("network: namespace '" + netns + "' is not a VNET namespace of region " +
                           opts_.region_id);
  std::lock_guard<std::mutex> l(VnetMutex(netns));
  if (!NetnsExists(netns))
    return Unavailable("network: the router namespace " + netns + " does not exist (yet)");
  return ApplyLoadBalancingLocked(netns, lb);
}

Status LinuxNetworkEngine::ApplyLoadBalancingLocked(const std::string& netns,
                                                    const LbDatapath& lb) {
  // lb.json holds what this engine applied last ({"structure", "elements"}), or "pending"
  // while a change is under way (a crash then rebuilds the table whole).
  const std::string file = JoinPath(VnetDir(netns), "lb.json");
  if (lb.empty()) {
    if (!PathExists(file)) return Status::Ok();
    RETURN_IF_ERROR(Nftables::ApplyInNamespace(netns, RemoveLbDocument()));
    RemoveFile(file);
    return Status::Ok();
  }
  Json structure = LbStructure(lb);
  auto elements = LbElements(lb);
  Json have = nullptr;
  if (auto text = ReadFile(file); text.ok()) have = Json::parse(*text, nullptr, false);
  Json state = {{"structure", structure}, {"elements", elements}};
  if (have.is_object() && have.value("structure", Json()) == structure) {
    std::map<std::string, std::vector<std::string>> old;
    if (have["elements"].is_object())
      old = have["elements"].get<std::map<std::string, std::vector<std::string>>>();
    Json changes = LbElementChanges(old, elements);
    if (changes.is_null()) return Status::Ok();
    RETURN_IF_ERROR(WriteFileAtomic(file, "pending\n", 0600));
    Status s = Nftables::ApplyInNamespace(netns, changes);
    if (s.ok()) return WriteFileAtomic(file, state.dump(), 0600);
    spdlog::warn(
        "network: changing the load balancers' maps in {} failed ({}); making the "
        "table anew",
        netns, s.ToString());
  }
  RETURN_IF_ERROR(WriteFileAtomic(file, "pending\n", 0600));
  RETURN_IF_ERROR(Nftables::ApplyInNamespace(netns, LbTableDocument(structure, elements)));
  return WriteFileAtomic(file, state.dump(), 0600);
}

Result<std::set<std::string>> LinuxNetworkEngine::ApplyLinks(const VnetDatapath& vnet) {
  const std::string& ns = vnet.netns;
  const std::string dir = VnetDir(ns);
  if (!NetnsExists(ns)) {
    // A namespace made again (it was deleted under us): what ran or was applied in the old one
    // is gone with it, or serves nobody. dnsmasq may still run there, holding it alive.
    const std::string conf = JoinPath(dir, "dnsmasq.conf"), pid_file = JoinPath(dir, "dnsmasq.pid");
    StopProcess(LivePid(pid_file, conf), pid_file, conf);
    RemoveFile(JoinPath(dir, "nat.json"));
    RemoveFile(JoinPath(dir, "lb.json"));
    auto r = RunChecked({"ip", "netns", "add", ns});
    if (!r.ok() && !NetnsExists(ns))
      return Internal("network: creating namespace " + ns + " failed: " + r.status().message());
  }
  // Routing between the subnets of the VNET happens in its namespace.
  RETURN_IF_ERROR(
      RunChecked({"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"}).status());
  ASSIGN_OR_RETURN(Json root_links, Links(""));
  ASSIGN_OR_RETURN(Json ns_links, Links(ns));
  std::map<std::string, const Json*> root, router;
  for (auto& l : root_links) root[l.value("ifname", "")] = &l;
  for (auto& l : ns_links) router[l.value("ifname", "")] = &l;

  std::vector<std::string> host_cmds, ns_cmds, lone;
  if (!router.count("lo") || router["lo"]->value("operstate", "") == "DOWN")
    ns_cmds.push_back("link set dev lo up");
  std::set<std::string> wanted_gw;
  for (auto& s : vnet.subnets) {
    wanted_gw.insert(s.veth_in_router);
    std::string mtu = std::to_string(s.mtu);
    if (!root.count(s.bridge)) {
      host_cmds.push_back("link add name " + s.bridge + " mtu " + mtu + " type bridge");
      // No IPv6 link-local address: the host gets no address at all on a VNET's bridge.
      host_cmds.push_back("link set dev " + s.bridge + " addrgenmode none");
    }
    host_cmds.push_back("link set dev " + s.bridge + " up");
    // A bridge end whose router end is gone (the namespace was deleted and made again; the
    // kernel destroys the pair a moment later): removed and made again.
    if (root.count(s.veth_on_bridge) && !router.count(s.veth_in_router)) {
      lone.push_back(s.veth_on_bridge);
      root.erase(s.veth_on_bridge);
    }
    if (!root.count(s.veth_on_bridge)) {
      if (router.count(s.veth_in_router))  // a lone router end: cannot happen with veth pairs
        ns_cmds.insert(ns_cmds.begin(), "link del dev " + s.veth_in_router);
      // Every gateway answers with one fixed MAC (as Azure's do): a router end made again
      // (its namespace lost) is the same neighbour to the guests, whose ARP caches stay right.
      host_cmds.push_back("link add name " + s.veth_on_bridge + " mtu " + mtu +
                          " type veth peer name " + s.veth_in_router + " address " + kGatewayMac +
                          " netns " + ns);
      host_cmds.push_back("link set dev " + s.veth_on_bridge + " addrgenmode none");
    }
    const Json* sg = root.count(s.veth_on_bridge) ? root[s.veth_on_bridge] : nullptr;
    if (!sg || sg->value("master", "") != s.bridge)
      host_cmds.push_back("link set dev " + s.veth_on_bridge + " master " + s.bridge);
    host_cmds.push_back("link set dev " + s.veth_on_bridge + " up");
    // The gateway address, and no other, on the router end.
    std::vector<std::string> addrs = {s.gateway.ToString() + "/" + std::to_string(s.prefix.length)};
    for (auto& fe : s.frontends) addrs.push_back(fe.ToString() + "/32");
    OnlyAddresses(router, s.veth_in_router, addrs, ns_cmds);
    ns_cmds.push_back("link set dev " + s.veth_in_router + " up");
  }
  // Peering links: made by whichever side comes first once both namespaces exist.
  std::set<std::string> wanted_pr;
  for (auto& p : vnet.peerings) {
    if (!router.count(p.veth)) {
      if (!NetnsExists(p.remote_netns)) continue;  // the peer's ApplyVnet makes it
      // A peer end left over from this namespace's earlier life goes first.
      RETURN_IF_ERROR(DeleteLinks({p.remote_veth}, p.remote_netns, dir, /*gone_ok=*/true));
      ns_cmds.push_back("link add name " + p.veth + " type veth peer name " + p.remote_veth +
                        " netns " + p.remote_netns);
    }
    wanted_pr.insert(p.veth);
    OnlyAddress(router, p.veth, vnet.transit.ToString() + "/32", ns_cmds);
    ns_cmds.push_back("link set dev " + p.veth + " up");
  }
  // The uplink link to the edge: made once the edge namespace exists (ApplyEdge).
  const UplinkDatapath& u = vnet.uplink;
  bool want_up = false;
  if (!u.edge_netns.empty()) {
    if (u.veth != kUplinkVethInRouter || u.edge_veth.rfind("ex", 0) != 0)
      return InvalidArgument("network: VNET " + vnet.name + "'s uplink names unknown links");
    if (router.count(u.veth) || NetnsExists(u.edge_netns)) {
      if (!router.count(u.veth)) {
        RETURN_IF_ERROR(DeleteLinks({u.edge_veth}, u.edge_netns, dir, /*gone_ok=*/true));
        ns_cmds.push_back("link add name " + u.veth + " type veth peer name " + u.edge_veth +
                          " netns " + u.edge_netns);
      }
      want_up = true;
      wanted_pr.insert(u.veth);
      OnlyAddress(router, u.veth, vnet.transit.ToString() + "/32", ns_cmds);
      ns_cmds.push_back("link set dev " + u.veth + " up");
    }
  }
  // Subnets that left the VNET: their veth (both ends) and bridge.
  std::vector<std::string> stale;
  if (!want_up && router.count(kUplinkVethInRouter)) stale.push_back(kUplinkVethInRouter);
  for (auto& [name, l] : router) {
    if (name.rfind("pr", 0) == 0 && !wanted_pr.count(name)) {
      stale.push_back(name);  // and the peer's end with it
      continue;
    }
    if (name.rfind("gw", 0) != 0 || wanted_gw.count(name)) continue;
    stale.push_back(name);
    std::string bridge = "sb" + opts_.region_id + Suffix(name, 2);
    if (root.count(bridge)) host_cmds.push_back("link del dev " + bridge);
  }
  RETURN_IF_ERROR(DeleteLinks(stale, ns, dir));
  RETURN_IF_ERROR(DeleteLinks(lone, "", dir));
  RETURN_IF_ERROR(IpBatch(host_cmds, "", dir));
  RETURN_IF_ERROR(IpBatch(ns_cmds, ns, dir));
  return wanted_pr;
}

Status LinuxNetworkEngine::ApplyRouting(const VnetDatapath& vnet,
                                        const std::set<std::string>& peer_veths) {
  const std::string& ns = vnet.netns;
  ASSIGN_OR_RETURN(std::string routes_out, RunChecked({"ip", "-json", "-n", ns, "route", "show",
                                                       "table", "all", "proto", "static"}));
  ASSIGN_OR_RETURN(std::string rules_out, RunChecked({"ip", "-json", "-n", ns, "rule", "show"}));
  ASSIGN_OR_RETURN(Json routes, ParseIpJson(routes_out));
  ASSIGN_OR_RETURN(Json rules, ParseIpJson(rules_out));
  ASSIGN_OR_RETURN(RouterRouting have, ParseRouting(routes, rules));
  return IpBatch(RoutingChanges(have, DesiredRouting(vnet, peer_veths)), ns, VnetDir(ns));
}

Status LinuxNetworkEngine::ApplyNftIfChanged(const std::string& netns, const Json& doc,
                                             const std::string& file) {
  // (The file goes when the namespace is made again: ApplyLinks, ApplyEdge.)
  std::string text = doc.dump();
  auto old = ReadFile(file);
  if (old.ok() && *old == text) return Status::Ok();
  // A failed apply must not look applied, and the file must still say that a table may exist.
  RETURN_IF_ERROR(WriteFileAtomic(file, "pending\n", 0600));
  RETURN_IF_ERROR(Nftables::ApplyInNamespace(netns, doc));
  return WriteFileAtomic(file, text, 0600);
}

Status LinuxNetworkEngine::ApplyUplink(const VnetDatapath& vnet,
                                       const std::set<std::string>& present) {
  const UplinkDatapath& u = vnet.uplink;
  const std::string dir = VnetDir(vnet.netns);
  if (u.edge_netns.empty() || !present.count(u.veth)) {
    // No way out: no NAT table either (it would name an uplink link that is gone). nat.json
    // says this engine may have made one (it is written before and after the table is, and
    // outlives a restart of stratusd).
    if (!PathExists(JoinPath(dir, "nat.json"))) return Status::Ok();
    RETURN_IF_ERROR(Nftables::ApplyInNamespace(vnet.netns, RemoveNatDocument()));
    RemoveFile(JoinPath(dir, "nat.json"));
    return Status::Ok();
  }
  // The edge end: its address, the router's transit address and the public IPs routed to it.
  {
    std::lock_guard<std::mutex> l(edge_mu_);
    ASSIGN_OR_RETURN(Json edge_links, Links(u.edge_netns));
    std::map<std::string, const Json*> edge;
    for (auto& l : edge_links) edge[l.value("ifname", "")] = &l;
    std::vector<std::string> cmds;
    OnlyAddress(edge, u.edge_veth, Ipv4{kEdgeAddress}.ToString() + "/32", cmds);
    cmds.push_back("link set dev " + u.edge_veth + " up");
    RETURN_IF_ERROR(IpBatch(cmds, u.edge_netns, dir));
    ASSIGN_OR_RETURN(std::string out, RunChecked({"ip", "-json", "-n", u.edge_netns, "route",
                                                  "show", "table", "main", "proto", "static"}));
    ASSIGN_OR_RETURN(Json routes, ParseIpJson(out));
    ASSIGN_OR_RETURN(RouterRouting all, ParseRouting(routes, Json::array()));
    RouterRouting have, want;
    std::vector<std::string> moved;  // a public IP that was another VNET's a moment ago
    for (auto& r : all.routes)
      if (r.dev == u.edge_veth) have.routes.push_back(r);
    std::vector<Ipv4> routed = u.routed;
    for (auto& n : u.nats) routed.push_back(n.public_ip);
    for (auto& ip : routed)
      for (auto& r : all.routes)
        if (r.dev != u.edge_veth && r.dst == ip.ToString() + "/32")
          moved.push_back("route del " + r.dst + " dev " + r.dev + " table main proto static");
    RETURN_IF_ERROR(IpBatch(moved, u.edge_netns, dir));
    std::string transit = vnet.transit.ToString();
    want.routes.push_back({"main", "unicast", transit + "/32", "", u.edge_veth});
    for (auto& ip : routed)
      want.routes.push_back({"main", "unicast", ip.ToString() + "/32", transit, u.edge_veth});
    RETURN_IF_ERROR(IpBatch(RoutingChanges(have, want), u.edge_netns, dir));
  }
  return ApplyNftIfChanged(vnet.netns, RouterNatDocument(u, vnet.transit),
                           JoinPath(dir, "nat.json"));
}

Status LinuxNetworkEngine::ApplyEdge(const EdgeDatapath& edge) {
  auto want_ns = EdgeNamespace(opts_.region_id);
  if (!want_ns.ok() || edge.netns != *want_ns)
    return InvalidArgument("network: '" + edge.netns + "' is not region " + opts_.region_id +
                           "'s edge namespace");
  std::lock_guard<std::mutex> l(edge_mu_);
  const std::string& ns = edge.netns;
  const std::string dir = JoinPath(opts_.run_dir, ns);
  RETURN_IF_ERROR(MakeDirs(dir, 0755));
  if (!NetnsExists(ns)) {
    RemoveFile(JoinPath(dir, "edge.json"));  // applied in a namespace that is gone
    auto r = RunChecked({"ip", "netns", "add", ns});
    if (!r.ok() && !NetnsExists(ns))
      return Internal("network: creating namespace " + ns + " failed: " + r.status().message());
  }
  RETURN_IF_ERROR(
      RunChecked({"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"}).status());
  ASSIGN_OR_RETURN(Json ns_links, Links(ns));
  std::map<std::string, const Json*> links;
  for (auto& j : ns_links) links[j.value("ifname", "")] = &j;
  if (!links.count(edge.uplink)) {
    // Into the edge, before it gets any address: the root namespace never holds it addressed.
    ASSIGN_OR_RETURN(Json root_links, Links(""));
    bool in_root = false;
    for (auto& j : root_links) in_root = in_root || j.value("ifname", "") == edge.uplink;
    if (!in_root)
      return Unavailable("network: the uplink interface '" + edge.uplink + "' does not exist");
    RETURN_IF_ERROR(IpBatch({"link set dev " + edge.uplink + " netns " + ns}, "", dir));
  }
  std::vector<std::string> cmds;
  if (!links.count("lo") || links["lo"]->value("operstate", "") == "DOWN")
    cmds.push_back("link set dev lo up");
  OnlyAddress(links, edge.uplink,
              edge.uplink_ip.ToString() + "/" + std::to_string(edge.uplink_length), cmds);
  cmds.push_back("link set dev " + edge.uplink + " up");
  cmds.push_back("route replace default via " + edge.uplink_gateway.ToString() + " dev " +
                 edge.uplink + " proto static");
  // Addresses of the pool no public IP holds go nowhere (not back out of the uplink).
  cmds.push_back("route replace blackhole " + edge.pool.ToString() + " proto static");
  RETURN_IF_ERROR(IpBatch(cmds, ns, dir));
  return ApplyNftIfChanged(ns, EdgeDocument(edge), JoinPath(dir, "edge.json"));
}

Status LinuxNetworkEngine::RemoveEdge() {
  ASSIGN_OR_RETURN(std::string ns, EdgeNamespace(opts_.region_id));
  std::lock_guard<std::mutex> l(edge_mu_);
  if (NetnsExists(ns)) {
    auto r = RunChecked({"ip", "netns", "del", ns});
    if (!r.ok() && NetnsExists(ns))
      return Internal("network: deleting namespace " + ns + " failed: " + r.status().message());
  }
  RemoveTree(JoinPath(opts_.run_dir, ns));
  return Status::Ok();
}

Status LinuxNetworkEngine::ApplyDnsmasq(const VnetDatapath& vnet) {
  const std::string dir = VnetDir(vnet.netns);
  const std::string conf_path = JoinPath(dir, "dnsmasq.conf");
  const std::string pid_file = JoinPath(dir, "dnsmasq.pid");
  int pid = LivePid(pid_file, conf_path);
  if (vnet.subnets.empty()) {
    StopProcess(pid, pid_file, conf_path);
    return Status::Ok();
  }
  DnsmasqFiles files = RenderDnsmasq(vnet, dir);
  auto old_conf = ReadFile(conf_path);
  auto old_dhcp = ReadFile(JoinPath(dir, "dhcp-hosts"));
  auto old_hosts = ReadFile(JoinPath(dir, "hosts"));
  bool conf_same = old_conf.ok() && *old_conf == files.conf;
  bool hosts_same =
      old_dhcp.ok() && *old_dhcp == files.dhcp_hosts && old_hosts.ok() && *old_hosts == files.hosts;
  if (pid && conf_same && hosts_same) return Status::Ok();
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, "dhcp-hosts"), files.dhcp_hosts, 0644));
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, "hosts"), files.hosts, 0644));
  if (pid && conf_same) {
    // dnsmasq re-reads dhcp-hostsfile and addn-hosts on SIGHUP (and clears its cache). It keeps
    // the (infinite) leases of hosts that left, in memory, and would refuse their addresses to
    // another MAC: those are released (as Neutron's DHCP agent does). If that cannot be done,
    // a restart forgets them.
    if (kill(pid, SIGHUP) == 0 &&
        ForgetGoneHosts(vnet, old_dhcp.ok() ? *old_dhcp : "", files.dhcp_hosts).ok())
      return Status::Ok();
  }
  StopProcess(pid, pid_file, conf_path);
  RETURN_IF_ERROR(WriteFileAtomic(conf_path, files.conf, 0644));
  // dnsmasq checks its configuration and binds before it detaches: a non-zero exit is a real
  // failure (a bad option, an address not there yet).
  auto r = RunChecked({"ip", "netns", "exec", vnet.netns, "dnsmasq", "--conf-file=" + conf_path});
  if (!r.ok())
    return Internal("network: starting dnsmasq for VNET " + vnet.name +
                    " failed: " + r.status().message());
  return Status::Ok();
}

Status LinuxNetworkEngine::ForgetGoneHosts(const VnetDatapath& vnet, const std::string& old_hosts,
                                           const std::string& new_hosts) {
  // "mac,ip[,name],infinite" lines -> (mac, ip)
  auto pairs = [](const std::string& text) {
    std::set<std::pair<std::string, std::string>> out;
    size_t at = 0;
    while (at < text.size()) {
      size_t nl = text.find('\n', at);
      std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
      at = nl == std::string::npos ? text.size() : nl + 1;
      size_t c1 = line.find(','), c2 = c1 == std::string::npos ? c1 : line.find(',', c1 + 1);
      if (c2 != std::string::npos)
        out.emplace(line.substr(0, c1), line.substr(c1 + 1, c2 - c1 - 1));
    }
    return out;
  };
  auto now = pairs(new_hosts);
  for (auto& [mac, ip_text] : pairs(old_hosts)) {
    if (now.count({mac, ip_text})) continue;
    auto ip = ParseIpv4(ip_text, "");
    if (!ip.ok()) continue;
    for (auto& s : vnet.subnets) {
      if (!s.prefix.Contains(*ip)) continue;
      RETURN_IF_ERROR(RunChecked({"ip", "netns", "exec", vnet.netns, "dhcp_release",
                                  s.veth_in_router, ip_text, mac})
                          .status());
      // And the router's neighbour entry of the old MAC: a NIC that takes the address next is
      // resolved again at once, not when the entry goes stale (up to a minute).
      RunProcess({"ip", "-n", vnet.netns, "neigh", "del", ip_text, "dev", s.veth_in_router});
    }
  }
  return Status::Ok();
}

Status LinuxNetworkEngine::RemoveVnet(const std::string& netns) {
  if (!BelongsToRegion(netns, opts_.region_id) || netns.rfind("stv-", 0) != 0)
    return InvalidArgument("network: namespace '" + netns + "' is not a VNET namespace of region " +
                           opts_.region_id);
  std::lock_guard<std::mutex> l(VnetMutex(netns));
  return RemoveVnetLocked(netns);
}

Status LinuxNetworkEngine::RemoveVnetLocked(const std::string& netns) {
  const std::string dir = VnetDir(netns);
  const std::string conf_path = JoinPath(dir, "dnsmasq.conf");
  const std::string pid_file = JoinPath(dir, "dnsmasq.pid");
  StopProcess(LivePid(pid_file, conf_path), pid_file, conf_path);
  if (NetnsExists(netns)) {
    ASSIGN_OR_RETURN(Json ns_links, Links(netns));
    ASSIGN_OR_RETURN(Json root_links, Links(""));
    std::set<std::string> root;
    for (auto& l : root_links) root.insert(l.value("ifname", ""));
    std::vector<std::string> cmds;
    for (auto& l : ns_links) {
      std::string name = l.value("ifname", "");
      if (name.rfind("gw", 0) != 0) continue;
      std::string bridge = "sb" + opts_.region_id + Suffix(name, 2);
      if (root.count(bridge)) cmds.push_back("link del dev " + bridge);
    }
    RETURN_IF_ERROR(MakeDirs(dir, 0755));
    RETURN_IF_ERROR(IpBatch(cmds, "", dir));
    // Deleting the namespace deletes the router ends of the veths, and with them the bridge ends.
    auto r = RunChecked({"ip", "netns", "del", netns});
    if (!r.ok() && NetnsExists(netns))
      return Internal("network: deleting namespace " + netns + " failed: " + r.status().message());
  }
  RemoveTree(dir);
  return Status::Ok();
}

Status LinuxNetworkEngine::Sweep(const std::vector<std::string>& keep_netns) {
  const std::string& rid = opts_.region_id;
  std::set<std::string> keep(keep_netns.begin(), keep_netns.end());
  for (auto& ns : DirEntries(kNetnsDir)) {
    if (!BelongsToRegion(ns, rid) || ns.rfind("stv-", 0) != 0 || keep.count(ns)) continue;
    std::lock_guard<std::mutex> l(VnetMutex(ns));
    RETURN_IF_ERROR(RemoveVnetLocked(ns));
  }
  // Run folders of VNETs whose namespace is gone (a dnsmasq may still run from one).
  for (auto& ns : DirEntries(opts_.run_dir)) {
    if (ns.rfind("stv-", 0) != 0 || keep.count(ns) || NetnsExists(ns)) continue;
    std::lock_guard<std::mutex> l(VnetMutex(ns));
    RETURN_IF_ERROR(RemoveVnetLocked(ns));
  }
  // Bridges whose router end is in no kept namespace.
  std::set<std::string> live_suffixes;
  for (auto& ns : keep) {
    if (!NetnsExists(ns)) continue;
    ASSIGN_OR_RETURN(Json links, Links(ns));
    for (auto& l : links) {
      std::string name = l.value("ifname", "");
      if (name.rfind("gw", 0) == 0) live_suffixes.insert(Suffix(name, 2));
    }
  }
  ASSIGN_OR_RETURN(Json root_links, Links(""));
  std::vector<std::string> stale;
  std::string bridge_prefix = "sb" + rid, veth_prefix = "sg" + rid;
  for (auto& l : root_links) {
    std::string name = l.value("ifname", "");
    for (auto* p : {&bridge_prefix, &veth_prefix})
      if (name.rfind(*p, 0) == 0 && !live_suffixes.count(Suffix(name, p->size())))
        stale.push_back(name);
  }
  RETURN_IF_ERROR(MakeDirs(opts_.run_dir, 0755));
  return DeleteLinks(stale, "", opts_.run_dir);
}

Status LinuxNetworkEngine::ApplySecurity(const SecurityDatapath& security) {
  ASSIGN_OR_RETURN(std::string table, NftTable(opts_.region_id));
  if (security.table != table)
    return InvalidArgument("network: table '" + security.table + "' is not region " +
                           opts_.region_id + "'s");
  std::lock_guard<std::mutex> l(nft_mu_);
  bool empty = security.stages.empty() && security.nics.empty();
  if (model_ && !empty) {
    SecurityModel next = ModelSecurity(security, model_->generation);
    if (auto diff = DiffSecurity(*model_, next)) {
      Status st = nft_->Apply(*diff);
      if (st.ok()) {
        security_ = ExistingOf(next);
        model_ = std::move(next);
        return st;
      }
      spdlog::warn("network: an incremental change of table {} failed ({}); compiling it whole",
                   table, st.message());
    }
    security_.reset();  // list it again: someone else may have changed it
  }
  model_.reset();
  if (!security_) {
    ExistingSecurity existing;
    auto listing = nft_->ListTable("bridge", table);
    if (listing.ok()) {
      existing = ParseExistingSecurity(*listing);
    } else if (listing.status().code() != StatusCode::kNotFound) {
      return listing.status();
    }
    security_ = existing;
  }
  Status st;
  if (empty) {
    st = nft_->Apply(DeleteSecurity(table, *security_));
    if (st.ok()) security_ = ExistingSecurity{};
  } else {
    SecurityModel next = ModelSecurity(security, security_->generation + 1);
    st = nft_->Apply(CompileSecurity(next, *security_));
    if (st.ok()) {
      security_ = ExistingOf(next);
      model_ = std::move(next);
    }
  }
  if (!st.ok()) security_.reset();  // someone else may have changed it: list it next time
  return st;
}

Result<std::vector<RuleCounter>> LinuxNetworkEngine::SecurityCounters(
    const std::vector<std::string>& stages) {
  std::lock_guard<std::mutex> l(nft_mu_);
  if (!model_) return std::vector<RuleCounter>{};
  std::set<std::string> wanted(stages.begin(), stages.end());
  std::map<std::string, Json> listings;
  for (auto& [name, set] : model_->sets) {
    if (!wanted.empty() && !wanted.count(set.stage)) continue;
    auto listing = nft_->ListSet("bridge", model_->table, name);
    if (!listing.ok())  // the table changed behind the engine: not the caller's NotFound
      return Internal("network: reading the counters of set " + name +
                      " failed: " + listing.status().message());
    listings[name] = std::move(listing).value();
  }
  std::vector<RuleCounter> all = CountRuleHits(*model_, listings), out;
  for (auto& c : all)
    if (wanted.empty() || wanted.count(c.stage)) out.push_back(std::move(c));
  return out;
}

Result<RegionObjects> LinuxNetworkEngine::List() {
  const std::string& rid = opts_.region_id;
  RegionObjects objs;
  {
    ASSIGN_OR_RETURN(std::string table, NftTable(rid));
    std::lock_guard<std::mutex> l(nft_mu_);
    if (nft_->ListTable("bridge", table).ok()) objs.nft_tables.push_back(table);
  }
  for (auto& ns : DirEntries(kNetnsDir))
    if (BelongsToRegion(ns, rid)) objs.namespaces.push_back(ns);
  ASSIGN_OR_RETURN(Json root_links, Links(""));
  for (auto& l : root_links) {
    std::string name = l.value("ifname", "");
    if (BelongsToRegion(name, rid)) objs.links.push_back(name);
  }
  // dnsmasq processes started with a configuration under this region's run folder.
  for (auto& e : DirEntries("/proc")) {
    if (e.find_first_not_of("0123456789") != std::string::npos) continue;
    auto cmd = ReadFile("/proc/" + e + "/cmdline");
    if (!cmd.ok() || cmd->find("dnsmasq") == std::string::npos) continue;
    if (cmd->find("--conf-file=" + opts_.run_dir + "/") == std::string::npos) continue;
    objs.dns_pids.push_back(std::atoi(e.c_str()));
  }
  return objs;
}

}  // namespace stratus::network
