// Virtual networks end to end: real stratusd, real tiny-guest VMs on libvirt/QEMU, the region's
// namespaces, bridges and dnsmasq. Every packet in this test goes between the guests (and their
// VNET routers); nothing is sent from the host.
//
// vnet1 (10.10.0.0/16): subnets front (10.10.1.0/24, VM web), back (10.10.2.0/24, VM db) and
// GatewaySubnet (10.10.255.0/27, VM nva: an appliance, its NIC forwarding);
// vnet2 (10.20.0.0/16): subnet s (VM iso); vnet3 (10.30.0.0/16): subnet s, no VM (its router
// answers at 10.30.1.1).
// web and db reach each other's HTTP page across subnets and by name; DHCP offers each NIC its
// address; iso reaches neither until vnet1 and vnet2 are peered; with vnet2 also peered to vnet3,
// iso reaches vnet3 but web does not (peering is not transitive); a route table on front sends
// web's traffic to back through nva (nva's kernel counts what it forwarded); a second NIC is
// plugged into the running web (DHCP serves it in the guest) and unplugged; web keeps its address across deallocate and start; a kill -9 of
// stratusd cuts nothing; security groups on a NIC (inbound) and on a subnet (outbound) deny and
// allow at once; deleting everything leaves no namespace, link, dnsmasq or nft table of the
// region. Public IPs: the region's uplink is a veth into an "internet" namespace this test makes
// (198.51.100.1, with a web server); web gets a public IP that the internet reaches (HTTP and
// ping) and by which web's own requests leave; db, without one, reaches the internet through
// the edge's SNAT; both hold after the kill -9. Two more tests: a VM with two NICs and a
// reserved public IP backs up and restores with them; a kill -9 inside a NIC create and inside
// an NSG update (crash points) cuts no traffic and the restart converges the datapath.
#include <unistd.h>

#include <functional>
#include <thread>

#include "core/subprocess.h"
#include "harness.h"
#include "net_harness.h"

namespace stratus::e2e {
namespace {

constexpr const char* kNetRg = "rg-net";

// The test's "internet": a namespace with a web server at 198.51.100.1, and the uplink veth
// whose other end stratusd moves into its edge namespace.
std::string InternetNs() { return "e2einet" + std::to_string(getpid()); }
std::string UplinkName() { return "e2eup" + std::to_string(getpid()); }

class NetworkTest : public DaemonTest {
 protected:
  NetworkTest()
      : DaemonTest(DaemonOptions("regionNet")
                       .Group(kNetRg)
                       .Flags({"--public-pool", "203.0.113.0/28", "--uplink", UplinkName(),
                               "--uplink-address", "198.51.100.2/24", "--uplink-gateway",
                               "198.51.100.1"})) {}

  void SetUp() override {
    if (geteuid() == 0) MakeInternet();
    DaemonTest::SetUp();
  }
  void TearDown() override {
    DaemonTest::TearDown();
    RemoveInternet();
  }
  void MakeInternet() {
    RemoveInternet();
    const std::string ns = InternetNs();
    www_ = "/tmp/" + ns + "-www";
    std::vector<std::vector<std::string>> steps = {
        {"ip", "netns", "add", ns},
        {"ip", "link", "add", UplinkName(), "type", "veth", "peer", "name", "eth0", "netns", ns},
        {"ip", "-n", ns, "addr", "add", "198.51.100.1/24", "dev", "eth0"},
        {"ip", "-n", ns, "link", "set", "eth0", "up"},
        {"ip", "-n", ns, "link", "set", "lo", "up"},
        {"ip", "-n", ns, "route", "add", "203.0.113.0/28", "via", "198.51.100.2"},
        {"mkdir", "-p", www_},
        {"sh", "-c", "echo the-internet > " + www_ + "/index.html"},
        {"ip", "netns", "exec", ns, "busybox", "httpd", "-p", "80", "-h", www_}};
    for (auto& argv : steps) {
      auto r = RunProcess(argv);
      ASSERT_TRUE(r.ok() && r->exit_code == 0) << argv[0] << " " << argv[1] << " failed";
    }
  }
  void RemoveInternet() {
    RunProcess({"pkill", "-9", "-f", "httpd -p 80 -h /tmp/" + InternetNs() + "-www"});
    RunProcess({"ip", "netns", "del", InternetNs()});
    RunProcess({"ip", "link", "del", UplinkName()});
    RunProcess({"rm", "-rf", "/tmp/" + InternetNs() + "-www"});
  }
  // busybox wget of http://ip/ from the internet namespace ("" when it cannot be reached).
  static std::string FetchFromInternet(const std::string& ip) {
    auto r = RunProcess({"ip", "netns", "exec", InternetNs(), "timeout", "5", "busybox", "wget",
                         "-q", "-O", "-", "http://" + ip + "/"});
    return r.ok() && r->exit_code == 0 ? r->out : "";
  }
  static bool PingFromInternet(const std::string& ip) {
    auto r = RunProcess({"ip", "netns", "exec", InternetNs(), "busybox", "ping", "-c", "1", "-W",
                         "2", ip});
    return r.ok() && r->exit_code == 0;
  }
  std::string www_;

