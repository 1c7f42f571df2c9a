// The load balancers' datapath (lb_datapath.h) applied by LinuxNetworkEngine on the real
// kernel: backends are endpoint namespaces serving their own name over HTTP, clients the
// "internet" namespace and endpoints of the VNET (linux_engine_fixture.h).
#include <gtest/gtest.h>

#include <chrono>
#include <map>

#include "network/lb/lb_datapath.h"
#include "network/lb/lb_prober.h"
#include "network/lb/maglev.h"
#include "network/linux_engine_fixture.h"

namespace stratus::network {
namespace {

class LbEngineTest : public LinuxNetworkEngineTest {
 protected:
  // Endpoint `n` at `addr` (with gateway .1 of its /24) serving its own name on port 8080.
  std::string Backend(int n, const std::string& bridge, const std::string& mac,
                      const std::string& addr) {
    std::string ep = Endpoint(n, bridge, mac);
    std::string gw = addr.substr(0, addr.rfind('.')) + ".1";
    EXPECT_TRUE(RunChecked({"ip", "-n", ep, "addr", "add", addr + "/24", "dev", "eth0"}).ok());
    EXPECT_TRUE(RunChecked({"ip", "-n", ep, "route", "add", "default", "via", gw}).ok());
    std::string root = dir_.Path("www/" + addr);
    EXPECT_TRUE(MakeDirs(root, 0755).ok());
    EXPECT_TRUE(WriteFileAtomic(JoinPath(root, "index.html"), addr + "\n", 0644).ok());
    EXPECT_TRUE(In(ep, {"busybox", "httpd", "-p", "8080", "-h", root}).ok());
    return ep;
  }

  // `count` requests from `ns` to http://`to`/, each a new connection; the answers counted by
  // what they say (the backend's address; "" for a failed request).
  std::map<std::string, int> Fetch(const std::string& ns, const std::string& to, int count) {
    std::string script = "for i in $(seq " + std::to_string(count) +
                         "); do timeout 2 busybox wget -q -O - http://" + to +
                         "/ 2>/dev/null || echo; done";
    auto r = In(ns, {"sh", "-c", script});
    std::map<std::string, int> seen;
    if (!r.ok()) return seen;
    size_t at = 0;
    while (at < r->out.size()) {
      size_t nl = r->out.find('\n', at);
      if (nl == std::string::npos) nl = r->out.size();
      ++seen[r->out.substr(at, nl - at)];
      at = nl + 1;
    }
    return seen;
  }

  static LbRuleDatapath HttpRule(const std::string& frontend, std::vector<std::string> backends) {
    LbRuleDatapath r;
    r.key = "r1";
    r.frontend = *ParseIpv4(frontend, "");
    r.protocol = "tcp";
    r.frontend_port = 80;
    r.backend_port = 8080;
    for (auto& b : backends) r.backends.push_back(*ParseIpv4(b, ""));
    return r;
  }

