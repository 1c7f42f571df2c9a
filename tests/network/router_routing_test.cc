#include "network/router_routing.h"

#include "network/route_tables.h"

#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace stratus::network {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

Ipv4Prefix P(const char* s) { return *ParseIpv4Prefix(s, ""); }

VnetDatapath Hub() {
  VnetDatapath v;
  v.netns = "stv-abcd-0001";
  v.transit = *ParseIpv4("169.254.0.1", "");
  SubnetDatapath s;
  s.veth_in_router = "gw000011";
  s.prefix = P("10.1.1.0/24");
  v.subnets.push_back(s);
  PeeringDatapath p;
  p.name = "to-spoke";
  p.veth = "pr0002";
  p.remote_netns = "stv-abcd-0002";
  p.remote_veth = "pr0001";
  p.remote_transit = *ParseIpv4("169.254.0.2", "");
  p.remote_spaces = {P("10.2.0.0/16"), P("10.3.0.0/24")};
  v.peerings.push_back(p);
  return v;
}

TEST(RouterRoutingTest, PeerSpacesAreRoutedAndWhatEntersReachesOnlyTheSubnets) {
  RouterRouting r = DesiredRouting(Hub(), {"pr0002"});
  EXPECT_THAT(r.routes,
              UnorderedElementsAre(
                  RouterRoute{"main", "unicast", "10.2.0.0/16", "169.254.0.2", "pr0002"},
                  RouterRoute{"main", "unicast", "10.3.0.0/24", "169.254.0.2", "pr0002"},
                  RouterRoute{"100", "unicast", "10.1.1.0/24", "", "gw000011"},
                  RouterRoute{"100", "blackhole", "default", "", ""}));
  // Sources in the peer's spaces go to the subnets only (table 100); others are dropped.
  EXPECT_THAT(r.rules, ElementsAre(RouterRule{1000, "pr0002", "10.2.0.0/16", "lookup 100"},
                                   RouterRule{1000, "pr0002", "10.3.0.0/24", "lookup 100"},
                                   RouterRule{1001, "pr0002", "", "blackhole"}));
}

TEST(RouterRoutingTest, ForwardedTrafficAndAccessChangeTheRules) {
  VnetDatapath v = Hub();
  v.peerings[0].allow_forwarded = true;
  EXPECT_THAT(DesiredRouting(v, {"pr0002"}).rules,
              ElementsAre(RouterRule{1000, "pr0002", "", "lookup 100"}));
  v.peerings[0].allow_access = false;
  EXPECT_THAT(DesiredRouting(v, {"pr0002"}).rules,
              ElementsAre(RouterRule{1001, "pr0002", "", "blackhole"}));
}

TEST(RouterRoutingTest, APeeringWhoseLinkIsNotThereYetAndNoPeeringNeedNothing) {
  EXPECT_THAT(DesiredRouting(Hub(), {}).routes, IsEmpty());
  EXPECT_THAT(DesiredRouting(Hub(), {}).rules, IsEmpty());
}

TEST(RouterRoutingTest, ParsesWhatIpPrintsAndLeavesOtherRulesAlone) {
  // What `ip -json route show table all proto static` and `ip -json rule show` print.
  Json routes = Json::parse(R"([
    {"type":"blackhole","dst":"default","table":"100","flags":[]},
    {"dst":"10.1.1.0/24","dev":"gw000011","table":"100","scope":"link","flags":[]},
    {"dst":"10.2.0.0/16","gateway":"169.254.0.2","dev":"pr0002","flags":["onlink"]},
    {"dst":"10.9.9.9","gateway":"169.254.0.2","dev":"pr0002","flags":["onlink"]}])");
  Json rules = Json::parse(R"([
    {"priority":0,"src":"all","table":"local"},
    {"priority":1000,"src":"10.2.0.0","srclen":16,"iif":"pr0002","table":"100"},
    {"priority":1001,"src":"all","iif":"pr0002","action":"blackhole"},
    {"priority":32766,"src":"all","table":"main"}])");
  auto r = ParseRouting(routes, rules);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r->routes,
              ElementsAre(RouterRoute{"100", "blackhole", "default", "", ""},
                          RouterRoute{"100", "unicast", "10.1.1.0/24", "", "gw000011"},
                          RouterRoute{"main", "unicast", "10.2.0.0/16", "169.254.0.2", "pr0002"},
                          RouterRoute{"main", "unicast", "10.9.9.9/32", "169.254.0.2", "pr0002"}));
  EXPECT_THAT(r->rules, ElementsAre(RouterRule{1000, "pr0002", "10.2.0.0/16", "lookup 100"},
                                    RouterRule{1001, "pr0002", "", "blackhole"}));
  EXPECT_FALSE(ParseRouting(Json::object(), rules).ok());
}