  std::string Path(const std::string& type, const std::string& name) const {
    return d().ResourcePath(kNetRg, "Stratus.Network", type, name);
  }
  void PutVnet(const std::string& name, const std::string& space,
               std::vector<std::pair<std::string, std::string>> subnets) {
    Json s = Json::array();
    for (auto& [n, p] : subnets) s.push_back({{"name", n}, {"properties", {{"addressPrefix", p}}}});
    auto r = d().Put(Path("virtualNetworks", name),
                     {{"location", d().region()},
                      {"properties", {{"addressSpace", {{"addressPrefixes", {space}}}}, {"subnets", s}}}});
    ASSERT_EQ(r.status, 201) << r.Describe();
  }
  // A NIC in `vnet`/`subnet`; returns its private address.
  std::string PutNic(const std::string& name, const std::string& vnet, const std::string& subnet) {
    auto r = d().Put(Path("networkInterfaces", name),
                     {{"location", d().region()},
                      {"properties",
                       {{"ipConfigurations",
                         {{{"name", "ipconfig1"},
                           {"properties",
                            {{"subnet", {{"id", Path("virtualNetworks", vnet) + "/subnets/" + subnet}}}}}}}}}}});
    EXPECT_EQ(r.status, 201) << r.Describe();
    return r.json["properties"]["ipConfigurations"][0]["properties"].value("privateIPAddress", "");
  }
  Json VmWithNic(const std::string& computer, const std::string& nic) const {
    Json body = TinyVm().ComputerName(computer).OsDisk(computer + "-os");
    body["properties"]["networkProfile"] = {
        {"networkInterfaces", {{{"id", Path("networkInterfaces", nic)}}}}};
    return body;
  }
  // An inbound TCP 80 rule for traffic from `source`.
  static Json RuleBody(const std::string& name, int priority, const std::string& access,
                       const std::string& source) {
    return {{"name", name},
            {"properties",
             {{"priority", priority}, {"direction", "Inbound"}, {"access", access},
              {"protocol", "Tcp"}, {"sourceAddressPrefix", source}, {"sourcePortRange", "*"},
              {"destinationAddressPrefix", "*"}, {"destinationPortRange", "80"}}}};
  }
  // udhcpc on `iface` of the guest of `domain` until a lease is obtained (20 tries): its output.
  static std::string DhcpLease(const std::string& domain, const std::string& iface) {
    std::string out;
    for (int i = 0; i < 20 && out.find("obtained") == std::string::npos; ++i) {
      // Bounded: a hot-plugged NIC's first 'ip link set up' once hung a loaded TCG guest past the
      // agent's 180 s; a try that hangs is cut and the next one goes.
      out = Guest(domain, "timeout 20 sh -c 'ip link set " + iface + " up 2>&1; udhcpc -i " +
                              iface + " -n -q -s /bin/true -t 3 -T 1 2>&1'; true");
      if (out.find("obtained") == std::string::npos) std::this_thread::sleep_for(Seconds(1));
    }
    return out;
  }
  // busybox wget of http://ip/ from inside `domain`: the page, or "" when it cannot be reached.
  static std::string Fetch(const std::string& domain, const std::string& ip) {
    GuestExec r = Daemon::AgentExecWhenReady(
        domain, "timeout 5 wget -q -O - http://" + ip + "/ 2>&1 || echo FETCH-FAILED", Seconds(60));
    if (r.ok && r.out.find("FETCH-FAILED") == std::string::npos) return r.out;
    std::fprintf(stderr, "[net] fetch of %s from %s: %s\n", ip.c_str(), domain.c_str(),
                 r.Describe().c_str());
    return "";
  }
};

TEST_F(NetworkTest, SubnetsRouteNamesResolveVnetsAreIsolatedAndNothingIsLeft) {
  Daemon& d = this->d();
  const std::string rid = RegionNetworkId(d.region(), d.data_dir());
  ASSERT_NO_FATAL_FAILURE(PutVnet("vnet1", "10.10.0.0/16",
                                  {{"front", "10.10.1.0/24"}, {"back", "10.10.2.0/24"},
                                   {"GatewaySubnet", "10.10.255.0/27"}}));
  ASSERT_NO_FATAL_FAILURE(PutVnet("vnet2", "10.20.0.0/16", {{"s", "10.20.1.0/24"}}));
  ASSERT_NO_FATAL_FAILURE(PutVnet("vnet3", "10.30.0.0/16", {{"s", "10.30.1.0/24"}}));
  RegionNetwork made = ListRegionNetwork(rid);
  EXPECT_EQ(made.namespaces.size(), 4u) << "three routers and the edge: " << made.Describe();
  EXPECT_EQ(made.dnsmasq.size(), 3u) << made.Describe();
  EXPECT_FALSE(HostHasAddressWithPrefix("10.10.")) << "the host got a VNET address";

  std::string web_ip = PutNic("web-nic", "vnet1", "front");
  std::string db_ip = PutNic("db-nic", "vnet1", "back");
  std::string iso_ip = PutNic("iso-nic", "vnet2", "s");
  std::string nva_ip = PutNic("nva-nic", "vnet1", "GatewaySubnet");
  Json nva_nic = d.Get(Path("networkInterfaces", "nva-nic")).json;
  nva_nic["properties"]["enableIPForwarding"] = true;
  ASSERT_EQ(d.Put(Path("networkInterfaces", "nva-nic"), nva_nic).status, 200);
  EXPECT_EQ(web_ip, "10.10.1.4");
  EXPECT_EQ(db_ip, "10.10.2.4");
  EXPECT_EQ(iso_ip, "10.20.1.4");

  TestVm web, db, iso, nva;
  ASSERT_NO_FATAL_FAILURE(CreateVm("web", VmWithNic("web1", "web-nic"), &web));
  ASSERT_NO_FATAL_FAILURE(CreateVm("db", VmWithNic("db1", "db-nic"), &db));
  ASSERT_NO_FATAL_FAILURE(CreateVm("iso", VmWithNic("iso1", "iso-nic"), &iso));
  ASSERT_NO_FATAL_FAILURE(CreateVm("nva", VmWithNic("nva1", "nva-nic"), &nva));
  for (auto* vm : {&web, &db, &iso, &nva})
    ASSERT_TRUE(d.WaitForConsole(vm->path, "STRATUS-GUEST-READY", Seconds(180))) << vm->path;

  // Across subnets through the VNET's router, both ways.
  EXPECT_NE(Fetch(web.domain, db_ip).find("db1"), std::string::npos);
  EXPECT_NE(Fetch(db.domain, web_ip).find("web1"), std::string::npos);
  // By name: the VM's name and <name>.<vnet>.internal, from the VNET's DNS.
  EXPECT_NE(Fetch(web.domain, "db1").find("db1"), std::string::npos);
  std::string ns = Guest(web.domain, "nslookup db1.vnet1.internal");
  EXPECT_NE(ns.find(db_ip), std::string::npos) << ns;
  // DHCP offers the NIC its address (asked, not applied: the config drive already set it).
  std::string lease = Guest(db.domain, "udhcpc -i eth0 -n -q -s /bin/true -t 3 -T 2 2>&1");
  EXPECT_NE(lease.find("lease of " + db_ip + " obtained"), std::string::npos) << lease;
  // Another VNET is unreachable until peered: iso's router knows no 10.10.0.0/16.
  EXPECT_EQ(Fetch(iso.domain, db_ip), "");
  EXPECT_NE(Fetch(iso.domain, iso_ip).find("iso1"), std::string::npos);
  auto peer = [&](const std::string& from, const std::string& to) {
    return d.Put(Path("virtualNetworks", from) + "/virtualNetworkPeerings/to-" + to,
                 {{"properties", {{"remoteVirtualNetwork", {{"id", Path("virtualNetworks", to)}}}}}});
  };
  auto first = peer("vnet1", "vnet2");
  ASSERT_EQ(first.status, 201) << first.Describe();
  EXPECT_EQ(first.json["properties"].value("peeringState", ""), "Initiated");
  EXPECT_EQ(Fetch(iso.domain, db_ip), "") << "one side is not a peering";
  auto second = peer("vnet2", "vnet1");
  ASSERT_EQ(second.status, 201) << second.Describe();
  EXPECT_EQ(second.json["properties"].value("peeringState", ""), "Connected");
  EXPECT_NE(Fetch(iso.domain, db_ip).find("db1"), std::string::npos) << "peered VNETs";
  EXPECT_NE(Fetch(web.domain, iso_ip).find("iso1"), std::string::npos);
  ASSERT_EQ(peer("vnet2", "vnet3").status, 201);
  ASSERT_EQ(peer("vnet3", "vnet2").status, 201);
  auto ping = [&](const TestVm& vm, const std::string& ip) {
    return Guest(vm.domain, "ping -c 1 -W 2 " + ip + " >/dev/null && echo PING-OK; true");
  };
  EXPECT_NE(ping(iso, "10.30.1.1").find("PING-OK"), std::string::npos) << "vnet2 reaches vnet3";
  EXPECT_EQ(ping(web, "10.30.1.1").find("PING-OK"), std::string::npos)
      << "vnet1 reached vnet3 through vnet2: peering must not be transitive";
  auto in_use = d.Delete(Path("virtualNetworks", "vnet3"));
  EXPECT_EQ(in_use.status, 409) << in_use.Describe();

  // A route table on front: back's subnet through the appliance on the GatewaySubnet.
  Guest(nva.domain, "echo 1 > /proc/sys/net/ipv4/ip_forward");
  auto forwarded = [&] {
    std::string n = Guest(nva.domain,
                          "awk '/^Ip:/{n++; if(n==1){for(i=1;i<=NF;i++) if($i==\"ForwDatagrams\") c=i}"
                          " else print $c}' /proc/net/snmp");
    return std::strtoull(n.c_str(), nullptr, 10);
  };
  Json route = {{"name", "back-via-nva"},
                {"properties",
                 {{"addressPrefix", "10.10.2.0/24"}, {"nextHopType", "VirtualAppliance"},
                  {"nextHopIpAddress", nva_ip}}}};
  auto rt = d.Put(Path("routeTables", "front-rt"),
                  {{"location", d.region()}, {"properties", {{"routes", {route}}}}});
  ASSERT_EQ(rt.status, 201) << rt.Describe();
  auto front_with = [&](bool with_table) {
    Json props = {{"addressPrefix", "10.10.1.0/24"}};
    if (with_table) props["routeTable"] = {{"id", Path("routeTables", "front-rt")}};
    return d.Put(Path("virtualNetworks", "vnet1") + "/subnets/front", {{"properties", props}});
  };
  uint64_t fwd = forwarded();
  EXPECT_NE(Fetch(web.domain, db_ip).find("db1"), std::string::npos);
  EXPECT_EQ(forwarded(), fwd) << "no route table yet: nothing goes through nva";
  ASSERT_EQ(front_with(true).status, 200);
  auto routes = d.Post(Path("networkInterfaces", "web-nic") + "/effectiveRouteTable");
  ASSERT_EQ(routes.status, 200) << routes.Describe();
  EXPECT_EQ(routes.json["value"][0].value("nextHopType", ""), "VirtualAppliance");
  fwd = forwarded();
  EXPECT_NE(Fetch(web.domain, db_ip).find("db1"), std::string::npos) << "through the appliance";
  EXPECT_GT(forwarded(), fwd) << "web's packets to db did not pass through nva";

  // The dynamic address survives deallocate and start (Azure's does not).
  ASSERT_SUCCEEDED(ActAndWait("POST", web.path + "/deallocate"));
  ASSERT_SUCCEEDED(ActAndWait("POST", web.path + "/start"));
  auto nic = d.Get(Path("networkInterfaces", "web-nic"));
  EXPECT_EQ(nic.json["properties"]["ipConfigurations"][0]["properties"].value("privateIPAddress", ""),
            web_ip);
  ASSERT_TRUE(d.WaitForConsole(web.path, "STRATUS-GUEST-READY", Seconds(180), 2));
  EXPECT_NE(Fetch(db.domain, web_ip).find("web1"), std::string::npos);

  // Public IPs: web's (Static) is reached from the internet and is how web's requests leave;
  // db, without one, leaves through the edge's SNAT. The root namespace never holds them.
  auto pip = d.Put(Path("publicIPAddresses", "web-ip"),
                   {{"location", d.region()}, {"sku", {{"name", "Standard"}}},
                    {"properties", {{"publicIPAllocationMethod", "Static"}}}});
  ASSERT_EQ(pip.status, 201) << pip.Describe();
  const std::string web_public = pip.json["properties"].value("ipAddress", "");
  EXPECT_EQ(web_public, "203.0.113.1");
  EXPECT_EQ(FetchFromInternet(web_public), "") << "no NIC holds it yet";
  Json web_nic = d.Get(Path("networkInterfaces", "web-nic")).json;
  web_nic["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"] = {
      {"id", Path("publicIPAddresses", "web-ip")}};
  auto with_pip = d.Put(Path("networkInterfaces", "web-nic"), web_nic);
  ASSERT_EQ(with_pip.status, 200) << with_pip.Describe();
  EXPECT_NE(FetchFromInternet(web_public).find("web1"), std::string::npos)
      << "the internet does not reach web's public IP";
  EXPECT_TRUE(PingFromInternet(web_public)) << "ICMP through the 1:1 NAT";
  EXPECT_EQ(FetchFromInternet(web_ip), "") << "a private address reached from outside";
  EXPECT_NE(Fetch(db.domain, "198.51.100.1").find("the-internet"), std::string::npos)
      << "db (no public IP) does not get out through SNAT";
  EXPECT_NE(Fetch(web.domain, "198.51.100.1").find("the-internet"), std::string::npos);
  EXPECT_FALSE(HostHasAddressWithPrefix("203.0.113.")) << "the host got a public-pool address";
  EXPECT_FALSE(HostHasAddressWithPrefix("198.51.100.")) << "the host holds the uplink's address";
  auto busy = d.Delete(Path("publicIPAddresses", "web-ip"));
  EXPECT_EQ(busy.status, 409) << busy.Describe();

  // kill -9 of stratusd: the datapath stays; the restart changes nothing (same dnsmasq).
  RegionNetwork before = ListRegionNetwork(rid);
  ASSERT_TRUE(d.Kill9());
  EXPECT_NE(Fetch(web.domain, db_ip).find("db1"), std::string::npos) << "traffic cut by the kill";
  ASSERT_TRUE(d.Start());
  RegionNetwork after = ListRegionNetwork(rid);
  EXPECT_EQ(before.dnsmasq, after.dnsmasq);
  EXPECT_EQ(before.namespaces, after.namespaces);
  EXPECT_NE(Fetch(web.domain, db_ip).find("db1"), std::string::npos);
  EXPECT_NE(Fetch(iso.domain, db_ip).find("db1"), std::string::npos) << "peering after restart";
  EXPECT_NE(FetchFromInternet(web_public).find("web1"), std::string::npos)
      << "the public IP after restart";
  fwd = forwarded();
  EXPECT_NE(Fetch(web.domain, db_ip).find("db1"), std::string::npos);
  EXPECT_GT(forwarded(), fwd) << "the route table after restart";
  // The route table goes from the subnet: straight through the router again.
  ASSERT_EQ(front_with(false).status, 200);
  EXPECT_EQ(d.Delete(Path("routeTables", "front-rt")).status, 200);
  fwd = forwarded();
  EXPECT_NE(Fetch(web.domain, db_ip).find("db1"), std::string::npos);
  EXPECT_EQ(forwarded(), fwd);

  // A second NIC plugged into the running web (subnet back): the guest gets an interface whose
  // DHCP lease is the NIC's address; unplugged again, the interface goes.
  std::string web2_ip = PutNic("web-nic2", "vnet1", "back");
  Json web_vm = d.Get(web.path).json;
  web_vm["properties"]["networkProfile"]["networkInterfaces"].push_back(
      {{"id", Path("networkInterfaces", "web-nic2")}, {"properties", {{"primary", false}}}});
  auto plug = d.Put(web.path, web_vm);
  ASSERT_LT(plug.status, 300) << plug.Describe();
  ASSERT_SUCCEEDED(d.WaitFor(plug));
  std::string lease2 = DhcpLease(web.domain, "eth1");
  EXPECT_NE(lease2.find("lease of " + web2_ip + " obtained"), std::string::npos) << lease2;
  web_vm = d.Get(web.path).json;
  auto& nics = web_vm["properties"]["networkProfile"]["networkInterfaces"];
  for (size_t i = 0; i < nics.size(); ++i)
    if (nics[i].value("id", "").find("web-nic2") != std::string::npos) nics.erase(i);
  auto unplug = d.Put(web.path, web_vm);
  ASSERT_LT(unplug.status, 300) << unplug.Describe();
  ASSERT_SUCCEEDED(d.WaitFor(unplug));
  EXPECT_EQ(Guest(web.domain, "ls /sys/class/net").find("eth1"), std::string::npos)
      << "the guest still has the unplugged interface";
  EXPECT_EQ(d.Delete(Path("networkInterfaces", "web-nic2")).status, 200);
  EXPECT_NE(Fetch(web.domain, db_ip).find("db1"), std::string::npos) << "the primary NIC works on";

  // Security groups: on db's NIC, a Deny of web's HTTP cuts it; an Allow before it opens it.
  auto nsg = d.Put(Path("networkSecurityGroups", "db-nsg"),
                   {{"location", d.region()},
                    {"properties", {{"securityRules", {RuleBody("no-web", 200, "Deny", web_ip)}}}}});
  ASSERT_EQ(nsg.status, 201) << nsg.Describe();
  Json db_nic = d.Get(Path("networkInterfaces", "db-nic")).json;
  db_nic["properties"]["networkSecurityGroup"] = {{"id", Path("networkSecurityGroups", "db-nsg")}};
  ASSERT_EQ(d.Put(Path("networkInterfaces", "db-nic"), db_nic).status, 200);
  EXPECT_EQ(Fetch(web.domain, db_ip), "") << "the Deny did not hold";
  EXPECT_NE(Fetch(db.domain, web_ip).find("web1"), std::string::npos) << "db's outbound is open";
  auto allow = d.Put(Path("networkSecurityGroups", "db-nsg") + "/securityRules/web-ok",
                     RuleBody("web-ok", 100, "Allow", web_ip));
  ASSERT_EQ(allow.status, 201) << allow.Describe();
  EXPECT_NE(Fetch(web.domain, db_ip).find("db1"), std::string::npos) << "the Allow did not open";
  auto eff = d.Post(Path("networkInterfaces", "db-nic") + "/effectiveNetworkSecurityGroups");
  ASSERT_EQ(eff.status, 200) << eff.Describe();
  EXPECT_EQ(eff.json["value"][0]["effectiveSecurityRules"][0].value("name", ""), "securityRules/web-ok");
  EXPECT_GT(eff.json["value"][0]["effectiveSecurityRules"][0].value("packets", 0), 0)
      << "the Allow's counter: " << eff.Describe();
  // Each rule counts what it matched: the Deny web's refused SYNs, the Allow the fetch.
  auto counters = d.Post(Path("networkSecurityGroups", "db-nsg") + "/ruleCounters");
  ASSERT_EQ(counters.status, 200) << counters.Describe();
  std::map<std::string, uint64_t> hits;
  for (auto& r : counters.json["value"]) hits[r.value("name", "")] = r.value("packets", uint64_t{0});
  EXPECT_GT(hits["securityRules/no-web"], 0u) << counters.Describe();
  EXPECT_GT(hits["securityRules/web-ok"], 0u) << counters.Describe();
  // On web's subnet, outbound: web's requests stop at its own subnet's NSG.
  Json out_rule = RuleBody("no-http-out", 100, "Deny", "*");
  out_rule["properties"]["direction"] = "Outbound";
  ASSERT_EQ(d.Put(Path("networkSecurityGroups", "front-nsg"),
                  {{"location", d.region()}, {"properties", {{"securityRules", {out_rule}}}}})
                .status,
            201);
  Json vnet1 = d.Get(Path("virtualNetworks", "vnet1")).json;
  for (auto& s : vnet1["properties"]["subnets"])
    if (s.value("name", "") == "front")
      s["properties"]["networkSecurityGroup"] = {{"id", Path("networkSecurityGroups", "front-nsg")}};
  ASSERT_EQ(d.Put(Path("virtualNetworks", "vnet1"), vnet1).status, 200);
  EXPECT_EQ(Fetch(web.domain, db_ip), "") << "the subnet's outbound Deny did not hold";
  EXPECT_NE(Fetch(db.domain, web_ip).find("web1"), std::string::npos)
      << "inbound to web is still open (and its replies pass)";

  // Deleting everything leaves nothing of the region on the host.
  for (auto* vm : {&web, &db, &iso, &nva}) {
    auto del = d.Delete(vm->path);
    ASSERT_EQ(del.status, 202) << del.Describe();
    EXPECT_SUCCEEDED(d.WaitFor(del));
  }
  for (const char* n : {"web-nic", "db-nic", "iso-nic", "nva-nic"})
    EXPECT_EQ(d.Delete(Path("networkInterfaces", n)).status, 200) << n;
  for (const char* p : {"vnet1/virtualNetworkPeerings/to-vnet2", "vnet2/virtualNetworkPeerings/to-vnet1",
                        "vnet2/virtualNetworkPeerings/to-vnet3", "vnet3/virtualNetworkPeerings/to-vnet2"})
    EXPECT_EQ(d.Delete(Path("virtualNetworks", p)).status, 200) << p;
  for (const char* v : {"vnet1", "vnet2", "vnet3"})
    EXPECT_EQ(d.Delete(Path("virtualNetworks", v)).status, 200) << v;
  for (const char* n : {"db-nsg", "front-nsg"})
    EXPECT_EQ(d.Delete(Path("networkSecurityGroups", n)).status, 200) << n;
  EXPECT_EQ(d.Delete(Path("publicIPAddresses", "web-ip")).status, 200);
  // What is left is the region's edge (its uplink), which lives as long as the region does.
  RegionNetwork left = ListRegionNetwork(rid);
  EXPECT_EQ(left.namespaces, std::vector<std::string>{"ste-" + rid}) << left.Describe();
  EXPECT_TRUE(left.links.empty() && left.dnsmasq.empty() && left.nft_tables.empty())
      << left.Describe();
}

// Backup and restore know networks: web (two NICs: front with a static address and a reserved
// public IP, back with a dynamic one) is backed up, deleted with its NICs, and restored as a new
// VM from the point alone: the new VM's NICs have the recorded addresses, the public IP comes
// back to it (the internet reaches the restored guest by it) and the second NIC's DHCP lease is
// the recorded address. Deleting the restored VM takes its NICs; nothing is left.
TEST_F(NetworkTest, AVmWithTwoNicsAndAReservedPublicIpBacksUpAndRestores) {
  Daemon& d = this->d();
  const std::string rid = RegionNetworkId(d.region(), d.data_dir());
  ASSERT_NO_FATAL_FAILURE(
      PutVnet("vnet1", "10.10.0.0/16", {{"front", "10.10.1.0/24"}, {"back", "10.10.2.0/24"}}));
  auto pip = d.Put(Path("publicIPAddresses", "web-ip"),
                   {{"location", d.region()}, {"sku", {{"name", "Standard"}}}});
  ASSERT_EQ(pip.status, 201) << pip.Describe();
  const std::string web_public = pip.json["properties"].value("ipAddress", "");
  auto front = d.Put(
      Path("networkInterfaces", "web-nic"),
      {{"location", d.region()},
       {"properties",
        {{"ipConfigurations",
          {{{"name", "ipconfig1"},
            {"properties",
             {{"subnet", {{"id", Path("virtualNetworks", "vnet1") + "/subnets/front"}}},
              {"privateIPAllocationMethod", "Static"},
              {"privateIPAddress", "10.10.1.10"},
              {"publicIPAddress", {{"id", Path("publicIPAddresses", "web-ip")}}}}}}}}}}});
  ASSERT_EQ(front.status, 201) << front.Describe();
  // web-nic2's Dynamic address is not the lowest free one (pad held that): the restore must
  // give back the recorded one, not the next free.
  PutNic("pad", "vnet1", "back");
  const std::string back_ip = PutNic("web-nic2", "vnet1", "back");
  EXPECT_EQ(d.Delete(Path("networkInterfaces", "pad")).status, 200);
  Json body = VmWithNic("web1", "web-nic");
  body["properties"]["networkProfile"]["networkInterfaces"] = {
      {{"id", Path("networkInterfaces", "web-nic")}, {"properties", {{"primary", true}}}},
      {{"id", Path("networkInterfaces", "web-nic2")}, {"properties", {{"primary", false}}}}};
  TestVm web;
  ASSERT_NO_FATAL_FAILURE(CreateVm("web", body, &web));
  ASSERT_TRUE(d.WaitForConsole(web.path, "STRATUS-GUEST-READY", Seconds(180)));
  EXPECT_NE(FetchFromInternet(web_public).find("web1"), std::string::npos);

  // Backed up while it runs; the point records both NICs.
  ASSERT_EQ(d.Put(VaultPath("v1"), {{"location", d.region()}}).status, 201);
  auto pol = d.Put(VaultPath("v1") + "/backupPolicies/daily", DailyPolicyBody(7, "CrashConsistent"));
  ASSERT_EQ(pol.status, 201) << pol.Describe();
  const std::string item = VaultPath("v1") + "/protectedItems/web";
  ASSERT_EQ(d.Put(item, ProtectedItemBody(web.id, pol.json.value("id", ""))).status, 201);
  Json job = FinishJob(d.Post(item + "/backup"));
  ASSERT_EQ(job["properties"].value("status", ""), "Completed") << job.dump();
  const std::string point = job["properties"].value("recoveryPointId", "");
  Json recorded = d.Get(point).json["properties"]["networkInterfaces"];
  ASSERT_EQ(recorded.size(), 2u) << recorded.dump();
  EXPECT_EQ(recorded[0]["ipConfigurations"][0]["publicIPAddress"].value("ipAddress", ""), web_public);

  // The VM and its NICs go; the reserved public IP stays, unreached.
  auto del = d.Delete(web.path);
  ASSERT_EQ(del.status, 202) << del.Describe();
  ASSERT_SUCCEEDED(d.WaitFor(del));
  EXPECT_EQ(d.Delete(Path("networkInterfaces", "web-nic")).status, 200);
  EXPECT_EQ(d.Delete(Path("networkInterfaces", "web-nic2")).status, 200);
  EXPECT_EQ(FetchFromInternet(web_public), "");

  // A restore cut by kill -9 just after it made its first NIC: the restart fails the job and
  // removes the NIC (it carries the job in systemData.createdBy), so the address and the
  // reserved public IP are free again for the next restore.
  {
    ASSERT_TRUE(d.Stop());
    ::setenv("STRATUS_CRASH_AT", "restore.nic-made", 1);
    auto started = d.Start();
    ::unsetenv("STRATUS_CRASH_AT");
    ASSERT_TRUE(started);
    d.Post(point + "/restore", {{"restoreType", "AlternateLocation"}, {"vmName", "webr"}});
    bool died = false;
    for (int i = 0; i < 300 && !died; ++i) {
      died = d.Get(d.SubPath()).status == 0;
      if (!died) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(died) << "the daemon did not reach restore.nic-made: " << d.LogTail(20);
    ASSERT_TRUE(d.Kill9());
    EXPECT_NE(d.LogTail(20).find("crash point reached"), std::string::npos) << d.LogTail(20);
    ASSERT_TRUE(d.Start());
    Json cut;
    for (int i = 0; i < 100; ++i) {
      for (auto& j : d.Get(VaultPath("v1") + "/backupJobs").json.value("value", Json::array()))
        if (j["properties"].value("operation", "") == "Restore") cut = j;
      if (cut.is_object() && cut["properties"].value("status", "") == "Failed") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(cut.is_object()) << "no restore job";
    EXPECT_EQ(cut["properties"].value("status", ""), "Failed") << cut.dump();
    EXPECT_EQ(d.Get(Path("networkInterfaces", "webr-nic0")).status, 404)
        << "the NIC the cut restore made is left";
    EXPECT_TRUE(d.Get(Path("publicIPAddresses", "web-ip"))
                    .json["properties"]
                    .value("ipConfiguration", Json::object())
                    .empty());
  }

  // Restored as a new VM from the point alone.
  Json restore = FinishJob(d.Post(point + "/restore",
                                  {{"restoreType", "AlternateLocation"}, {"vmName", "webr"}}),
                           Seconds(600));
  ASSERT_EQ(restore["properties"].value("status", ""), "Completed") << restore.dump();
  const Json& result = restore["properties"]["result"];
  EXPECT_FALSE(result.contains("notes")) << result.dump();
  ASSERT_EQ(result["networkInterfaces"].size(), 2u) << result.dump();
  EXPECT_EQ(result["networkInterfaces"][0]["ipConfigurations"][0].value("privateIPAddress", ""),
            "10.10.1.10");
  EXPECT_EQ(result["networkInterfaces"][0]["ipConfigurations"][0].value("publicIPAddress", ""),
            web_public);
  EXPECT_EQ(result["networkInterfaces"][1]["ipConfigurations"][0].value("privateIPAddress", ""),
            back_ip);
  TestVm webr;
  ASSERT_NO_FATAL_FAILURE(GetVm("webr", &webr));
  ASSERT_TRUE(d.WaitForConsole(webr.path, "STRATUS-GUEST-READY", Seconds(180)));
  std::string page;
  for (int i = 0; i < 20 && page.find("webr") == std::string::npos; ++i) {
    page = FetchFromInternet(web_public);
    if (page.find("webr") == std::string::npos) std::this_thread::sleep_for(Seconds(1));
  }
  EXPECT_NE(page.find("webr"), std::string::npos) << "the internet does not reach the restored VM";
  std::string lease = DhcpLease(webr.domain, "eth1");
  EXPECT_NE(lease.find("lease of " + back_ip + " obtained"), std::string::npos) << lease;

  // The restored VM's NICs go with it; then nothing of the region is left but its edge.
  auto del2 = d.Delete(webr.path);
  ASSERT_EQ(del2.status, 202) << del2.Describe();
  ASSERT_SUCCEEDED(d.WaitFor(del2));
  EXPECT_EQ(d.Get(Path("networkInterfaces", "webr-nic0")).status, 404);
  EXPECT_EQ(d.Get(Path("networkInterfaces", "webr-nic1")).status, 404);
  EXPECT_EQ(d.Delete(Path("publicIPAddresses", "web-ip")).status, 200);
  EXPECT_EQ(d.Delete(Path("virtualNetworks", "vnet1")).status, 200);
  RegionNetwork left = ListRegionNetwork(rid);
  EXPECT_EQ(left.namespaces, std::vector<std::string>{"ste-" + rid}) << left.Describe();
  EXPECT_TRUE(left.links.empty() && left.dnsmasq.empty() && left.nft_tables.empty())
      << left.Describe();
}

// kill -9 of stratusd inside a NIC create and inside an NSG update (STRATUS_CRASH_AT: the record
// is written, the host not yet changed): after the restart the datapath matches the state — the
// NIC cut in its create is served by DHCP when plugged into db, the Deny cut in its update
// holds — and web's pings to db never stopped.
TEST_F(NetworkTest, AKill9InsideANicCreateOrAnNsgUpdateCutsNoTrafficAndConverges) {
  Daemon& d = this->d();
  const std::string rid = RegionNetworkId(d.region(), d.data_dir());
  ASSERT_NO_FATAL_FAILURE(
      PutVnet("vnet1", "10.10.0.0/16", {{"front", "10.10.1.0/24"}, {"back", "10.10.2.0/24"}}));
  const std::string web_ip = PutNic("web-nic", "vnet1", "front");
  const std::string db_ip = PutNic("db-nic", "vnet1", "back");
  auto nsg = d.Put(Path("networkSecurityGroups", "db-nsg"), {{"location", d.region()}});
  ASSERT_EQ(nsg.status, 201) << nsg.Describe();
  Json db_nic = d.Get(Path("networkInterfaces", "db-nic")).json;
  db_nic["properties"]["networkSecurityGroup"] = {{"id", Path("networkSecurityGroups", "db-nsg")}};
  ASSERT_EQ(d.Put(Path("networkInterfaces", "db-nic"), db_nic).status, 200);
  TestVm web, db;
  ASSERT_NO_FATAL_FAILURE(CreateVm("web", VmWithNic("web1", "web-nic"), &web));
  ASSERT_NO_FATAL_FAILURE(CreateVm("db", VmWithNic("db1", "db-nic"), &db));
  for (auto* vm : {&web, &db})
    ASSERT_TRUE(d.WaitForConsole(vm->path, "STRATUS-GUEST-READY", Seconds(180))) << vm->path;
  ASSERT_NE(Fetch(web.domain, db_ip).find("db1"), std::string::npos);

  // web pings db every 0.3 s for the rest of the test (one line per ping: ok or LOST).
  Guest(web.domain, "(for i in $(seq 1 400); do if ping -c 1 -W 1 " + db_ip +
                        " >/dev/null 2>&1; then echo ok; else echo LOST; fi; sleep 0.3; done)"
                        " > /tmp/probe.log 2>&1 < /dev/null &");
  // A daemon that dies at `point` on the next change; `change` makes it, and gets no answer.
  auto cut_inside = [&](const char* point, const std::function<void()>& change) {
    ASSERT_TRUE(d.Stop());
    ::setenv("STRATUS_CRASH_AT", point, 1);
    auto started = d.Start();
    ::unsetenv("STRATUS_CRASH_AT");
    ASSERT_TRUE(started);
    change();
    ASSERT_TRUE(d.Kill9());  // reaps the daemon that killed itself
    EXPECT_NE(d.LogTail(20).find("crash point reached"), std::string::npos) << d.LogTail(20);
    ASSERT_TRUE(d.Start());
  };

  auto probes = [&] { return std::atoi(Guest(web.domain, "wc -l < /tmp/probe.log").c_str()); };
  std::this_thread::sleep_for(Seconds(1));
  const int probes_before = probes();

  // 1. A NIC create cut after its record was written.
  ASSERT_NO_FATAL_FAILURE(cut_inside("network.nic-written", [&] {
    auto r = d.Put(Path("networkInterfaces", "db-nic2"),
                   {{"location", d.region()},
                    {"properties",
                     {{"ipConfigurations",
                       {{{"name", "ipconfig1"},
                         {"properties",
                          {{"subnet",
                            {{"id", Path("virtualNetworks", "vnet1") + "/subnets/back"}}}}}}}}}}});
    EXPECT_EQ(r.status, 0) << "the daemon answered instead of dying: " << r.Describe();
  }));
  auto nic2 = d.Get(Path("networkInterfaces", "db-nic2"));
  ASSERT_EQ(nic2.status, 200) << "the written record was lost";
  const std::string nic2_ip =
      nic2.json["properties"]["ipConfigurations"][0]["properties"].value("privateIPAddress", "");
  Json db_vm = d.Get(db.path).json;
  db_vm["properties"]["networkProfile"]["networkInterfaces"].push_back(
      {{"id", Path("networkInterfaces", "db-nic2")}, {"properties", {{"primary", false}}}});
  auto plug = d.Put(db.path, db_vm);
  ASSERT_LT(plug.status, 300) << plug.Describe();
  ASSERT_SUCCEEDED(d.WaitFor(plug));
  std::string lease = DhcpLease(db.domain, "eth1");
  EXPECT_NE(lease.find("lease of " + nic2_ip + " obtained"), std::string::npos)
      << "DHCP does not serve the NIC whose create was cut: " << lease;

  // 2. An NSG update cut after its rules were written: the Deny holds after the restart.
  ASSERT_NO_FATAL_FAILURE(cut_inside("network.nsg-written", [&] {
    auto r = d.Put(Path("networkSecurityGroups", "db-nsg"),
                   {{"location", d.region()},
                    {"properties", {{"securityRules", {RuleBody("no-web", 200, "Deny", web_ip)}}}}});
    EXPECT_EQ(r.status, 0) << "the daemon answered instead of dying: " << r.Describe();
  }));
  EXPECT_EQ(d.Get(Path("networkSecurityGroups", "db-nsg"))
                .json["properties"]["securityRules"]
                .size(),
            1u);
  const int probes_after = probes();
  EXPECT_EQ(Fetch(web.domain, db_ip), "") << "the Deny written before the kill does not hold";

  // web's pings to db all came back, across both kills and restarts.
  std::string probe = Guest(web.domain, "cat /tmp/probe.log");
  size_t ok = 0, lost = 0;
  for (size_t at = 0; (at = probe.find("ok", at)) != std::string::npos; at += 2) ++ok;
  for (size_t at = 0; (at = probe.find("LOST", at)) != std::string::npos; at += 4) ++lost;
  EXPECT_GT(probes_before, 0) << probe;
  EXPECT_GT(probes_after, probes_before + 2) << "no pings while stratusd was cut: " << probe;
  EXPECT_GE(ok, static_cast<size_t>(probes_after)) << probe;
  EXPECT_EQ(lost, 0u) << "web lost db while stratusd was killed and restarted";

  // Everything deleted: nothing of the region left but its edge.
  for (auto* vm : {&web, &db}) {
    auto del = d.Delete(vm->path);
    ASSERT_EQ(del.status, 202) << del.Describe();
    EXPECT_SUCCEEDED(d.WaitFor(del));
  }
  for (const char* n : {"web-nic", "db-nic", "db-nic2"})
    EXPECT_EQ(d.Delete(Path("networkInterfaces", n)).status, 200) << n;
  EXPECT_EQ(d.Delete(Path("networkSecurityGroups", "db-nsg")).status, 200);
  EXPECT_EQ(d.Delete(Path("virtualNetworks", "vnet1")).status, 200);
  RegionNetwork left = ListRegionNetwork(rid);
  EXPECT_EQ(left.namespaces, std::vector<std::string>{"ste-" + rid}) << left.Describe();
  EXPECT_TRUE(left.links.empty() && left.dnsmasq.empty() && left.nft_tables.empty())
      << left.Describe();
}

}  // namespace
}  // namespace stratus::e2e