  // The slots of map m_r1 in router `netns`, by backend.
  std::map<std::string, int> Slots(const std::string& netns) {
    std::map<std::string, int> out;
    auto r = In(netns, {"nft", "-j", "list", "map", "ip", kLbTable, "m_r1"});
    if (!r.ok() || r->exit_code != 0) return out;
    auto j = ParseJson(r->out);
    if (!j.ok()) return out;
    for (auto& o : (*j)["nftables"])
      if (o.contains("map"))
        for (auto& e : o["map"].value("elem", Json::array())) ++out[e[1].get<std::string>()];
    return out;
  }
};

TEST_F(LbEngineTest, APublicLoadBalancerSpreadsNewFlowsAndChangesOnlyWhatItMust) {
  std::string inet = Internet();
  ASSERT_FALSE(inet.empty());
  CountFrom(inet, "from_frontend", "203.0.113.7");
  EdgeDatapath edge = Edge();
  VnetDatapath v = Vnet(21, {{211, "10.93.1.0/24"}});
  Uplink(v, 21, edge);
  const std::string fe = "203.0.113.7";
  v.uplink.routed = {*ParseIpv4(fe, "")};
  v.lb.rules = {HttpRule(fe, {"10.93.1.4", "10.93.1.5", "10.93.1.6"})};
  v.lb.frontends = {*ParseIpv4(fe, "")};
  v.lb.subnet_links = {v.subnets[0].veth_in_router};
  v.lb.uplink = kUplinkVethInRouter;
  LbNatDatapath ssh;
  ssh.key = "n1";
  ssh.frontend = *ParseIpv4(fe, "");
  ssh.frontend_port = 50001;
  ssh.backend = *ParseIpv4("10.93.1.6", "");
  ssh.backend_port = 8080;
  v.lb.nats = {ssh};
  v.lb.snats = {{{*ParseIpv4("10.93.1.4", "")}, *ParseIpv4(fe, "")}};
  Status st = engine_->ApplyVnet(v);
  ASSERT_TRUE(st.ok()) << st.ToString();
  const std::string& br = v.subnets[0].bridge;
  std::string b1 = Backend(31, br, "52:54:00:00:b1:04", "10.93.1.4");
  Backend(32, br, "52:54:00:00:b1:05", "10.93.1.5");
  Backend(33, br, "52:54:00:00:b1:06", "10.93.1.6");
  std::string client = Endpoint(34, br, "52:54:00:00:b1:09");
  ASSERT_TRUE(RunChecked({"ip", "-n", client, "addr", "add", "10.93.1.9/24", "dev", "eth0"}).ok());
  ASSERT_TRUE(RunChecked({"ip", "-n", client, "route", "add", "default", "via", "10.93.1.1"}).ok());

  // 600 new connections from the internet (random source ports): each backend gets its third,
  // within 20% (3.5 standard deviations of a fair split).
  auto seen = Fetch(inet, fe, 600);
  for (const char* b : {"10.93.1.4", "10.93.1.5", "10.93.1.6"}) {
    EXPECT_GE(seen[b], 160) << b;
    EXPECT_LE(seen[b], 240) << b;
  }
  EXPECT_EQ(seen[""], 0) << "failed requests";
  // The inbound NAT rule reaches its one backend; a port no rule has goes nowhere.
  EXPECT_EQ(Fetch(inet, fe + ":50001", 5)["10.93.1.6"], 5);
  EXPECT_EQ(Fetch(inet, fe + ":81", 1)[""], 1);
  // Hairpin: a backend and a client beside the backends reach the frontend.
  EXPECT_EQ(Fetch(b1, fe, 10)[""], 0);
  EXPECT_EQ(Fetch(client, fe, 10)[""], 0);
  // The outbound rule: b1 leaves with the frontend's address.
  auto ping = In(b1, {"busybox", "ping", "-c", "1", "-W", "1", "198.51.100.1"});
  ASSERT_TRUE(ping.ok());
  EXPECT_EQ(ping->exit_code, 0);
  EXPECT_GE(Counted(inet, "from_frontend"), 1u);

  // A backend leaves: only the map's elements change (Maglev: its slots and about 1% of the
  // others'), the other backends keep theirs, and it gets no new flow.
  auto before = Slots(v.netns);
  ASSERT_EQ(before.size(), 3u);
  LbDatapath less = v.lb;
  less.rules[0].backends.erase(less.rules[0].backends.begin() + 1);  // 10.93.1.5
  st = engine_->ApplyLoadBalancing(v.netns, less);
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto after = Slots(v.netns);
  EXPECT_EQ(after.count("10.93.1.5"), 0u);
  EXPECT_EQ(after["10.93.1.4"] + after["10.93.1.6"], static_cast<int>(kMaglevTableSize));
  seen = Fetch(inet, fe, 60);
  EXPECT_EQ(seen["10.93.1.5"], 0);
  EXPECT_EQ(seen[""], 0);
  // No healthy backend: new flows are dropped, not sent on.
  LbDatapath none = v.lb;
  none.rules[0].backends.clear();
  ASSERT_TRUE(engine_->ApplyLoadBalancing(v.netns, none).ok());
  EXPECT_EQ(Fetch(inet, fe, 2)[""], 2);
  // Applying the VNET again brings the three back; doing it twice changes nothing.
  ASSERT_TRUE(engine_->ApplyVnet(v).ok());
  EXPECT_EQ(Slots(v.netns), before);
  auto listed = In(v.netns, {"nft", "list", "table", "ip", kLbTable});
  ASSERT_TRUE(engine_->ApplyVnet(v).ok());
  EXPECT_EQ(listed->out, In(v.netns, {"nft", "list", "table", "ip", kLbTable})->out);
  // Without load balancers the table is gone.
  v.lb = {};
  v.uplink.routed.clear();
  ASSERT_TRUE(engine_->ApplyVnet(v).ok());
  auto tables = In(v.netns, {"nft", "list", "tables"});
  ASSERT_TRUE(tables.ok());
  EXPECT_EQ(tables->out.find(kLbTable), std::string::npos) << tables->out;
  EXPECT_EQ(Fetch(inet, fe, 1)[""], 1);
}

TEST_F(LbEngineTest, AnInternalLoadBalancerAnswersInsideTheVnetOnly) {
  VnetDatapath v = Vnet(22, {{221, "10.94.1.0/24"}, {222, "10.94.2.0/24"}});
  const std::string fe = "10.94.1.10";
  v.subnets[0].frontends = {*ParseIpv4(fe, "")};
  v.lb.rules = {HttpRule(fe, {"10.94.1.4", "10.94.1.5"})};
  v.lb.frontends = {*ParseIpv4(fe, "")};
  v.lb.subnet_links = {v.subnets[0].veth_in_router, v.subnets[1].veth_in_router};
  Status st = engine_->ApplyVnet(v);
  ASSERT_TRUE(st.ok()) << st.ToString();
  Backend(41, v.subnets[0].bridge, "52:54:00:00:c1:04", "10.94.1.4");
  Backend(42, v.subnets[0].bridge, "52:54:00:00:c1:05", "10.94.1.5");
  std::string near = Endpoint(43, v.subnets[0].bridge, "52:54:00:00:c1:09");
  std::string far = Endpoint(44, v.subnets[1].bridge, "52:54:00:00:c2:04");
  for (auto [ep, addr, gw] :
       {std::tuple{near, "10.94.1.9/24", "10.94.1.1"}, {far, "10.94.2.4/24", "10.94.2.1"}}) {
    ASSERT_TRUE(RunChecked({"ip", "-n", ep, "addr", "add", addr, "dev", "eth0"}).ok());
    ASSERT_TRUE(RunChecked({"ip", "-n", ep, "route", "add", "default", "via", gw}).ok());
  }
  // From the same subnet (the router answers ARP for the frontend) and from another.
  for (auto& ep : {near, far}) {
    auto seen = Fetch(ep, fe, 40);
    EXPECT_EQ(seen[""], 0) << ep;
    EXPECT_GE(seen["10.94.1.4"], 8) << ep;
    EXPECT_GE(seen["10.94.1.5"], 8) << ep;
  }
  auto addrs = RunChecked(
      {"ip", "-n", v.netns, "-4", "-o", "addr", "show", "dev", v.subnets[0].veth_in_router});
  ASSERT_TRUE(addrs.ok());
  EXPECT_NE(addrs->find(fe + "/32"), std::string::npos) << *addrs;
  // Gone with its load balancer: the address too.
  v.subnets[0].frontends.clear();
  v.lb = {};
  ASSERT_TRUE(engine_->ApplyVnet(v).ok());
  EXPECT_EQ(Fetch(near, fe, 1)[""], 1);
  addrs = RunChecked(
      {"ip", "-n", v.netns, "-4", "-o", "addr", "show", "dev", v.subnets[0].veth_in_router});
  EXPECT_EQ(addrs->find(fe), std::string::npos) << *addrs;
}

}  // namespace
}  // namespace stratus::network

