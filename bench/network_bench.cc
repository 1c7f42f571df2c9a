// network_bench: the cost of network security groups on the datapath, against a linear iptables
// chain (what OpenStack's iptables firewall driver builds), on the same endpoints, same rules,
// same run.
//
// Two namespace endpoints, A (client) and B (server), are plugged into one subnet bridge of a
// real VNET exactly as VM taps are (a veth whose host end carries the NIC's tap name), through
// LinuxNetworkEngine, the engine stratusd uses. B's NSG holds N rules: N-1 Deny rules for other
// sources, then the Allow that A's traffic matches (the worst case for a linear chain). The peer
// is the same N rules as an iptables chain jumped from FORWARD for B's port (physdev), behind an
// ESTABLISHED,RELATED accept, as OpenStack does. Measured for each: TCP connections per second
// (connect + close from A, 3 s each side, in 5 alternating slices: ours, the peer's, ours, ...),
// throughput (iperf3, 2 s), and the time to apply a one-rule change to an NSG of N rules (40
// changes) (the enforcement point: the transaction is committed when the call
// returns; a probe checks a new Deny holds at once). Then the time to apply a one-route change to
// a subnet's route table of 10 and 1,000 routes, with a probe of the kernel's routing after it.
//
//   network_bench [--seconds 3] [--rules 10,1000,10000]     (root; prints a Markdown table)
//
// 10,000 rules are more than one NSG's priority range holds (100-4096 per direction): that row
// drives the engine directly with consecutive priorities.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "bench_util.h"
#include "core/fs.h"
#include "core/subprocess.h"
#include "network/kernel_names.h"
#include "network/linux_network_engine.h"
#include "network/router_routing.h"

using namespace stratus;
using namespace stratus::network;

