// LinuxNetworkEngine on the real kernel: namespaces, bridges, veths, dnsmasq. Endpoints are
// namespaces this test creates and plugs into the subnet bridges exactly as a VM's tap is
// plugged (a veth whose host end joins the bridge, with the NIC's MAC on the endpoint end).
// Needs root, iproute2, dnsmasq and busybox (udhcpc, ping, nc); skipped without them. Every
// object carries this test's own region id and is removed at the end, also on failure.
#include "network/linux_network_engine.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <regex>
#include <set>

#include "core/fs.h"
#include "core/json.h"
#include "core/scoped_temp_dir.h"
#include "core/subprocess.h"
#include "network/kernel_names.h"
#include "network/linux_engine_fixture.h"
#include "network/router_routing.h"

namespace stratus::network {
namespace {

TEST_F(LinuxNetworkEngineTest, SubnetsRouteDhcpAnswersNamesResolveAndEverythingIsRemoved) {
  WriteDhcpScript();
  VnetDatapath v = Vnet(1, {{11, "10.50.1.0/24"}, {12, "10.50.2.0/24"}});
  v.hosts = {{"52:54:00:00:50:01", *ParseIpv4("10.50.1.4", ""), "web1"},
             {"52:54:00:00:50:02", *ParseIpv4("10.50.2.4", ""), "db1"}};
  ASSERT_TRUE(engine_->ApplyVnet(v).ok());
  // The root namespace holds the bridges without any address.
  auto br = RunChecked({"ip", "-o", "addr", "show", "dev", v.subnets[0].bridge});
  ASSERT_TRUE(br.ok());
  EXPECT_EQ(br->find("inet"), std::string::npos) << *br;

  std::string a = Endpoint(1, v.subnets[0].bridge, "52:54:00:00:50:01");
  std::string b = Endpoint(2, v.subnets[1].bridge, "52:54:00:00:50:02");
  EXPECT_EQ(Dhcp(a), "10.50.1.4/24");
  EXPECT_EQ(Dhcp(b), "10.50.2.4/24");
  // Across subnets through the VNET's router.
  auto ping = In(a, {"busybox", "ping", "-c", "1", "-W", "2", "10.50.2.4"});
  ASSERT_TRUE(ping.ok());
  EXPECT_EQ(ping->exit_code, 0) << ping->out << ping->err;
  // Names: the host and host.<domain>, answered by the gateway.
  auto ns = In(a, {"busybox", "nslookup", "db1.vnet1.internal", "10.50.1.1"});
  ASSERT_TRUE(ns.ok());
  EXPECT_NE(ns->out.find("10.50.2.4"), std::string::npos) << ns->out << ns->err;

  // Applying the same VNET again changes nothing: dnsmasq keeps its pid.
  auto before = engine_->List();
  ASSERT_TRUE(engine_->ApplyVnet(v).ok());
  auto after = engine_->List();
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_EQ(before->dns_pids, after->dns_pids);
  ASSERT_EQ(after->dns_pids.size(), 1u);

  // A new host: SIGHUP, same process, new name answered.
  v.hosts.push_back({"52:54:00:00:50:03", *ParseIpv4("10.50.1.5", ""), "web2"});
  ASSERT_TRUE(engine_->ApplyVnet(v).ok());
  auto hup = engine_->List();
  ASSERT_TRUE(hup.ok());
  EXPECT_EQ(hup->dns_pids, after->dns_pids);
  bool resolved = false;
  for (int i = 0; i < 20 && !resolved; ++i) {
    auto r = In(a, {"busybox", "nslookup", "web2", "10.50.1.1"});
    resolved = r.ok() && r->out.find("10.50.1.5") != std::string::npos;
    if (!resolved) usleep(100000);
  }
  EXPECT_TRUE(resolved);

  // web1's NIC goes and a new one (another MAC) gets its address, as a restore does: the new
  // MAC is answered at once (dnsmasq forgot the old lease), by the same process.
  v.hosts[0].mac = "52:54:00:00:50:11";
  ASSERT_TRUE(engine_->ApplyVnet(v).ok());
  ASSERT_TRUE(RunChecked({"ip", "-n", a, "addr", "flush", "dev", "eth0"}).ok());
  ASSERT_TRUE(
      RunChecked({"ip", "-n", a, "link", "set", "eth0", "address", "52:54:00:00:50:11"}).ok());
  EXPECT_EQ(Dhcp(a), "10.50.1.4/24") << "the old MAC's lease kept the address";
  auto same = engine_->List();
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->dns_pids, after->dns_pids);

  // A subnet leaves: its bridge and veth go, the other subnet keeps working.
  VnetDatapath one = v;
  one.subnets.pop_back();
  ASSERT_TRUE(engine_->ApplyVnet(one).ok());
  EXPECT_FALSE(RunChecked({"ip", "link", "show", "dev", v.subnets[1].bridge}).ok());
  auto gw = In(a, {"busybox", "ping", "-c", "1", "-W", "2", "10.50.1.1"});
  ASSERT_TRUE(gw.ok());
  EXPECT_EQ(gw->exit_code, 0);

  ASSERT_TRUE(engine_->RemoveVnet(v.netns).ok());
  auto left = engine_->List();
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->namespaces.empty());
  EXPECT_TRUE(left->dns_pids.empty());
  for (auto& l : left->links) ADD_FAILURE() << "left: " << l;
}

TEST_F(LinuxNetworkEngineTest, VnetsAreIsolatedAndSweepRemovesWhatNoRecordClaims) {
  VnetDatapath v1 = Vnet(2, {{21, "10.60.1.0/24"}});
  VnetDatapath v2 = Vnet(3, {{31, "10.60.1.0/24"}});  // the same space: separate namespaces
  ASSERT_TRUE(engine_->ApplyVnet(v1).ok());
  ASSERT_TRUE(engine_->ApplyVnet(v2).ok());
  std::string a = Endpoint(3, v1.subnets[0].bridge, "52:54:00:00:60:01");
  std::string b = Endpoint(4, v2.subnets[0].bridge, "52:54:00:00:60:02");
  ASSERT_TRUE(RunChecked({"ip", "-n", a, "addr", "add", "10.60.1.4/24", "dev", "eth0"}).ok());
  ASSERT_TRUE(RunChecked({"ip", "-n", b, "addr", "add", "10.60.1.5/24", "dev", "eth0"}).ok());
  auto ping = In(a, {"busybox", "ping", "-c", "1", "-W", "1", "10.60.1.5"});
  ASSERT_TRUE(ping.ok());
  EXPECT_NE(ping->exit_code, 0) << "a VM of one VNET reached another VNET";
  auto gw = In(a, {"busybox", "ping", "-c", "1", "-W", "2", "10.60.1.1"});
  ASSERT_TRUE(gw.ok());
  EXPECT_EQ(gw->exit_code, 0);
  // Only v1 has a record now: Sweep removes v2 entirely.
  ASSERT_TRUE(engine_->Sweep({v1.netns}).ok());
  auto left = engine_->List();
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->namespaces, std::vector<std::string>{v1.netns});
  for (auto& l : left->links)
    EXPECT_TRUE(l == v1.subnets[0].bridge || l == v1.subnets[0].veth_on_bridge) << l;
}