namespace stratus::network {
namespace {

// The Linux probe runner from inside a router namespace: TCP, HTTP with a path and the statuses
// it expects; a stopped server fails both.
TEST_F(LbEngineTest, ProbesRunInsideTheRouterAndSeeWhatTheBackendAnswers) {
  VnetDatapath v = Vnet(23, {{231, "10.95.1.0/24"}});
  Status st = engine_->ApplyVnet(v);
  ASSERT_TRUE(st.ok()) << st.ToString();
  std::string b = Backend(51, v.subnets[0].bridge, "52:54:00:00:d1:04", "10.95.1.4");
  LinuxProbeRunner runner;
  ProbeTarget t;
  t.netns = v.netns;
  t.probe = "p";
  t.backend = *ParseIpv4("10.95.1.4", "");
  t.config.port = 8080;
  EXPECT_TRUE(runner.Probe(t, 1000).ok()) << "TCP";
  t.config.protocol = "Http";
  t.config.request_path = "/index.html";
  EXPECT_TRUE(runner.Probe(t, 1000).ok()) << "HTTP 200";
  t.config.request_path = "/nope";
  Status missing = runner.Probe(t, 1000);
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("404"), std::string::npos) << missing.ToString();
  t.config.expected_status = {{200, 299}, {404, 404}};
  EXPECT_TRUE(runner.Probe(t, 1000).ok()) << "404 expected";
  t.config.port = 8081;
  t.config.protocol = "Tcp";
  EXPECT_FALSE(runner.Probe(t, 1000).ok()) << "nothing listens on 8081";
  t.backend = *ParseIpv4("10.95.1.77", "");
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(runner.Probe(t, 500).ok()) << "no such backend";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3)) << "bounded";
  t.netns = "stv-nowhere";
  EXPECT_FALSE(runner.Probe(t, 500).ok());
}

}  // namespace
}  // namespace stratus::network
