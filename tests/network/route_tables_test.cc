#include "network/route_tables.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace stratus::network {
namespace {

Json RouteBody(const std::string& name, const std::string& prefix, const std::string& type,
               const std::string& ip = "") {
  Json p = {{"addressPrefix", prefix}, {"nextHopType", type}};
  if (!ip.empty()) p["nextHopIpAddress"] = ip;
  return {{"name", name}, {"properties", p}};
}

std::string Code(const Json& body) {
  auto r = ParseRoute(body, "routes[0]");
  return r.ok() ? "" : r.status().arm_code();
}

TEST(RouteTablesTest, ParsesTheFourNextHopTypes) {
  auto r = ParseRoute(RouteBody("to-fw", "10.2.0.0/16", "VirtualAppliance", "10.1.255.4"), "r");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->next_hop, NextHop::kVirtualAppliance);
  EXPECT_EQ(r->next_hop_ip.ToString(), "10.1.255.4");
  EXPECT_EQ(RouteJson(*r)["nextHopIpAddress"], "10.1.255.4");
  for (auto [type, hop] : {std::pair{"VnetLocal", NextHop::kVnetLocal},
                           {"internet", NextHop::kInternet}, {"None", NextHop::kNone}}) {
    auto x = ParseRoute(RouteBody("x", "0.0.0.0/0", type), "r");
    ASSERT_TRUE(x.ok()) << type;
    EXPECT_EQ(x->next_hop, hop);
    EXPECT_FALSE(RouteJson(*x).contains("nextHopIpAddress"));
  }
}

TEST(RouteTablesTest, BadRoutesAreRefusedWithTheirCodes) {
  EXPECT_EQ(Code(RouteBody("a", "10.0.0.0/8", "Router")), "InvalidRouteNextHopType");
  EXPECT_EQ(Code(RouteBody("a", "10.0.0.0/8", "VirtualNetworkGateway")), "FeatureNotAvailable");
  EXPECT_EQ(Code(RouteBody("a", "10.0.0.0/8", "VirtualAppliance")), "InvalidRouteNextHopIpAddress");
  EXPECT_EQ(Code(RouteBody("a", "10.0.0.0/8", "None", "10.1.1.4")), "InvalidRouteNextHopIpAddress");
  EXPECT_EQ(Code(RouteBody("a", "10.0.0.1/8", "None")), "InvalidAddressPrefixFormat");
  EXPECT_EQ(Code(RouteBody("a", "10.0.0.0/8", "VirtualAppliance", "10.1.1")), "InvalidIPAddressFormat");
  EXPECT_EQ(Code({{"name", "a"}, {"properties", {{"nextHopType", "None"}}}}), "MissingParameter");
  auto a = ParseRoute(RouteBody("a", "10.0.0.0/8", "None"), "r");
  auto b = ParseRoute(RouteBody("b", "10.0.0.0/8", "Internet"), "r");
  auto c = ParseRoute(RouteBody("A", "10.9.0.0/16", "Internet"), "r");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(ValidateRoutes({*a, *b}).arm_code(), "DuplicateRouteAddressPrefix");
  EXPECT_EQ(ValidateRoutes({*a, *c}).arm_code(), "DuplicateResourceName");
  EXPECT_TRUE(ValidateRoutes({*b, *c}).ok());
}

TEST(RouteTablesTest, UserRoutesReplaceTheSystemRouteOfTheSamePrefix) {
  std::vector<Route> system = SystemRoutes({*ParseIpv4Prefix("10.1.0.0/16", "")},
                                           {*ParseIpv4Prefix("10.2.0.0/16", "")});
  // VNET space, peer, internet, four None.
  ASSERT_EQ(system.size(), 7u);
  EXPECT_EQ(system[0].next_hop, NextHop::kVnetLocal);
  EXPECT_EQ(system[1].next_hop, NextHop::kVnetPeering);
  EXPECT_EQ(system[2].next_hop, NextHop::kInternet);
  EXPECT_EQ(system[2].prefix.ToString(), "0.0.0.0/0");
  auto user = ParseRoute(RouteBody("all-to-fw", "0.0.0.0/0", "VirtualAppliance", "10.1.255.4"), "r");
  ASSERT_TRUE(user.ok());
  std::vector<EffectiveRoute> eff = EffectiveRoutes(system, {*user});
  ASSERT_EQ(eff.size(), 8u);
  EXPECT_TRUE(eff[0].user && eff[0].active);
  EXPECT_FALSE(eff[3].active) << "the system Internet route is replaced";
  EXPECT_TRUE(eff[1].active);
  Json j = EffectiveRoutesJson(eff);
  EXPECT_EQ(j[0]["source"], "User");
  EXPECT_EQ(j[0]["nextHopIpAddress"], Json({"10.1.255.4"}));
  EXPECT_EQ(j[3]["state"], "Invalid");
  EXPECT_EQ(j[2]["nextHopType"], "VNetPeering");
  EXPECT_EQ(j[1]["addressPrefix"], Json({"10.1.0.0/16"}));
}

}  // namespace
}  // namespace stratus::network
