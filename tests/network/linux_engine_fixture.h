// The fixture of LinuxNetworkEngine's tests on the real kernel: namespaces, bridges, veths,
// dnsmasq. Endpoints are namespaces a test creates and plugs into the subnet bridges exactly as
// a VM's tap is plugged (a veth whose host end joins the bridge, with the NIC's MAC on the
// endpoint end). Needs root, iproute2, dnsmasq and busybox (udhcpc, ping, nc, httpd); skipped
// without them. Every object carries the test's own region id and is removed at the end, also
// on failure.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "core/fs.h"
#include "core/json.h"
#include "core/scoped_temp_dir.h"
#include "core/subprocess.h"
#include "network/kernel_names.h"
#include "network/linux_network_engine.h"

namespace stratus::network {

inline bool Have(const std::string& tool) { return RunProcess({tool, "--help"}).ok(); }

class LinuxNetworkEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0 || !Have("ip") || !Have("dnsmasq") || !Have("busybox"))
      GTEST_SKIP() << "needs root, ip, dnsmasq and busybox";
    rid_ = ShortRegionId("engine-test-" + std::to_string(getpid()), dir_.Path(""));
    // dnsmasq re-reads its host files as user nobody.
    ASSERT_EQ(chmod(dir_.Path("").c_str(), 0755), 0);
    LinuxNetworkEngineOptions o;
    o.region_id = rid_;
    o.run_dir = dir_.Path("run");
    auto e = LinuxNetworkEngine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
  }
  void TearDown() override {
    // Servers this test started in its endpoints (found by their unique document root).
    for (auto& e : std::filesystem::directory_iterator("/proc")) {
      auto cmd = ReadFile(e.path().string() + "/cmdline");
      if (cmd.ok() && cmd->find(dir_.Path("www")) != std::string::npos)
        kill(std::atoi(e.path().filename().c_str()), SIGKILL);
    }
    for (auto& ep : endpoints_) RunProcess({"ip", "netns", "del", ep});
    for (auto& h : host_ends_) RunProcess({"ip", "link", "del", h});
    if (engine_) {
      EXPECT_TRUE(engine_->ApplySecurity({*NftTable(rid_), "st" + rid_, {}, {}, {}}).ok());
      Status swept = engine_->Sweep({});
      EXPECT_TRUE(swept.ok()) << swept.ToString();
      EXPECT_TRUE(engine_->RemoveEdge().ok());
      auto left = engine_->List();
      ASSERT_TRUE(left.ok());
      EXPECT_TRUE(left->namespaces.empty() && left->links.empty() && left->dns_pids.empty() &&
                  left->nft_tables.empty())
          << left->namespaces.size() << " namespaces, " << left->links.size() << " links, "
          << left->dns_pids.size() << " dnsmasq, " << left->nft_tables.size() << " tables left";
    }
  }

  VnetDatapath Vnet(uint32_t index, std::vector<std::pair<uint32_t, std::string>> subnets) {
    VnetDatapath v;
    v.name = "vnet" + std::to_string(index);
    v.netns = *VnetNamespace(rid_, index);
    v.dns_domain = v.name + ".internal";
    for (auto& [i, prefix] : subnets) {
      SubnetDatapath s;
      s.name = "s" + std::to_string(i);
      s.bridge = *SubnetBridge(rid_, i);
      s.veth_on_bridge = *GatewayVethOnBridge(rid_, i);
      s.veth_in_router = *GatewayVethInRouter(i);
      s.prefix = *ParseIpv4Prefix(prefix, "");
      s.gateway = GatewayOf(s.prefix);
      v.subnets.push_back(s);
    }
    return v;
  }

  // An endpoint namespace "e<rid><n>" plugged into `bridge` with `mac`, its host end named
  // `host_end` (a NIC's tap name, so that security rules apply to it) or "h<namespace>".
  std::string Endpoint(int n, const std::string& bridge, const std::string& mac,
                       std::string host_end = "") {
    std::string ep = "e" + rid_ + std::to_string(n);
    if (host_end.empty()) host_end = "h" + ep;
    endpoints_.push_back(ep);
    host_ends_.push_back(host_end);
    EXPECT_TRUE(RunChecked({"ip", "netns", "add", ep}).ok());
    EXPECT_TRUE(RunChecked({"ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0",
                            "netns", ep})
                    .ok());
    EXPECT_TRUE(RunChecked({"ip", "link", "set", host_end, "master", bridge, "up"}).ok());
    EXPECT_TRUE(RunChecked({"ip", "-n", ep, "link", "set", "eth0", "address", mac, "up"}).ok());
    EXPECT_TRUE(RunChecked({"ip", "-n", ep, "link", "set", "lo", "up"}).ok());
    return ep;
  }

  Result<ProcessResult> In(const std::string& ns, std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"ip", "netns", "exec", ns});
    return RunProcess(argv);
  }

  // DHCP from inside endpoint `ep`: the leased address is configured on eth0 with its route.
  std::string Dhcp(const std::string& ep) {
    auto r = In(ep, {"busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "5", "-T", "1",
                     "-s", JoinPath(dir_.Path(""), "udhcpc.sh")});
    if (!r.ok()) return "";
    auto a = In(ep, {"ip", "-4", "-o", "addr", "show", "dev", "eth0"});
    if (!a.ok()) return "";
    size_t at = a->out.find("inet ");
    if (at == std::string::npos) return "";
    std::string addr = a->out.substr(at + 5);
    return addr.substr(0, addr.find(' '));
  }

  void WriteDhcpScript() {
    // udhcpc's script: configure the lease like busybox's example script does.
    ASSERT_TRUE(WriteFileAtomic(JoinPath(dir_.Path(""), "udhcpc.sh"),
                                "#!/bin/sh\n"
                                "[ \"$1\" = bound ] || exit 0\n"
                                "ip addr add \"$ip/$mask\" dev \"$interface\"\n"
                                "ip route add default via \"$router\" dev \"$interface\"\n"
                                "echo \"$dns\" > \"$(dirname \"$0\")/dns.$interface.$ip\"\n",
                                0755)
                    .ok());
  }

  // The "internet": namespace "i<rid>" of this test at 198.51.100.1, the other end of its veth
  // (in the root namespace, unaddressed) being the uplink the engine moves into the edge. It
  // routes the pool 203.0.113.0/28 (and `also_routed`) to the edge at 198.51.100.2, and has a
  // table "count" whose counters CountFrom adds. "" after a failure.
  std::string Internet(const std::vector<std::string>& also_routed = {}) {
    std::string inet = "i" + rid_;
    uplink_ = "u" + rid_ + "up";
    endpoints_.push_back(inet);
    host_ends_.push_back(uplink_);
    bool ok =
        RunChecked({"ip", "netns", "add", inet}).ok() &&
        RunChecked(
            {"ip", "link", "add", uplink_, "type", "veth", "peer", "name", "eth0", "netns", inet})
            .ok() &&
        RunChecked({"ip", "-n", inet, "addr", "add", "198.51.100.1/24", "dev", "eth0"}).ok() &&
        RunChecked({"ip", "-n", inet, "link", "set", "eth0", "up"}).ok() &&
        RunChecked({"ip", "-n", inet, "link", "set", "lo", "up"}).ok();
    std::vector<std::string> routed = also_routed;
    routed.insert(routed.begin(), "203.0.113.0/28");
    for (auto& r : routed)
      ok = ok && RunChecked({"ip", "-n", inet, "route", "add", r, "via", "198.51.100.2"}).ok();
    auto t = In(inet, {"nft",
                       "add table ip count; "
                       "add chain ip count in { type filter hook input priority 0; }"});
    ok = ok && t.ok() && t->exit_code == 0;
    EXPECT_TRUE(ok) << "making the internet namespace";
    return ok ? inet : "";
  }
  // Counts in the internet namespace what arrives from `addr`, as counter `name`.
  void CountFrom(const std::string& inet, const std::string& name, const std::string& addr) {
    auto r = In(inet, {"nft", "add counter ip count " + name + "; add rule ip count in ip saddr " +
                                  addr + " counter name " + name});
    EXPECT_TRUE(r.ok() && r->exit_code == 0) << name;
  }
  // The edge on the internet's uplink (after Internet()): uplink 198.51.100.2/24, pool
  // 203.0.113.0/28; applied.
  EdgeDatapath Edge() {
    EdgeDatapath edge;
    edge.netns = *EdgeNamespace(rid_);
    edge.uplink = uplink_;
    edge.uplink_ip = *ParseIpv4("198.51.100.2", "");
    edge.uplink_length = 24;
    edge.uplink_gateway = *ParseIpv4("198.51.100.1", "");
    edge.pool = *ParseIpv4Prefix("203.0.113.0/28", "");
    Status st = engine_->ApplyEdge(edge);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return edge;
  }
  // VNET `v`'s way out through `edge`.
  void Uplink(VnetDatapath& v, uint32_t index, const EdgeDatapath& edge) {
    v.transit = *TransitAddress(index);
    v.uplink.edge_netns = edge.netns;
    v.uplink.veth = kUplinkVethInRouter;
    v.uplink.edge_veth = *UplinkVethInEdge(index);
  }

  test::ScopedTempDir dir_{"netengine"};
  std::string rid_;
  std::unique_ptr<LinuxNetworkEngine> engine_;
  std::vector<std::string> endpoints_;
  std::vector<std::string> host_ends_;
  std::string uplink_;
};

// The packets counter `name` of table "count" in `ns` counted.
inline uint64_t Counted(const std::string& ns, const std::string& name) {
  auto r =
      RunProcess({"ip", "netns", "exec", ns, "nft", "-j", "list", "counter", "ip", "count", name});
  if (!r.ok() || r->exit_code != 0) return 0;
  auto j = ParseJson(r->out);
  if (!j.ok()) return 0;
  for (auto& o : (*j)["nftables"])
    if (o.contains("counter")) return o["counter"].value("packets", 0u);
  return 0;
}

}  // namespace stratus::network