namespace {

constexpr char kServer[] = "10.80.1.5";
constexpr int kConnPort = 5001;
constexpr int kIperfPort = 5201;
constexpr char kChain[] = "STRATUS_BENCH";
constexpr int kSlices = 5;  // connection-rate slices per side, alternating

bool EnterNetns(const std::string& ns) {
  int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = setns(fd, CLONE_NEWNET) == 0;
  close(fd);
  return ok;
}

sockaddr_in ServerAddress(const char* ip = kServer) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(kConnPort);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

// Accepts and closes connections in `ns` until stopped.
class Server {
 public:
  explicit Server(std::string ns) {
    thread_ = std::thread([this, ns] {
      if (!EnterNetns(ns)) return;
      int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in a = ServerAddress();
      if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(s, 4096) != 0) return;
      timeval tv{0, 200000};
      setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ready_ = true;
      while (!stop_) {
        int c = accept(s, nullptr, nullptr);
        if (c >= 0) close(c);
      }
      close(s);
    });
    for (int i = 0; i < 100 && !ready_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ~Server() {
    stop_ = true;
    thread_.join();
  }
  bool ready() const { return ready_; }

 private:
  std::atomic<bool> stop_{false}, ready_{false};
  std::thread thread_;
};

// Connections per second from `ns` to the server for `seconds` (connect + close, one at a time);
// failed connects count as 0 and stop the run.
double ConnectionRate(const std::string& ns, double seconds, const char* ip = kServer) {
  double rate = 0;
  std::thread t([&] {
    if (!EnterNetns(ns)) return;
    sockaddr_in a = ServerAddress(ip);
    auto start = bench::Now();
    long n = 0;
    while (bench::MsBetween(start, bench::Now()) < seconds * 1000 && !bench::StopRequested()) {
      int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      timeval tv{1, 0};
      setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      linger lg{1, 0};  // RST on close: no TIME_WAIT pile-up over many thousand connections
      setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      bool ok = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      close(s);
      if (!ok) return;
      ++n;
    }
    rate = n / (bench::MsBetween(start, bench::Now()) / 1000.0);
  });
  t.join();
  return rate;
}

// Whether one connect from `ns` succeeds within 1 s.
bool CanConnect(const std::string& ns) {
  bool ok = false;
  std::thread t([&] {
    if (!EnterNetns(ns)) return;
    sockaddr_in a = ServerAddress();
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{1, 0};
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ok = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(s);
  });
  t.join();
  return ok;
}

// iperf3 from `ns` to the server for `seconds`: Gbit/s received, 0 on failure.
double Throughput(const std::string& ns, int seconds, const char* ip = kServer) {
  auto r = RunProcess({"ip", "netns", "exec", ns, "iperf3", "-J", "-c", ip, "-p",
                       std::to_string(kIperfPort), "-t", std::to_string(seconds)});
  if (!r.ok() || r->exit_code != 0) return 0;
  auto j = ParseJson(r->out);
  if (!j.ok()) return 0;
  const Json* bps = JsonPath(*j, "end.sum_received.bits_per_second");
  return bps && bps->is_number() ? bps->get<double>() / 1e9 : 0;
}

SecurityRule Rule(int priority, Access access, const std::string& source, int port) {
  SecurityRule r;
  r.name = "r" + std::to_string(priority);
  r.priority = priority;
  r.direction = Direction::kInbound;
  r.access = access;
  r.protocol = "Tcp";
  r.sources = {source};
  r.destinations = {"*"};
  r.source_ports = {PortRange{}};
  r.destination_ports = {PortRange{static_cast<uint16_t>(port), static_cast<uint16_t>(port)}};
  return r;
}

// N-1 Deny rules for sources that are not A, then the Allow A's traffic matches (both ports).
std::vector<SecurityRule> Rules(int n) {
  std::vector<SecurityRule> rules;
  for (int i = 0; i < n - 1; ++i)
    rules.push_back(Rule(100 + i, Access::kDeny,
                         "172.16." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1),
                         i % 2 ? kConnPort : kIperfPort));
  SecurityRule allow = Rule(100 + n, Access::kAllow, "10.80.1.4", kConnPort);
  allow.destination_ports = {PortRange{kConnPort, kConnPort}, PortRange{kIperfPort, kIperfPort}};
  rules.push_back(allow);
  return rules;
}

Status Iptables(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"iptables", "-w"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunChecked(argv).status();
}

// The same rules as a linear chain (iptables-restore: one transaction).
Status InstallIptables(int n, const std::string& tap) {
  std::string text = "*filter\n:" + std::string(kChain) + " - [0:0]\n";
  text += "-A FORWARD -m physdev --physdev-out " + tap + " --physdev-is-bridged -j " + kChain + "\n";
  text += std::string("-A ") + kChain + " -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n";
  for (auto& r : Rules(n)) {
    for (auto& p : r.destination_ports)
      text += std::string("-A ") + kChain + " -s " + r.sources[0] + " -p tcp --dport " +
              std::to_string(p.first) + " -j " + (r.access == Access::kAllow ? "RETURN" : "DROP") +
              "\n";
  }
  text += std::string("-A ") + kChain + " -j DROP\nCOMMIT\n";
  std::string path = "/tmp/stratus-bench-iptables." + std::to_string(getpid());
  RETURN_IF_ERROR(WriteFileAtomic(path, text, 0600));
  auto r = RunProcess({"sh", "-c", "iptables-restore -w --noflush < " + path});
  RemoveFile(path);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) return Internal("iptables-restore: " + r->err);
  return Status::Ok();
}

void RemoveIptables(const std::string& tap) {
  Iptables({"-D", "FORWARD", "-m", "physdev", "--physdev-out", tap, "--physdev-is-bridged", "-j",
            kChain});
  Iptables({"-F", kChain});
  Iptables({"-X", kChain});
}

struct Endpoints {
  std::vector<std::string> ns, host;
  ~Endpoints() {
    for (auto& n : ns) RunProcess({"ip", "netns", "del", n});
    for (auto& h : host) RunProcess({"ip", "link", "del", h});
  }
  Status Add(const std::string& name, const std::string& host_end, const std::string& bridge,
             const std::string& addr) {
    ns.push_back(name);
    host.push_back(host_end);
    RETURN_IF_ERROR(RunChecked({"ip", "netns", "add", name}).status());
    RETURN_IF_ERROR(RunChecked({"ip", "link", "add", host_end, "type", "veth", "peer", "name",
                                "eth0", "netns", name})
                        .status());
    RETURN_IF_ERROR(RunChecked({"ip", "link", "set", host_end, "master", bridge, "up"}).status());
    RETURN_IF_ERROR(RunChecked({"ip", "-n", name, "addr", "add", addr, "dev", "eth0"}).status());
    RETURN_IF_ERROR(RunChecked({"ip", "-n", name, "link", "set", "eth0", "up"}).status());
    return RunChecked({"ip", "-n", name, "link", "set", "lo", "up"}).status();
  }
};