// The peering of `from` to `to` as `from`'s router sees it.
PeeringDatapath PeerOf(const VnetDatapath& from, uint32_t from_index, const VnetDatapath& to,
                       uint32_t to_index, const char* space) {
  PeeringDatapath p;
  p.name = from.name + "-to-" + to.name;
  p.veth = *PeeringVeth(to_index);
  p.remote_netns = to.netns;
  p.remote_veth = *PeeringVeth(from_index);
  p.remote_transit = *TransitAddress(to_index);
  p.remote_spaces = {*ParseIpv4Prefix(space, "")};
  return p;
}

uint64_t RxPackets(const std::string& ns) {
  auto r = RunChecked({"ip", "-n", ns, "-s", "-json", "link", "show", "dev", "eth0"});
  if (!r.ok()) return 0;
  auto j = ParseJson(*r);
  if (!j.ok() || !j->is_array() || j->empty()) return 0;
  return (*j)[0]["stats64"]["rx"].value("packets", uint64_t{0});
}

TEST_F(LinuxNetworkEngineTest, PeeredVnetsRouteToEachOtherButNotTransitivelyNorForwarded) {
  VnetDatapath a = Vnet(5, {{51, "10.81.1.0/24"}});
  VnetDatapath b = Vnet(6, {{61, "10.82.1.0/24"}});
  VnetDatapath c = Vnet(7, {{71, "10.83.1.0/24"}});
  for (auto [v, i] : {std::pair{&a, 5u}, {&b, 6u}, {&c, 7u}}) {
    v->transit = *TransitAddress(i);
    ASSERT_TRUE(engine_->ApplyVnet(*v).ok());
  }
  std::string ea = Endpoint(8, a.subnets[0].bridge, "52:54:00:00:81:04");
  std::string eb = Endpoint(9, b.subnets[0].bridge, "52:54:00:00:82:04");
  std::string ec = Endpoint(10, c.subnets[0].bridge, "52:54:00:00:83:04");
  for (auto [ep, net] : {std::pair{ea, "81"}, {eb, "82"}, {ec, "83"}}) {
    std::string prefix = std::string("10.") + net + ".1.";
    ASSERT_TRUE(RunChecked({"ip", "-n", ep, "addr", "add", prefix + "4/24", "dev", "eth0"}).ok());
    ASSERT_TRUE(RunChecked({"ip", "-n", ep, "route", "add", "default", "via", prefix + "1"}).ok());
  }
  auto ping = [&](const std::string& from, const std::string& to, const char* src = nullptr) {
    std::vector<std::string> argv = {"busybox", "ping", "-c", "1", "-W", "1"};
    if (src) argv.insert(argv.end(), {"-I", src});
    argv.push_back(to);
    auto r = In(from, argv);
    return r.ok() && r->exit_code == 0;
  };
  EXPECT_FALSE(ping(ea, "10.82.1.4")) << "not peered yet";

  // A peers with B (A is applied first: it makes the link; B's end gets its address when B is
  // applied), B with A and C.
  a.peerings = {PeerOf(a, 5, b, 6, "10.82.0.0/16")};
  b.peerings = {PeerOf(b, 6, a, 5, "10.81.0.0/16"), PeerOf(b, 6, c, 7, "10.83.0.0/16")};
  c.peerings = {PeerOf(c, 7, b, 6, "10.82.0.0/16")};
  for (auto* v : {&a, &b, &c}) {
    Status st = engine_->ApplyVnet(*v);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  EXPECT_TRUE(ping(ea, "10.82.1.4")) << "A reaches its peer B";
  EXPECT_TRUE(ping(eb, "10.81.1.4"));
  EXPECT_TRUE(ping(eb, "10.83.1.4")) << "B reaches its peer C";
  EXPECT_FALSE(ping(ea, "10.83.1.4")) << "peering is not transitive";
  // Not even when A's router is told to send C's space to B: what enters B from a peer goes to
  // B's own subnets only.
  ASSERT_TRUE(RunChecked({"ip", "-n", a.netns, "route", "add", "10.83.0.0/16", "via", "169.254.0.6",
                          "dev", *PeeringVeth(6), "onlink"})
                  .ok());
  // (C could not answer anyway: it has no route back to A, and it lets in no forwarded traffic
  // unless told to, as it is here. Count what reaches C.)
  c.peerings[0].allow_forwarded = true;
  ASSERT_TRUE(engine_->ApplyVnet(c).ok());
  uint64_t c_before = RxPackets(ec);
  In(ea, {"busybox", "ping", "-c", "5", "-i", "0.2", "-W", "1", "10.83.1.4"});
  EXPECT_LT(RxPackets(ec) - c_before, 5u) << "B's router passed a peer's packet on to another peer";
  c.peerings[0].allow_forwarded = false;
  ASSERT_TRUE(engine_->ApplyVnet(c).ok());
  ASSERT_TRUE(RunChecked({"ip", "-n", a.netns, "route", "del", "10.83.0.0/16"}).ok());
  // Applying again changes nothing and cuts nothing.
  auto links_before = RunChecked({"ip", "-n", a.netns, "-o", "link", "show"});
  ASSERT_TRUE(engine_->ApplyVnet(a).ok());
  auto links_after = RunChecked({"ip", "-n", a.netns, "-o", "link", "show"});
  ASSERT_TRUE(links_before.ok() && links_after.ok());
  EXPECT_EQ(*links_before, *links_after);
  EXPECT_TRUE(ping(ea, "10.82.1.4"));

  // Forwarded traffic (a source outside A's space) does not enter B unless B allows it.
  ASSERT_TRUE(RunChecked({"ip", "-n", ea, "addr", "add", "10.99.0.1/32", "dev", "eth0"}).ok());
  auto forwarded_reaching_b = [&] {
    uint64_t before = RxPackets(eb);
    In(ea, {"busybox", "ping", "-c", "5", "-i", "0.2", "-W", "1", "-I", "10.99.0.1", "10.82.1.4"});
    return RxPackets(eb) - before;
  };
  EXPECT_LT(forwarded_reaching_b(), 5u);
  b.peerings[0].allow_forwarded = true;
  ASSERT_TRUE(engine_->ApplyVnet(b).ok());
  EXPECT_GE(forwarded_reaching_b(), 5u);
  // Access off: nothing of A enters B.
  b.peerings[0].allow_access = false;
  ASSERT_TRUE(engine_->ApplyVnet(b).ok());
  EXPECT_FALSE(ping(ea, "10.82.1.4"));
  b.peerings[0].allow_access = true;

  // A drops the peering: the link goes (both ends); B's rules for it go when B is applied.
  a.peerings.clear();
  ASSERT_TRUE(engine_->ApplyVnet(a).ok());
  b.peerings.erase(b.peerings.begin());
  ASSERT_TRUE(engine_->ApplyVnet(b).ok());
  EXPECT_FALSE(ping(ea, "10.82.1.4"));
  EXPECT_TRUE(ping(eb, "10.83.1.4")) << "B-C is untouched";
  auto rules = RunChecked({"ip", "-n", b.netns, "rule", "show"});
  ASSERT_TRUE(rules.ok());
  EXPECT_EQ(rules->find(*PeeringVeth(5)), std::string::npos) << *rules;
  auto links = RunChecked({"ip", "-n", b.netns, "link", "show"});
  ASSERT_TRUE(links.ok());
  EXPECT_EQ(links->find(*PeeringVeth(5)), std::string::npos) << *links;
}

uint64_t ForwardedBy(const std::string& ns) {
  // The "Ip:" lines of /proc/net/snmp (names, then values) as the namespace sees them.
  auto r = RunChecked({"ip", "netns", "exec", ns, "cat", "/proc/net/snmp"});
  if (!r.ok()) return 0;
  std::vector<std::string> lines;
  size_t at = 0;
  while (at < r->size()) {
    size_t nl = r->find('\n', at);
    lines.push_back(r->substr(at, nl - at));
    at = nl == std::string::npos ? r->size() : nl + 1;
  }
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    if (lines[i].rfind("Ip: ", 0) != 0 || lines[i + 1].rfind("Ip: ", 0) != 0) continue;
    auto split = [](const std::string& l) {
      std::vector<std::string> out;
      size_t p = 0;
      while (p < l.size()) {
        size_t sp = l.find(' ', p);
        out.push_back(l.substr(p, sp - p));
        p = sp == std::string::npos ? l.size() : sp + 1;
      }
      return out;
    };
    auto names = split(lines[i]), values = split(lines[i + 1]);
    for (size_t k = 0; k < names.size() && k < values.size(); ++k)
      if (names[k] == "ForwDatagrams") return std::stoull(values[k]);
  }
  return 0;
}