TEST(RouterRoutingTest, ChangesAreTheDifferenceOnly) {
  RouterRouting want = DesiredRouting(Hub(), {"pr0002"});
  EXPECT_THAT(RoutingChanges(want, want), IsEmpty());
  std::vector<std::string> from_nothing = RoutingChanges({}, want);
  ASSERT_EQ(from_nothing.size(), 7u);
  // Routes before the rules that lead to them.
  EXPECT_EQ(from_nothing[0].rfind("route add", 0), 0u);
  EXPECT_EQ(from_nothing.back().rfind("rule add", 0), 0u);
  EXPECT_THAT(from_nothing,
              ::testing::Contains("route add 10.2.0.0/16 via 169.254.0.2 dev pr0002 onlink "
                                  "table main proto static"));
  EXPECT_THAT(from_nothing, ::testing::Contains("route add blackhole default table 100 proto static"));
  EXPECT_THAT(from_nothing,
              ::testing::Contains("rule add pref 1000 iif pr0002 from 10.2.0.0/16 lookup 100"));
  // The peer drops a space: one route and one rule go, nothing else changes.
  VnetDatapath v = Hub();
  v.peerings[0].remote_spaces.pop_back();
  EXPECT_THAT(RoutingChanges(want, DesiredRouting(v, {"pr0002"})),
              ElementsAre("rule del pref 1000 iif pr0002 from 10.3.0.0/24 lookup 100",
                          "route del 10.3.0.0/24 via 169.254.0.2 dev pr0002 table main proto static"));
  // The peering goes: everything goes.
  EXPECT_EQ(RoutingChanges(want, {}).size(), 7u);
}