std::string Fmt(double v, int digits = 0) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}


constexpr char kPublic[] = "203.0.113.2";

Status Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunChecked(argv).status();
}

// The peer of the NAT rows: a router namespace as OpenStack's L3 agent builds one (Neutron's
// floating IP): the internet on one leg, the subnet's bridge on the other, the public address
// DNATed to the server and the server SNATed to it by iptables in the router's namespace.
// internet (192.0.2.1) -- router (192.0.2.2 | 10.80.1.1) -- bridge -- server (10.80.1.5).
struct PeerRouter {
  std::string inet, router, server, bridge, lan_host, srv_host;
  bool made = false;
  explicit PeerRouter(const std::string& rid)
      : inet("nbpi" + rid), router("nbpr" + rid), server("nbpb" + rid), bridge("nbpbr" + rid),
        lan_host("nbpl" + rid), srv_host("nbps" + rid) {}
  ~PeerRouter() {
    if (!made) return;
    for (auto& n : {inet, router, server}) RunProcess({"ip", "netns", "del", n});
    for (auto& l : {lan_host, srv_host, bridge}) RunProcess({"ip", "link", "del", l});
  }
  Status Make() {
    made = true;
    for (auto& n : {inet, router, server}) {
      RETURN_IF_ERROR(Ip({"netns", "add", n}));
      RETURN_IF_ERROR(Ip({"-n", n, "link", "set", "lo", "up"}));
    }
    RETURN_IF_ERROR(Ip({"link", "add", bridge, "type", "bridge"}));
    RETURN_IF_ERROR(Ip({"link", "set", bridge, "up"}));
    // internet <-> router
    RETURN_IF_ERROR(Ip({"-n", inet, "link", "add", "eth0", "type", "veth", "peer", "name", "wan",
                        "netns", router}));
    RETURN_IF_ERROR(Ip({"-n", inet, "addr", "add", "192.0.2.1/24", "dev", "eth0"}));
    RETURN_IF_ERROR(Ip({"-n", inet, "link", "set", "eth0", "up"}));
    RETURN_IF_ERROR(Ip({"-n", inet, "route", "add", "203.0.113.0/29", "via", "192.0.2.2"}));
    RETURN_IF_ERROR(Ip({"-n", router, "addr", "add", "192.0.2.2/24", "dev", "wan"}));
    RETURN_IF_ERROR(Ip({"-n", router, "link", "set", "wan", "up"}));
    // router and server on the bridge
    RETURN_IF_ERROR(Ip({"link", "add", lan_host, "type", "veth", "peer", "name", "lan", "netns",
                        router}));
    RETURN_IF_ERROR(Ip({"link", "set", lan_host, "master", bridge, "up"}));
    RETURN_IF_ERROR(Ip({"-n", router, "addr", "add", "10.80.1.1/24", "dev", "lan"}));
    RETURN_IF_ERROR(Ip({"-n", router, "link", "set", "lan", "up"}));
    RETURN_IF_ERROR(Ip({"link", "add", srv_host, "type", "veth", "peer", "name", "eth0", "netns",
                        server}));
    RETURN_IF_ERROR(Ip({"link", "set", srv_host, "master", bridge, "up"}));
    RETURN_IF_ERROR(Ip({"-n", server, "addr", "add", "10.80.1.5/24", "dev", "eth0"}));
    RETURN_IF_ERROR(Ip({"-n", server, "link", "set", "eth0", "up"}));
    RETURN_IF_ERROR(Ip({"-n", server, "route", "add", "default", "via", "10.80.1.1"}));
    RETURN_IF_ERROR(RunChecked({"ip", "netns", "exec", router, "sysctl", "-qw",
                                "net.ipv4.ip_forward=1"})
                        .status());
    for (std::vector<std::string> rule :
         {std::vector<std::string>{"PREROUTING", "-d", kPublic, "-j", "DNAT", "--to-destination",
                                   kServer},
          std::vector<std::string>{"POSTROUTING", "-s", kServer, "-j", "SNAT", "--to-source",
                                   kPublic}}) {
      std::vector<std::string> argv = {"ip", "netns", "exec", router, "iptables", "-w", "-t",
                                       "nat", "-A"};
      argv.insert(argv.end(), rule.begin(), rule.end());
      RETURN_IF_ERROR(RunChecked(argv).status());
    }
    return Status::Ok();
  }
};