TEST_F(LinuxNetworkEngineTest, ARouteTableSendsASubnetsTrafficThroughAnAppliance) {
  VnetDatapath v = Vnet(8, {{81, "10.91.1.0/24"}, {82, "10.91.2.0/24"}, {83, "10.91.255.0/27"}});
  v.transit = *TransitAddress(8);
  ASSERT_TRUE(engine_->ApplyVnet(v).ok());
  std::string front = Endpoint(11, v.subnets[0].bridge, "52:54:00:00:91:04");
  std::string back = Endpoint(12, v.subnets[1].bridge, "52:54:00:00:92:04");
  std::string nva = Endpoint(13, v.subnets[2].bridge, "52:54:00:00:93:04");
  for (auto [ep, addr, gw] : {std::tuple{front, "10.91.1.4/24", "10.91.1.1"},
                              {back, "10.91.2.4/24", "10.91.2.1"},
                              {nva, "10.91.255.4/27", "10.91.255.1"}}) {
    ASSERT_TRUE(RunChecked({"ip", "-n", ep, "addr", "add", addr, "dev", "eth0"}).ok());
    ASSERT_TRUE(RunChecked({"ip", "-n", ep, "route", "add", "default", "via", gw}).ok());
  }
  ASSERT_TRUE(In(nva, {"sysctl", "-qw", "net.ipv4.ip_forward=1"}).ok());
  auto reaches_back = [&] {
    auto r = In(front, {"busybox", "ping", "-c", "2", "-W", "1", "10.91.2.4"});
    return r.ok() && r->exit_code == 0;
  };
  uint64_t before = ForwardedBy(nva);
  ASSERT_TRUE(reaches_back());
  EXPECT_EQ(ForwardedBy(nva), before) << "no route table: straight through the router";

  // front's route table: back's subnet through the appliance on the gateway subnet.
  auto with_routes = [&](std::vector<Route> user) {
    v.subnets[0].route_table = SubnetRouteTable(81);
    v.subnets[0].routes =
        EffectiveRoutes(SystemRoutes({*ParseIpv4Prefix("10.91.0.0/16", "")}, {}), user);
    Status st = engine_->ApplyVnet(v);
    EXPECT_TRUE(st.ok()) << st.ToString();
  };
  with_routes({{"to-nva", *ParseIpv4Prefix("10.91.2.0/24", ""), NextHop::kVirtualAppliance,
                *ParseIpv4("10.91.255.4", "")}});
  before = ForwardedBy(nva);
  EXPECT_TRUE(reaches_back()) << "the appliance forwards";
  EXPECT_GE(ForwardedBy(nva) - before, 2u) << "front's packets did not go through the appliance";
  // Applying again changes nothing.
  auto rules = RunChecked({"ip", "-n", v.netns, "rule", "show"});
  ASSERT_TRUE(engine_->ApplyVnet(v).ok());
  EXPECT_EQ(*rules, RunChecked({"ip", "-n", v.netns, "rule", "show"}).value());
  // The appliance stops forwarding: front cannot reach back any more (the route holds).
  ASSERT_TRUE(In(nva, {"sysctl", "-qw", "net.ipv4.ip_forward=0"}).ok());
  EXPECT_FALSE(reaches_back());
  ASSERT_TRUE(In(nva, {"sysctl", "-qw", "net.ipv4.ip_forward=1"}).ok());
  // None drops.
  with_routes({{"drop", *ParseIpv4Prefix("10.91.2.0/24", ""), NextHop::kNone, {}}});
  EXPECT_FALSE(reaches_back());
  // No route table any more: straight through again, the subnet's table and rule are gone.
  v.subnets[0].route_table = 0;
  v.subnets[0].routes.clear();
  ASSERT_TRUE(engine_->ApplyVnet(v).ok());
  before = ForwardedBy(nva);
  EXPECT_TRUE(reaches_back());
  EXPECT_EQ(ForwardedBy(nva), before);
  auto left = RunChecked({"ip", "-n", v.netns, "rule", "show"});
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->find("2000:"), std::string::npos) << *left;
  auto routes =
      RunChecked({"ip", "-n", v.netns, "route", "show", "table", "all", "proto", "static"});
  ASSERT_TRUE(routes.ok());
  EXPECT_EQ(*routes, "");
}