TEST(RouterRoutingTest, ASubnetWithARouteTableGetsItsOwnTableThatMatchesAzuresLongestMatch) {
  VnetDatapath v = Hub();
  SubnetDatapath back;
  back.veth_in_router = "gw000012";
  back.prefix = P("10.1.2.0/24");
  SubnetDatapath gateway;
  gateway.veth_in_router = "gw000013";
  gateway.prefix = P("10.1.255.0/27");
  v.subnets.push_back(back);
  v.subnets.push_back(gateway);
  SubnetDatapath& front = v.subnets[0];
  front.route_table = SubnetRouteTable(0x11);
  auto route = [](const char* prefix, NextHop hop, const char* ip = "0.0.0.0") {
    return Route{"r", P(prefix), hop, *ParseIpv4(ip, "")};
  };
  std::vector<Route> user = {route("10.1.2.0/23", NextHop::kVirtualAppliance, "10.1.255.4"),
                             route("192.168.7.0/24", NextHop::kVnetLocal)};
  front.routes = EffectiveRoutes(
      SystemRoutes({P("10.1.0.0/16")}, {P("10.2.0.0/16"), P("10.3.0.0/24")}), user);
  RouterRouting r = DesiredRouting(v, {"pr0002"});
  const std::string t = std::to_string(0x01000011);
  std::vector<RouterRoute> table;
  for (auto& x : r.routes)
    if (x.table == t) table.push_back(x);
  EXPECT_THAT(
      table,
      UnorderedElementsAre(
          // The appliance route for 10.1.2.0/23 covers the back subnet: Azure's longest match
          // prefers it to the VNET's /16, so the kernel gets no back-subnet route to prefer.
          RouterRoute{t, "unicast", "10.1.2.0/23", "10.1.255.4", "gw000013"},
          RouterRoute{t, "unicast", "10.1.1.0/24", "", "gw000011"},
          RouterRoute{t, "unicast", "10.1.255.0/27", "", "gw000013"},
          RouterRoute{t, "blackhole", "10.1.0.0/16", "", ""},  // no subnet there
          RouterRoute{t, "blackhole", "192.168.7.0/24", "", ""},
          RouterRoute{t, "unicast", "10.2.0.0/16", "169.254.0.2", "pr0002"},
          RouterRoute{t, "unicast", "10.3.0.0/24", "169.254.0.2", "pr0002"},
          RouterRoute{t, "unreachable", "default", "", ""},  // Internet: no uplink yet
          RouterRoute{t, "blackhole", "10.0.0.0/8", "", ""},
          RouterRoute{t, "blackhole", "172.16.0.0/12", "", ""},
          RouterRoute{t, "blackhole", "192.168.0.0/16", "", ""},
          RouterRoute{t, "blackhole", "100.64.0.0/10", "", ""}));
  EXPECT_THAT(r.rules, ::testing::Contains(RouterRule{2000, "gw000011", "", "lookup " + t}));
  // A user route of 0.0.0.0/0 replaces the system Internet route: None is a blackhole.
  front.routes = EffectiveRoutes(SystemRoutes({P("10.1.0.0/16")}, {}),
                                 {route("0.0.0.0/0", NextHop::kNone)});
  table.clear();
  for (auto& x : DesiredRouting(v, {}).routes)
    if (x.table == t) table.push_back(x);
  EXPECT_THAT(table, ::testing::Contains(RouterRoute{t, "blackhole", "default", "", ""}));
  EXPECT_THAT(table, ::testing::Not(::testing::Contains(RouterRoute{t, "unreachable", "default", "", ""})));
}

TEST(RouterRoutingTest, TheUplinkGivesADefaultRouteAndKeepsPrivateRangesIn) {
  VnetDatapath v = Hub();
  v.peerings[0].remote_spaces = {P("10.0.0.0/8")};  // a peer routing exactly 10/8 keeps it
  v.uplink.edge_netns = "ste-abcd";
  v.uplink.veth = "up";
  v.uplink.edge_veth = "ex0001";
  RouterRouting r = DesiredRouting(v, {"pr0002", "up"});
  EXPECT_THAT(r.routes,
              UnorderedElementsAre(
                  RouterRoute{"main", "unicast", "10.0.0.0/8", "169.254.0.2", "pr0002"},
                  RouterRoute{"main", "unicast", "default", "169.254.0.0", "up"},
                  RouterRoute{"main", "blackhole", "172.16.0.0/12", "", ""},
                  RouterRoute{"main", "blackhole", "192.168.0.0/16", "", ""},
                  RouterRoute{"main", "blackhole", "100.64.0.0/10", "", ""},
                  RouterRoute{"100", "unicast", "10.1.1.0/24", "", "gw000011"},
                  RouterRoute{"100", "blackhole", "default", "", ""}));
  // The link not there (yet): no way out.
  for (auto& route : DesiredRouting(v, {"pr0002"}).routes)
    EXPECT_FALSE(route.table == "main" && route.dst == "default");
  // A subnet table's Internet routes go to the edge; without an uplink they are unreachable.
  v.peerings.clear();
  v.subnets[0].route_table = SubnetRouteTable(0x11);
  v.subnets[0].routes = EffectiveRoutes(SystemRoutes({P("10.1.0.0/16")}, {}), {});
  std::string table = std::to_string(SubnetRouteTable(0x11));
  RouterRoute out{table, "unicast", "default", "169.254.0.0", "up"};
  auto routes = DesiredRouting(v, {"up"}).routes;
  EXPECT_NE(std::find(routes.begin(), routes.end(), out), routes.end());
  v.uplink = {};
  routes = DesiredRouting(v, {}).routes;
  EXPECT_NE(std::find(routes.begin(), routes.end(),
                      RouterRoute{table, "unreachable", "default", "", ""}),
            routes.end());
}

}  // namespace
}  // namespace stratus::network