// Our side of the NAT rows: the region's edge with an uplink veth to an "internet" namespace
// made here (192.0.2.1; the edge holds 192.0.2.2 and the pool 203.0.113.0/29).
struct Internet {
  std::string ns, uplink;
  bool made = false;
  explicit Internet(const std::string& rid) : ns("nbi" + rid), uplink("nbu" + rid) {}
  ~Internet() {
    if (!made) return;
    RunProcess({"ip", "netns", "del", ns});
    RunProcess({"ip", "link", "del", uplink});
  }
  Status Make() {
    made = true;
    RETURN_IF_ERROR(Ip({"netns", "add", ns}));
    RETURN_IF_ERROR(Ip({"-n", ns, "link", "set", "lo", "up"}));
    RETURN_IF_ERROR(Ip({"link", "add", uplink, "type", "veth", "peer", "name", "eth0", "netns", ns}));
    RETURN_IF_ERROR(Ip({"-n", ns, "addr", "add", "192.0.2.1/24", "dev", "eth0"}));
    RETURN_IF_ERROR(Ip({"-n", ns, "link", "set", "eth0", "up"}));
    return Status::Ok();
  }
  Status RoutePool() { return Ip({"-n", ns, "route", "replace", "203.0.113.0/29", "via", "192.0.2.2"}); }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"network_bench: NSG datapath cost against a linear iptables chain"};
  double seconds = 3;
  std::string rule_counts = "10,1000,10000";
  app.add_option("--seconds", seconds, "Length of each connection-rate run");
  app.add_option("--rules", rule_counts, "NSG sizes, comma separated");
  CLI11_PARSE(app, argc, argv);
  bench::InstallStopHandlers();  // SIGINT/SIGTERM end the runs early; the cleanup below still runs
  if (geteuid() != 0) {
    std::fprintf(stderr, "network_bench: needs root (namespaces, nftables, iptables)\n");
    return 1;
  }
  std::vector<int> counts;
  for (size_t at = 0; at < rule_counts.size();) {
    size_t comma = rule_counts.find(',', at);
    counts.push_back(std::stoi(rule_counts.substr(at, comma - at)));
    at = comma == std::string::npos ? rule_counts.size() : comma + 1;
  }
  // iptables (nft backend) makes `table ip filter` on first use: remove it again if it was not
  // there before.
  bool had_ip_filter = RunProcess({"nft", "list", "table", "ip", "filter"}).ok() &&
                       RunProcess({"nft", "list", "table", "ip", "filter"})->exit_code == 0;
  auto nf = ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables");
  bool peer_sees_bridge = nf.ok() && nf->rfind("1", 0) == 0;

  std::string dir = "/tmp/stratus-netbench-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  std::string rid = ShortRegionId("netbench-" + std::to_string(getpid()), dir);
  LinuxNetworkEngineOptions o;
  o.region_id = rid;
  o.run_dir = dir + "/run";
  auto opened = LinuxNetworkEngine::Open(o);
  if (!opened.ok()) {
    std::fprintf(stderr, "network_bench: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  auto engine = std::move(opened).value();
  std::string tap_a = *NicTap(rid, 1), tap_b = *NicTap(rid, 2);
  int rc = 0;
  {
    VnetDatapath v;
    v.name = "bench";
    v.netns = *VnetNamespace(rid, 1);
    SubnetDatapath s;
    s.name = "s";
    s.bridge = *SubnetBridge(rid, 1);
    s.veth_on_bridge = *GatewayVethOnBridge(rid, 1);
    s.veth_in_router = *GatewayVethInRouter(1);
    s.prefix = *ParseIpv4Prefix("10.80.1.0/24", "");
    s.gateway = GatewayOf(s.prefix);
    v.subnets = {s};
    Endpoints eps;
    Status st = engine->ApplyVnet(v);
    if (st.ok()) st = eps.Add("nba" + rid, tap_a, s.bridge, "10.80.1.4/24");
    if (st.ok()) st = eps.Add("nbb" + rid, tap_b, s.bridge, "10.80.1.5/24");
    std::string a = "nba" + rid, b = "nbb" + rid;
    RunProcess({"ip", "netns", "exec", b, "iperf3", "-s", "-D", "-p", std::to_string(kIperfPort),
                "--pidfile", dir + "/iperf3.pid"});
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto server = std::make_unique<Server>(b);
    if (st.ok() && !server->ready()) st = Internal("the connection server did not start");
    SecurityDatapath sec;
    sec.table = *NftTable(rid);
    sec.tap_prefix = "st" + rid;
    sec.gateways = {s.gateway};
    auto apply_nsg = [&](int n) {
      NsgStage stage;
      stage.key = "b";
      stage.tags.vnet_spaces = {s.prefix};
      stage.rules = Rules(n);
      sec.stages = {stage};
      sec.nics = {{tap_a, "", "", "", {*ParseIpv4("10.80.1.4", "")}},
                  {tap_b, "", "b", "", {*ParseIpv4("10.80.1.5", "")}}};
      return engine->ApplySecurity(sec);
    };
    auto clear_nsg = [&] { return engine->ApplySecurity({sec.table, sec.tap_prefix, {}, {}, {}}); };

    std::vector<std::vector<std::string>> rows;
    if (st.ok()) {
      double base_rate = ConnectionRate(a, seconds);
      double base_tp = Throughput(a, 2);
      rows.push_back({"no rules", Fmt(base_rate), Fmt(base_tp, 2), "-", "-", "-", "-", "-"});
      for (int n : counts) {
        if (!st.ok()) break;
        if (bench::StopRequested()) {
          st = bench::Interrupted();
          break;
        }
        // Connection rates in alternating slices, ours then the peer's, so that drift of a
        // shared host hits both alike.
        double ours_conns = 0, peer_conns = 0, slice = seconds / kSlices;
        for (int k = 0; k < kSlices && st.ok(); ++k) {
          st = apply_nsg(n);
          if (!st.ok()) break;
          ours_conns += ConnectionRate(a, slice) * slice;
          if (!peer_sees_bridge) continue;
          st = clear_nsg();
          if (st.ok()) st = InstallIptables(n, tap_b);
          if (st.ok()) peer_conns += ConnectionRate(a, slice) * slice;
          RemoveIptables(tap_b);
        }
        if (st.ok()) st = apply_nsg(n);
        if (!st.ok()) break;
        double ours_rate = ours_conns / seconds, ours_tp = Throughput(a, 2);
        // One-rule changes to an NSG of n rules: time to committed (= enforced).
        std::vector<double> apply_ms;
        for (int i = 0; i < 40 && st.ok(); ++i) {
          NsgStage stage = sec.stages[0];
          stage.rules[0].destination_ports = {PortRange{static_cast<uint16_t>(6000 + i),
                                                        static_cast<uint16_t>(6000 + i)}};
          sec.stages = {stage};
          auto t0 = bench::Now();
          st = engine->ApplySecurity(sec);
          apply_ms.push_back(bench::MsBetween(t0, bench::Now()));
        }
        // The last change denies A first: it must hold as soon as the call returns.
        bool enforced = false;
        if (st.ok()) {
          NsgStage stage = sec.stages[0];
          stage.rules.insert(stage.rules.begin(), Rule(99, Access::kDeny, "10.80.1.4", kConnPort));
          sec.stages = {stage};
          st = engine->ApplySecurity(sec);
          enforced = st.ok() && !CanConnect(a);
        }
        auto sum = bench::Summarize(apply_ms);
        double peer_rate = peer_conns / seconds, peer_tp = 0;
        if (st.ok()) st = clear_nsg();
        if (st.ok() && peer_sees_bridge) {
          st = InstallIptables(n, tap_b);
          if (st.ok()) peer_tp = Throughput(a, 2);
          RemoveIptables(tap_b);
        }
        rows.push_back({std::to_string(n) + " rules", Fmt(ours_rate), Fmt(ours_tp, 2),
                        peer_sees_bridge ? Fmt(peer_rate) : "n/a",
                        peer_sees_bridge ? Fmt(peer_tp, 2) : "n/a",
                        peer_rate > 0 ? Fmt(ours_rate / peer_rate, 1) + "x" : "-",
                        Fmt(sum.p50_ms, 1) + " / " + Fmt(sum.p99_ms, 1),
                        enforced ? "yes" : "NO"});
        std::fprintf(stderr, "network_bench: %d rules done\n", n);
      }
    }
    // Route tables: a one-route change to the subnet's table of n routes, from the call to the
    // kernel routing by it (ApplyVnet returns after the netlink change; a probe asks the kernel
    // how a packet from the subnet is routed now).
    std::vector<std::vector<std::string>> route_rows;
    for (int n : {10, 1000}) {
      if (!st.ok() || bench::StopRequested()) break;
      std::vector<Route> user;
      for (int i = 0; i < n; ++i)
        user.push_back({"r" + std::to_string(i),
                        {Ipv4{0xc6120000u + static_cast<uint32_t>(i) * 4}, 30},  // 198.18.x.y/30
                        NextHop::kVirtualAppliance, *ParseIpv4("10.80.1.5", "")});
      v.subnets[0].route_table = SubnetRouteTable(1);
      auto set_routes = [&] {
        v.subnets[0].routes = EffectiveRoutes(SystemRoutes({*ParseIpv4Prefix("10.80.0.0/16", "")}, {}), user);
        return engine->ApplyVnet(v);
      };
      st = set_routes();
      std::vector<double> apply_ms;
      for (int i = 0; i < 15 && st.ok(); ++i) {
        user[0].next_hop = i % 2 ? NextHop::kVirtualAppliance : NextHop::kNone;
        auto t0 = bench::Now();
        st = set_routes();
        apply_ms.push_back(bench::MsBetween(t0, bench::Now()));
      }
      // The last change sends 198.18.0.0/30 to another appliance: the kernel must route so as
      // soon as the call returns.
      bool enforced = false;
      if (st.ok()) {
        user[0].next_hop = NextHop::kVirtualAppliance;
        user[0].next_hop_ip = *ParseIpv4("10.80.1.6", "");
        st = set_routes();
        auto probe = RunProcess({"ip", "-n", v.netns, "route", "get", "198.18.0.1", "from",
                                 "10.80.1.4", "iif", s.veth_in_router});
        enforced = st.ok() && probe.ok() && probe->out.find("via 10.80.1.6") != std::string::npos;
      }
      auto sum = bench::Summarize(apply_ms);
      route_rows.push_back({std::to_string(n) + " routes", Fmt(sum.p50_ms, 1) + " / " + Fmt(sum.p99_ms, 1),
                            enforced ? "yes" : "NO"});
      v.subnets[0].route_table = 0;
      v.subnets[0].routes.clear();
      if (st.ok()) st = engine->ApplyVnet(v);
    }
    // NAT: the internet reaches B through its public IP (1:1 NAT in the VNET's router, behind
    // the region's edge), against a Neutron-style router namespace with iptables DNAT/SNAT.
    std::vector<std::string> nat_row;
    Internet inet(rid);
    PeerRouter peer(rid);
    if (st.ok() && !bench::StopRequested()) {
      st = clear_nsg();
      if (st.ok()) st = inet.Make();
      EdgeDatapath edge;
      edge.netns = *EdgeNamespace(rid);
      edge.uplink = inet.uplink;
      edge.uplink_ip = *ParseIpv4("192.0.2.2", "");
      edge.uplink_length = 24;
      edge.uplink_gateway = *ParseIpv4("192.0.2.1", "");
      edge.pool = *ParseIpv4Prefix("203.0.113.0/29", "");
      if (st.ok()) st = engine->ApplyEdge(edge);
      if (st.ok()) st = inet.RoutePool();
      if (st.ok()) {
        v.transit = *TransitAddress(1);
        v.uplink = {edge.netns, kUplinkVethInRouter, *UplinkVethInEdge(1),
                    {{*ParseIpv4(kPublic, ""), *ParseIpv4(kServer, "")}}, {}};
        st = engine->ApplyVnet(v);
      }
      if (st.ok()) st = Ip({"-n", b, "route", "replace", "default", "via", "10.80.1.1"});
      double ours_rate = 0, ours_tp = 0, peer_rate = 0, peer_tp = 0;
      if (st.ok()) {
        ours_rate = ConnectionRate(inet.ns, seconds, kPublic);
        ours_tp = Throughput(inet.ns, 2, kPublic);
        if (ours_rate == 0) st = Internal("the internet does not reach B's public IP");
      }
      if (st.ok()) st = peer.Make();
      if (st.ok()) {
        RunProcess({"ip", "netns", "exec", peer.server, "iperf3", "-s", "-D", "-p",
                    std::to_string(kIperfPort), "--pidfile", dir + "/iperf3-peer.pid"});
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        Server peer_server(peer.server);
        peer_rate = ConnectionRate(peer.inet, seconds, kPublic);
        peer_tp = Throughput(peer.inet, 2, kPublic);
        auto ppid = ReadFile(dir + "/iperf3-peer.pid");
        if (ppid.ok()) kill(std::atoi(ppid->c_str()), SIGKILL);
        if (peer_rate == 0) st = Internal("the peer router does not forward to its server");
      }
      if (st.ok())
        nat_row = {Fmt(ours_rate), Fmt(ours_tp, 2), Fmt(peer_rate), Fmt(peer_tp, 2),
                   Fmt(ours_rate / peer_rate, 2) + "x", Fmt(ours_tp / peer_tp, 2) + "x"};
      std::fprintf(stderr, "network_bench: NAT done\n");
    }
    server.reset();
    auto pid = ReadFile(dir + "/iperf3.pid");
    if (pid.ok()) kill(std::atoi(pid->c_str()), SIGKILL);
    clear_nsg();
    RemoveIptables(tap_b);
    if (!st.ok()) {
      std::fprintf(stderr, "network_bench: %s\n", st.ToString().c_str());
      rc = 1;
    } else {
      std::printf("## Network security groups: datapath cost (load %s)\n\n",
                  bench::LoadAverage().c_str());
      std::printf("Two namespace endpoints on one subnet bridge, plugged as VM taps; B's NSG holds "
                  "N rules, A matches the last. Peer: the same rules as a linear iptables chain "
                  "(OpenStack's iptables driver), conntrack for established flows. Connection "
                  "rates in 5 alternating slices per side; change applied: 40 one-rule changes."
                  "\n\n");
      std::printf("| NSG | ours conn/s | ours Gbit/s | iptables conn/s | iptables Gbit/s | "
                  "ours/iptables conn/s | change applied p50 / p99 ms | new Deny holds at once "
                  "|\n|---|---|---|---|---|---|---|---|\n");
      for (auto& r : rows) {
        std::printf("|");
        for (auto& c : r) std::printf(" %s |", c.c_str());
        std::printf("\n");
      }
      if (!peer_sees_bridge)
        std::printf("\nbridge-nf-call-iptables is 0 here: iptables does not see bridged frames, "
                    "so the peer cannot be measured.\n");
      std::printf("\n## Route tables: a one-route change on a subnet's table\n\n"
                  "| route table | change applied p50 / p99 ms | new route holds at once |\n"
                  "|---|---|---|\n");
      for (auto& r : route_rows) std::printf("| %s | %s | %s |\n", r[0].c_str(), r[1].c_str(), r[2].c_str());
      if (!nat_row.empty()) {
        std::printf("\n## Public IP: the internet to a NIC through 1:1 NAT\n\n"
                    "A client namespace (the internet) connects to B's public IP. Ours: uplink -> "
                    "the region's edge namespace -> the VNET's router (nftables DNAT/SNAT) -> the "
                    "subnet bridge (two forwarding hops). Peer: a Neutron-style router namespace "
                    "(iptables DNAT/SNAT of a floating IP) -> a bridge (one hop).\n\n"
                    "| path | ours conn/s | ours Gbit/s | router+iptables conn/s | router+iptables "
                    "Gbit/s | ours/peer conn/s | ours/peer Gbit/s |\n|---|---|---|---|---|---|---|\n");
        std::printf("| internet -> public IP -> NIC |");
        for (auto& c : nat_row) std::printf(" %s |", c.c_str());
        std::printf("\n");
      }
    }
  }
  engine->RemoveEdge();
  engine->Sweep({});
  if (!had_ip_filter) RunProcess({"nft", "delete", "table", "ip", "filter"});
  std::filesystem::remove_all(dir);
  return rc;
}