TEST_F(LinuxNetworkEngineTest, AnApplianceInAPeeredHubCarriesOnlyWhatASpokeSubnetsRoutesSendIt) {
  VnetDatapath spoke = Vnet(9, {{91, "10.93.1.0/24"}, {92, "10.93.2.0/24"}});
  VnetDatapath hub = Vnet(10, {{101, "10.94.1.0/24"}, {102, "10.94.2.0/24"}});
  spoke.transit = *TransitAddress(9);
  hub.transit = *TransitAddress(10);
  spoke.peerings = {PeerOf(spoke, 9, hub, 10, "10.94.0.0/16")};
  hub.peerings = {PeerOf(hub, 10, spoke, 9, "10.93.0.0/16")};
  // (The second apply of the spoke routes over the link the hub's made.)
  for (auto* v : {&spoke, &hub, &spoke}) ASSERT_TRUE(engine_->ApplyVnet(*v).ok());
  std::string front = Endpoint(14, spoke.subnets[0].bridge, "52:54:00:00:93:04");
  std::string other = Endpoint(15, spoke.subnets[1].bridge, "52:54:00:00:93:14");
  std::string nva = Endpoint(16, hub.subnets[0].bridge, "52:54:00:00:94:04");
  std::string back = Endpoint(17, hub.subnets[1].bridge, "52:54:00:00:94:14");
  for (auto [ep, addr, gw] : {std::tuple{front, "10.93.1.4/24", "10.93.1.1"},
                              {other, "10.93.2.4/24", "10.93.2.1"},
                              {nva, "10.94.1.4/24", "10.94.1.1"},
                              {back, "10.94.2.4/24", "10.94.2.1"}}) {
    ASSERT_TRUE(RunChecked({"ip", "-n", ep, "addr", "add", addr, "dev", "eth0"}).ok());
    ASSERT_TRUE(RunChecked({"ip", "-n", ep, "route", "add", "default", "via", gw}).ok());
  }
  ASSERT_TRUE(In(nva, {"sysctl", "-qw", "net.ipv4.ip_forward=1"}).ok());
  auto ping = [&](const std::string& from, const char* to) {
    auto r = In(from, {"busybox", "ping", "-c", "2", "-W", "1", to});
    return r.ok() && r->exit_code == 0;
  };
  // front's route table: the hub's back subnet through the hub's appliance. The hub routes
  // what front sends it by front's own routes (the longest match picks the appliance for back,
  // the peering for the rest of the hub).
  const Ipv4Prefix front_prefix = spoke.subnets[0].prefix;
  auto route_front = [&](bool through_nva) {
    spoke.subnets[0].route_table = through_nva ? SubnetRouteTable(91) : 0;
    spoke.subnets[0].routes.clear();
    hub.peerings[0].steered.clear();
    if (through_nva) {
      spoke.subnets[0].routes =
          EffectiveRoutes(SystemRoutes({*ParseIpv4Prefix("10.93.0.0/16", "")},
                                       {*ParseIpv4Prefix("10.94.0.0/16", "")}),
                          {{"to-nva", *ParseIpv4Prefix("10.94.2.0/24", ""),
                            NextHop::kVirtualAppliance, *ParseIpv4("10.94.1.4", "")}});
      SteeredSubnet st{front_prefix, PeerSteeringTable(91), {}};
      for (auto& e : spoke.subnets[0].routes)
        if (e.active)
          st.routes.push_back({e.route.prefix, e.route.next_hop == NextHop::kVirtualAppliance
                                                   ? std::optional<Ipv4>(e.route.next_hop_ip)
                                                   : std::nullopt});
      hub.peerings[0].steered = {st};
    }
    Status st = engine_->ApplyVnet(spoke);
    ASSERT_TRUE(st.ok()) << st.ToString();
    st = engine_->ApplyVnet(hub);
    ASSERT_TRUE(st.ok()) << st.ToString();
  };
  uint64_t before = ForwardedBy(nva);
  ASSERT_TRUE(ping(front, "10.94.2.4"));
  EXPECT_EQ(ForwardedBy(nva), before) << "no route table: straight over the peering";

  ASSERT_NO_FATAL_FAILURE(route_front(true));
  before = ForwardedBy(nva);
  EXPECT_TRUE(ping(front, "10.94.2.4")) << "the hub's appliance forwards";
  EXPECT_GE(ForwardedBy(nva) - before, 2u) << "front's packets did not go through the appliance";
  before = ForwardedBy(nva);
  EXPECT_TRUE(ping(front, "10.94.1.4")) << "the appliance's own subnet, over the peering";
  EXPECT_TRUE(ping(other, "10.94.2.4")) << "the spoke's other subnet has no route table";
  EXPECT_EQ(ForwardedBy(nva), before) << "the hub steered what front's routes do not send it";
  // The appliance stops forwarding: front cannot reach back any more, the others still can.
  ASSERT_TRUE(In(nva, {"sysctl", "-qw", "net.ipv4.ip_forward=0"}).ok());
  EXPECT_FALSE(ping(front, "10.94.2.4"));
  EXPECT_TRUE(ping(other, "10.94.2.4"));
  ASSERT_TRUE(In(nva, {"sysctl", "-qw", "net.ipv4.ip_forward=1"}).ok());
  // Applying again changes nothing.
  auto rules = RunChecked({"ip", "-n", hub.netns, "rule", "show"});
  ASSERT_TRUE(rules.ok());
  EXPECT_NE(rules->find("900:"), std::string::npos) << *rules;
  ASSERT_TRUE(engine_->ApplyVnet(hub).ok());
  EXPECT_EQ(*rules, RunChecked({"ip", "-n", hub.netns, "rule", "show"}).value());
  // No route table any more: straight over the peering; the hub's steering is gone.
  ASSERT_NO_FATAL_FAILURE(route_front(false));
  before = ForwardedBy(nva);
  EXPECT_TRUE(ping(front, "10.94.2.4"));
  EXPECT_EQ(ForwardedBy(nva), before);
  auto left = RunChecked({"ip", "-n", hub.netns, "rule", "show"});
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->find("900:"), std::string::npos) << *left;
  auto steering = RunChecked(
      {"ip", "-n", hub.netns, "route", "show", "table", std::to_string(PeerSteeringTable(91))});
  EXPECT_TRUE(!steering.ok() || steering->empty()) << *steering;
}

SecurityRule Rule(const char* name, int priority, Direction dir, Access access, const char* proto,
                  std::vector<std::string> src, std::vector<std::string> dst, PortRange dport) {
  SecurityRule r;
  r.name = name;
  r.priority = priority;
  r.direction = dir;
  r.access = access;
  r.protocol = proto;
  r.sources = std::move(src);
  r.destinations = std::move(dst);
  r.source_ports = {PortRange{}};
  r.destination_ports = {dport};
  return r;
}

TEST_F(LinuxNetworkEngineTest, SecurityGroupsFilterSameSubnetTrafficStatefullyAndChangeAtOnce) {
  VnetDatapath v = Vnet(4, {{41, "10.70.1.0/24"}});
  ASSERT_TRUE(engine_->ApplyVnet(v).ok());
  const std::string br = v.subnets[0].bridge;
  std::string a = Endpoint(5, br, "52:54:00:00:70:04", *NicTap(rid_, 501));
  std::string b = Endpoint(6, br, "52:54:00:00:70:05", *NicTap(rid_, 502));
  std::string c = Endpoint(7, br, "52:54:00:00:70:06", *NicTap(rid_, 503));
  int n = 4;
  for (auto& ep : {a, b, c})
    ASSERT_TRUE(RunChecked({"ip", "-n", ep, "addr", "add", "10.70.1." + std::to_string(n++) + "/24",
                            "dev", "eth0"})
                    .ok());
  ASSERT_TRUE(MakeDirs(dir_.Path("www"), 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_.Path("www/index.html"), "served-by-b\n", 0644).ok());
  for (const char* port : {"8080", "9090"})
    ASSERT_TRUE(In(b, {"busybox", "httpd", "-p", port, "-h", dir_.Path("www")}).ok());
  auto fetch = [&](const std::string& from, const std::string& port) {
    auto r = In(from, {"busybox", "timeout", "2", "busybox", "wget", "-q", "-O", "-",
                       "http://10.70.1.5:" + port + "/"});
    return r.ok() && r->exit_code == 0 && r->out.find("served-by-b") != std::string::npos;
  };
  ASSERT_TRUE(fetch(a, "8080")) << "no NSG: everything passes";

  // B's NSG: inbound TCP 8080 from A only; everything else from the VNET denied; no outbound at
  // all (replies must still pass: the rules are stateful).
  SecurityDatapath sec;
  sec.table = *NftTable(rid_);
  sec.tap_prefix = "st" + rid_;
  NsgStage stage;
  stage.key = "n1v4";
  stage.tags.vnet_spaces = {*ParseIpv4Prefix("10.70.0.0/16", "")};
  stage.rules = {
      Rule("web-from-a", 100, Direction::kInbound, Access::kAllow, "Tcp", {"10.70.1.4"}, {"*"},
           PortRange{8080, 8080}),
      Rule("no-vnet", 200, Direction::kInbound, Access::kDeny, "*", {"VirtualNetwork"}, {"*"},
           PortRange{}),
      Rule("no-out", 100, Direction::kOutbound, Access::kDeny, "*", {"*"}, {"*"}, PortRange{})};
  sec.stages = {stage};
  auto ip = [](const char* a) { return *ParseIpv4(a, ""); };
  NicSecurity nic_a{*NicTap(rid_, 501), "", "", "52:54:00:00:70:04", {ip("10.70.1.4")}};
  NicSecurity nic_b{*NicTap(rid_, 502), "", "n1v4", "52:54:00:00:70:05", {ip("10.70.1.5")}};
  NicSecurity nic_c{*NicTap(rid_, 503), "", "", "52:54:00:00:70:06", {ip("10.70.1.6")}};
  sec.nics = {nic_a, nic_b, nic_c};
  sec.gateways = {v.subnets[0].gateway};
  {
    Status st = engine_->ApplySecurity(sec);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  EXPECT_TRUE(fetch(a, "8080")) << "allowed, and its replies pass although B sends nothing out";
  EXPECT_FALSE(fetch(c, "8080")) << "C is not allowed";
  // Each rule counts what it matched: A's request on web-from-a, C's SYNs on no-vnet.
  auto hits = [&](const std::string& rule) -> uint64_t {
    auto counters = engine_->SecurityCounters({"n1v4"});
    EXPECT_TRUE(counters.ok()) << counters.status().ToString();
    if (!counters.ok()) return 0;
    for (auto& c : *counters)
      if (c.rule == rule && c.direction == Direction::kInbound) return c.packets;
    ADD_FAILURE() << "no counter for " << rule;
    return 0;
  };
  uint64_t from_a = hits("securityRules/web-from-a");
  EXPECT_GE(from_a, 3u) << "SYN, ACK, request, ...";
  EXPECT_GE(hits("securityRules/no-vnet"), 1u);
  EXPECT_EQ(hits("defaultSecurityRules/DenyAllInBound"), 0u);
  EXPECT_FALSE(fetch(a, "9090")) << "another port is not allowed";
  auto out = In(b, {"busybox", "ping", "-c", "1", "-W", "1", "10.70.1.4"});
  ASSERT_TRUE(out.ok());
  EXPECT_NE(out->exit_code, 0) << "B may send nothing out";
  // Every NIC sends only as itself: C reaches A from its own address, not from another one.
  ASSERT_TRUE(RunChecked({"ip", "-n", c, "addr", "add", "10.70.1.9/24", "dev", "eth0"}).ok());
  auto own = In(c, {"busybox", "ping", "-c", "1", "-W", "2", "-I", "10.70.1.6", "10.70.1.4"});
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(own->exit_code, 0) << own->out << own->err;
  auto spoofed = In(c, {"busybox", "ping", "-c", "1", "-W", "1", "-I", "10.70.1.9", "10.70.1.4"});
  ASSERT_TRUE(spoofed.ok());
  EXPECT_NE(spoofed->exit_code, 0) << "C sent as an address that is not its own";
  // Nor may C answer ARP for A's address: B keeps A's MAC for 10.70.1.4.
  auto neigh_of_a = [&] {
    auto n = In(b, {"ip", "neigh", "show", "10.70.1.4", "dev", "eth0"});
    return n.ok() ? n->out : std::string();
  };
  ASSERT_TRUE(In(b, {"busybox", "ping", "-c", "1", "-W", "2", "10.70.1.4"}).ok());
  ASSERT_TRUE(RunChecked({"ip", "-n", c, "addr", "add", "10.70.1.4/32", "dev", "eth0"}).ok());
  In(c, {"busybox", "arping", "-U", "-c", "2", "-I", "eth0", "-s", "10.70.1.4", "10.70.1.4"});
  In(c, {"busybox", "arping", "-A", "-c", "2", "-I", "eth0", "-s", "10.70.1.4", "10.70.1.5"});
  EXPECT_EQ(neigh_of_a().find("52:54:00:00:70:06"), std::string::npos)
      << "C's ARP for A's address reached B: " << neigh_of_a();
  ASSERT_TRUE(RunChecked({"ip", "-n", c, "addr", "del", "10.70.1.4/32", "dev", "eth0"}).ok());
  // A forwarding NIC (a virtual appliance) may.
  sec.nics[2].forwarding = true;
  {
    Status st = engine_->ApplySecurity(sec);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  auto forwarded = In(c, {"busybox", "ping", "-c", "1", "-W", "2", "-I", "10.70.1.9", "10.70.1.4"});
  ASSERT_TRUE(forwarded.ok());
  EXPECT_EQ(forwarded->exit_code, 0) << "a forwarding NIC was held to its own addresses";
  sec.nics[2].forwarding = false;

  // A change applies to new flows at once: a Deny of A before the Allow.
  sec.stages[0].rules.push_back(Rule("not-a", 90, Direction::kInbound, Access::kDeny, "Tcp",
                                     {"10.70.1.4/32"}, {"*"}, PortRange{}));
  {
    Status st = engine_->ApplySecurity(sec);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  EXPECT_FALSE(fetch(a, "8080"));
  EXPECT_GE(hits("securityRules/not-a"), 1u);
  EXPECT_GE(hits("securityRules/web-from-a"), from_a) << "an unchanged rule keeps its count";
  // The subnet's NSG also applies: allowing C on B's NSG is not enough while the subnet denies C.
  sec.stages[0].rules.push_back(Rule("web-from-c", 110, Direction::kInbound, Access::kAllow, "Tcp",
                                     {"10.70.1.6"}, {"*"}, PortRange{8080, 8080}));
  NsgStage subnet_stage;
  subnet_stage.key = "n2v4";
  subnet_stage.tags = stage.tags;
  subnet_stage.rules = {Rule("deny-c", 100, Direction::kInbound, Access::kDeny, "*", {"10.70.1.6"},
                             {"*"}, PortRange{})};
  sec.stages.push_back(subnet_stage);
  sec.nics[1].subnet_stage = "n2v4";
  {
    Status st = engine_->ApplySecurity(sec);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  EXPECT_FALSE(fetch(c, "8080"));
  sec.stages[1].rules.clear();
  {
    Status st = engine_->ApplySecurity(sec);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  EXPECT_TRUE(fetch(c, "8080"));

  // No NSG left: the table goes.
  ASSERT_TRUE(engine_->ApplySecurity({*NftTable(rid_), "st" + rid_, {}, {}, {}}).ok());
  auto objs = engine_->List();
  ASSERT_TRUE(objs.ok());
  EXPECT_TRUE(objs->nft_tables.empty());
  EXPECT_TRUE(fetch(a, "9090"));
}

// The table as `nft -j list table` shows it, as comparable lines: without handles, the table's
// name, element counters, the state sets' elements, the generation suffixes and the rules of
// chain forward (they name the tap prefix); elements sorted.
std::set<std::string> Canonical(const std::string& table) {
  std::set<std::string> out;
  auto r = RunProcess({"nft", "-j", "list", "table", "bridge", table});
  if (!r.ok() || r->exit_code != 0) return out;
  auto listing = ParseJson(r->out);
  if (!listing.ok()) return out;
  std::map<std::string, int> position;  // rules per chain
  for (auto& item : (*listing)["nftables"])
    for (auto& [kind, obj] : item.items()) {
      if (kind == "metainfo" || kind == "table") continue;
      Json o = obj;
      o.erase("handle");
      o.erase("table");
      std::string name = o.value("name", "");
      if (kind == "rule") {
        if (o.value("chain", "") == "forward") continue;
        o["position"] = position[o.value("chain", "")]++;
      }
      if ((kind == "set" || kind == "map") && o.contains("elem")) {
        std::vector<std::string> elems;
        for (auto e : o["elem"]) {
          if (e.is_object() && e.contains("elem")) e["elem"].erase("counter");
          elems.push_back(e.dump());
        }
        std::sort(elems.begin(), elems.end());
        o["elem"] = elems;
        if (name == "flows" || name == "pings") o.erase("elem");
      }
      std::string line = kind + " " + o.dump();
      static const std::regex kGeneration("_g[0-9]+");
      out.insert(std::regex_replace(line, kGeneration, "_g"));
    }
  return out;
}

TEST_F(LinuxNetworkEngineTest, SecurityChangesAreDiffsThatEndWhereAWholeCompileWould) {
  const std::string table = *NftTable(rid_);
  const std::string other = table + "x";
  auto nft = Nftables::Open();
  ASSERT_TRUE(nft.ok());
  auto ip = [](const char* a) { return *ParseIpv4(a, ""); };
  SecurityDatapath sec;
  sec.table = table;
  sec.tap_prefix = "st" + rid_;
  sec.gateways = {ip("10.71.1.1")};
  NsgStage web;
  web.key = "n1v7";
  web.tags.vnet_spaces = {*ParseIpv4Prefix("10.71.0.0/16", "")};
  for (int i = 0; i < 40; ++i)
    web.rules.push_back(
        Rule(("r" + std::to_string(i)).c_str(), 100 + i, Direction::kInbound,
             i % 7 == 6 ? Access::kDeny : Access::kAllow, "Tcp", {"10.71.2." + std::to_string(i)},
             {"*"}, PortRange{static_cast<uint16_t>(8000 + i), static_cast<uint16_t>(8000 + i)}));
  // Nested and crossing rules in one run (the kernel's interval sets refuse an element with a
  // corner inside another): a /16 over the /32s before it, a range crossing it, and an "allow
  // everything" that the default allows then nest in.
  auto allow = [](const char* name, int prio, const char* proto, const char* src, PortRange ports) {
    return Rule(name, prio, Direction::kInbound, Access::kAllow, proto, {src}, {"*"}, ports);
  };
  web.rules.push_back(allow("wide", 300, "Tcp", "10.71.0.0/16", PortRange{8000, 8100}));
  web.rules.push_back(allow("crossing", 310, "Tcp", "10.71.2.0/23", PortRange{8050, 9000}));
  web.rules.push_back(allow("all", 320, "*", "*", PortRange{}));
  sec.stages = {web};
  sec.nics = {{*NicTap(rid_, 701), "", "n1v7", "52:54:00:00:71:04", {ip("10.71.1.4")}},
              {*NicTap(rid_, 702), "", "", "52:54:00:00:71:05", {ip("10.71.1.5")}}};
  ASSERT_TRUE(engine_->ApplySecurity(sec).ok());
  auto generation = [&] {
    auto r = RunProcess({"nft", "-j", "list", "table", "bridge", table});
    auto j = ParseJson(r.ok() ? r->out : "{}");
    return j.ok() ? ParseExistingSecurity(*j).generation : 0;
  };
  const uint64_t g = generation();
  ASSERT_GT(g, 0u);
  std::vector<std::pair<std::string, std::function<void()>>> steps = {
      {"a port",
       [&] {
         sec.stages[0].rules[3].destination_ports = {PortRange{9000, 9001}};
       }},
      {"an access (runs regroup)", [&] { sec.stages[0].rules[10].access = Access::kDeny; }},
      {"a narrow rule before the wide one that holds it",
       [&] {
         sec.stages[0].rules.push_back(
             allow("narrow", 250, "Tcp", "10.71.3.7", PortRange{8010, 8010}));
       }},
      {"a wider one before all of them",
       [&] {
         sec.stages[0].rules.push_back(allow("wider", 99, "Tcp", "10.0.0.0/8", PortRange{}));
       }},
      {"the wider one gone", [&] { sec.stages[0].rules.pop_back(); }},
      {"a rule gone", [&] { sec.stages[0].rules.erase(sec.stages[0].rules.begin() + 5); }},
      {"a rule another one shadows",
       [&] {
         auto r = sec.stages[0].rules[0];
         r.name = "same-as-r0";
         r.priority = 99;
         sec.stages[0].rules.push_back(r);
       }},
      {"the shadowing rule's twin gone",
       [&] { sec.stages[0].rules.erase(sec.stages[0].rules.begin()); }},
      {"a NIC gets the NSG", [&] { sec.nics[1].nic_stage = "n1v7"; }},
      {"a second stage on a subnet",
       [&] {
         NsgStage sub = web;
         sub.key = "n2v7";
         sub.rules = {Rule("deny-x", 100, Direction::kOutbound, Access::kDeny, "*", {"*"},
                           {"10.71.9.0/24"}, PortRange{})};
         sec.stages.push_back(sub);
         sec.nics[0].subnet_stage = "n2v7";
       }},
      {"a forwarding NIC", [&] { sec.nics[1].forwarding = true; }},
      {"another subnet's gateway", [&] { sec.gateways.push_back(ip("10.71.3.1")); }},
      {"a new NIC",
       [&] {
         sec.nics.push_back(
             {*NicTap(rid_, 703), "n2v7", "", "52:54:00:00:71:06", {ip("10.71.1.6")}});
       }},
      {"a NIC gone", [&] { sec.nics.erase(sec.nics.begin()); }},
      {"a stage gone",
       [&] {
         sec.stages.pop_back();
         for (auto& n : sec.nics) n.subnet_stage.clear();
       }},
  };
  for (auto& [what, change] : steps) {
    change();
    Status st = engine_->ApplySecurity(sec);
    ASSERT_TRUE(st.ok()) << what << ": " << st.ToString();
    EXPECT_EQ(generation(), g) << what << ": was compiled whole, not as a diff";
    // The same datapath compiled whole, at the same generation, in another table.
    SecurityDatapath whole = sec;
    whole.table = other;
    whole.tap_prefix = "zq" + rid_;  // hooks no interface
    ASSERT_TRUE((*nft)->Apply(CompileSecurity(ModelSecurity(whole, g), ExistingSecurity{})).ok());
    auto diffed = Canonical(table), compiled = Canonical(other);
    ASSERT_TRUE((*nft)->Apply(DeleteSecurity(other, ExistingSecurity{true, 0, {}, {}})).ok());
    ASSERT_FALSE(compiled.empty());
    EXPECT_EQ(diffed, compiled) << "after " << what;
  }
  // The table gone behind the engine's back: the diff fails and the change is compiled whole.
  ASSERT_TRUE(RunChecked({"nft", "delete", "table", "bridge", table}).ok());
  sec.stages[0].rules[0].destination_ports = {PortRange{7000, 7000}};
  Status st = engine_->ApplySecurity(sec);
  ASSERT_TRUE(st.ok()) << st.ToString();
  SecurityDatapath whole = sec;
  whole.table = other;
  whole.tap_prefix = "zq" + rid_;
  ASSERT_TRUE(
      (*nft)->Apply(CompileSecurity(ModelSecurity(whole, generation()), ExistingSecurity{})).ok());
  auto compiled = Canonical(other);
  ASSERT_TRUE((*nft)->Apply(DeleteSecurity(other, ExistingSecurity{true, 0, {}, {}})).ok());
  EXPECT_EQ(Canonical(table), compiled);
}

}  // namespace
}  // namespace stratus::network

namespace stratus::network {
namespace {

// Packets an nft counter named `name` of table `ip count` in `ns` has seen.
TEST_F(LinuxNetworkEngineTest, PublicIpsAreNatedOneToOneAndTheRestLeavesThroughTheEdge) {
  // The upstream also routes the VNET's space to the edge, to prove it is refused.
  std::string inet = Internet({"10.92.0.0/16"});
  ASSERT_FALSE(inet.empty());
  CountFrom(inet, "from_public", "203.0.113.5");
  CountFrom(inet, "from_edge", "198.51.100.2");
  EdgeDatapath edge = Edge();
  auto root = RunChecked({"ip", "-4", "-o", "addr", "show"});
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->find("198.51.100.2"), std::string::npos) << "the root namespace holds the uplink";
  ASSERT_TRUE(engine_->ApplyEdge(edge).ok()) << "applying again is fine";

  VnetDatapath v = Vnet(9, {{91, "10.92.1.0/24"}});
  Uplink(v, 9, edge);
  v.uplink.nats = {{*ParseIpv4("203.0.113.5", ""), *ParseIpv4("10.92.1.4", "")}};
  Status st = engine_->ApplyVnet(v);
  ASSERT_TRUE(st.ok()) << st.ToString();
  std::string a = Endpoint(14, v.subnets[0].bridge, "52:54:00:00:a1:04");
  std::string b = Endpoint(15, v.subnets[0].bridge, "52:54:00:00:a1:05");
  for (auto [ep, addr] : {std::pair{a, "10.92.1.4/24"}, {b, "10.92.1.5/24"}}) {
    ASSERT_TRUE(RunChecked({"ip", "-n", ep, "addr", "add", addr, "dev", "eth0"}).ok());
    ASSERT_TRUE(RunChecked({"ip", "-n", ep, "route", "add", "default", "via", "10.92.1.1"}).ok());
  }
  auto ping = [&](const std::string& from, const std::string& to) {
    auto r = In(from, {"busybox", "ping", "-c", "1", "-W", "1", to});
    return r.ok() && r->exit_code == 0;
  };
  EXPECT_TRUE(ping(inet, "203.0.113.5")) << "inbound 1:1 NAT (ICMP)";
  EXPECT_FALSE(ping(inet, "10.92.1.4")) << "a private address is not reachable from outside";
  EXPECT_FALSE(ping(inet, "203.0.113.6")) << "a pool address nobody holds";
  EXPECT_TRUE(ping(a, "198.51.100.1"));
  EXPECT_GE(Counted(inet, "from_public"), 1u) << "a leaves with its public address";
  EXPECT_TRUE(ping(b, "198.51.100.1"));
  EXPECT_GE(Counted(inet, "from_edge"), 1u) << "b leaves with the uplink's address";
  auto routes = RunChecked({"ip", "-n", v.netns, "route", "show", "proto", "static"});
  ASSERT_TRUE(routes.ok());
  for (const char* want :
       {"default via 169.254.0.0 dev up", "blackhole 10.0.0.0/8", "blackhole 192.168.0.0/16"})
    EXPECT_NE(routes->find(want), std::string::npos) << *routes;

  // Again: nothing changes. Then without the NAT: the public address goes nowhere.
  auto edge_routes = RunChecked({"ip", "-n", edge.netns, "route", "show"});
  ASSERT_TRUE(engine_->ApplyVnet(v).ok());
  EXPECT_EQ(*edge_routes, RunChecked({"ip", "-n", edge.netns, "route", "show"}).value());
  v.uplink.nats.clear();
  ASSERT_TRUE(engine_->ApplyVnet(v).ok());
  EXPECT_FALSE(ping(inet, "203.0.113.5"));
  EXPECT_TRUE(ping(a, "198.51.100.1")) << "without a public IP a still gets out (SNAT)";
  // A private subnet (defaultOutboundAccess false): only a NIC with a public IP gets out.
  v.uplink.private_subnets = {v.subnets[0].prefix};
  v.uplink.nats = {{*ParseIpv4("203.0.113.5", ""), *ParseIpv4("10.92.1.4", "")}};
  ASSERT_TRUE(engine_->ApplyVnet(v).ok());
  EXPECT_TRUE(ping(a, "198.51.100.1")) << "a has a public IP";
  EXPECT_FALSE(ping(b, "198.51.100.1")) << "b is in a private subnet without a public IP";
  EXPECT_TRUE(ping(b, "10.92.1.1")) << "b still reaches its gateway";
  v.uplink.nats.clear();
  ASSERT_TRUE(engine_->ApplyVnet(v).ok());
  EXPECT_FALSE(ping(a, "198.51.100.1")) << "a without its public IP in a private subnet";
  v.uplink.private_subnets.clear();
  ASSERT_TRUE(engine_->ApplyVnet(v).ok());
  EXPECT_TRUE(ping(b, "198.51.100.1")) << "default outbound again";
  // The router's namespace made again (as after a crash of the host's network): the NAT table
  // is made again too, although the document is the one applied last.
  ASSERT_TRUE(RunChecked({"ip", "netns", "del", v.netns}).ok());
  {
    Status st = engine_->ApplyVnet(v);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  EXPECT_TRUE(ping(a, "198.51.100.1")) << "the NAT of the router's new namespace";
  // dnsmasq serves in the new namespace (the old one's was stopped, not adopted).
  auto objs = engine_->List();
  ASSERT_TRUE(objs.ok());
  ASSERT_EQ(objs->dns_pids.size(), 1u);
  auto where = RunProcess({"ip", "netns", "identify", std::to_string(objs->dns_pids[0])});
  ASSERT_TRUE(where.ok());
  EXPECT_NE(where->out.find(v.netns), std::string::npos) << "dnsmasq in " << where->out;
  // No uplink any more: the link goes, Internet is unreachable.
  v.uplink = {};
  ASSERT_TRUE(engine_->ApplyVnet(v).ok());
  EXPECT_FALSE(ping(b, "198.51.100.1"));
  auto links = RunChecked({"ip", "-n", edge.netns, "-o", "link", "show"});
  ASSERT_TRUE(links.ok());
  EXPECT_EQ(links->find("ex0009"), std::string::npos) << *links;
  auto nat = RunProcess({"ip", "netns", "exec", v.netns, "nft", "list", "tables"});
  ASSERT_TRUE(nat.ok());
  EXPECT_EQ(nat->out.find("stratus"), std::string::npos)
      << "the router's NAT table stayed: " << nat->out;
}

}  // namespace
}  // namespace stratus::network
