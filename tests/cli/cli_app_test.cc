// End-to-end tests of the `stratus` command line against FakeStratusd: parsing, config, requests,
// LRO waiting, output and exit codes.
#include "cli/cli_app.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <sstream>

#include "cli/fake_stratusd.h"
#include "core/fs.h"
#include "core/uuid.h"

namespace stratus::cli {
namespace {

using testing::CliRun;
using testing::FakeStratusd;
using testing::kRg;
using testing::kSub;
using testing::kVm;

const std::string kAppOp = "/subscriptions/" + kSub + "/providers/Stratus.Resources/operations/op7";

class CliAppTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / ("stratus-cli-app-" + NewUuid())).string();
    ASSERT_TRUE(MakeDirs(dir_).ok());
    WriteConfig(fake_.endpoint());
    fake_.server().set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (res.status == 404)
        FakeStratusd::ReplyError(res, 404, "ResourceNotFound", "No resource at " + req.path);
    });
  }
  void TearDown() override { RemoveTree(dir_); }

  void WriteConfig(const std::string& endpoint) {
    std::string token_file = JoinPath(dir_, "admin.token");
    ASSERT_TRUE(WriteFileAtomic(token_file, "file-token\n").ok());
    Json config = {{"default", "regionA"},
                   {"regions",
                    {{"regionA",
                      {{"endpoint", endpoint},
                       {"tokenFile", token_file},
                       {"subscription", kSub},
                       {"location", "regionA"}}}}}};
    ASSERT_TRUE(WriteFileAtomic(JoinPath(dir_, "config.json"), config.dump()).ok());
  }

  CliRun Stratus(const std::vector<std::string>& args) {
    CliEnvironment env;
    env.config_path = JoinPath(dir_, "config.json");
    env.token = token_;
    env.clock = &clock_;
    env.sleep = [this](int64_t ms) { clock_.AdvanceMs(ms); };
    std::ostringstream out, err;
    int code = RunCli(args, env, out, err);
    return {code, out.str(), err.str()};
  }

  // The VM resource as GET returns it.
  static Json VmBody(const std::string& power_state) {
    Json vm = {
        {"id", kVm},
        {"name", "web1"},
        {"type", "Stratus.Compute/virtualMachines"},
        {"location", "regionA"},
        {"properties",
         {{"hardwareProfile", {{"vmSize", "Standard_S1"}}}, {"provisioningState", "Succeeded"}}}};
    if (!power_state.empty()) vm["properties"]["instanceView"] = {{"powerState", power_state}};
    return vm;
  }

  // Answers with the operation headers; GET kAppOp then reports InProgress once, then `last`.
  void ServeOperation(const Json& last) {
    fake_.server().Get(kAppOp, [this, last](const httplib::Request&, httplib::Response& res) {
      if (op_polls_++ == 0) {
        FakeStratusd::Reply(res, 200,
                            {{"name", "op7"},
                             {"operation", "start"},
                             {"status", "InProgress"},
                             {"percentComplete", 30}});
      } else {
        FakeStratusd::Reply(res, 200, last);
      }
    });
  }
  void AcceptWithOperation(httplib::Response& res, int status, const Json& body) {
    FakeStratusd::Reply(res, status, body);
    res.set_header("Azure-AsyncOperation", fake_.endpoint() + kAppOp + "?api-version=2026-11-01");
    res.set_header("Location", fake_.endpoint() + kAppOp);
  }
  void ServeVm(const std::string& power_state) {
    fake_.server().Get(kVm, [power_state](const httplib::Request& req, httplib::Response& res) {
      FakeStratusd::Reply(
          res, 200, VmBody(req.get_param_value("$expand") == "instanceView" ? power_state : ""));
    });
  }

  FakeStratusd fake_;
  FakeClock clock_{0};
  std::string dir_;
  std::optional<std::string> token_;
  std::atomic<int> op_polls_{0};
};

TEST_F(CliAppTest, VmCreateWaitsForTheOperationAndPrintsTheVm) {
  fake_.server().Get(R"(/subscriptions/[^/]+/providers/Stratus.Compute/platformImages)",
                     [](const httplib::Request&, httplib::Response& res) {
                       FakeStratusd::Reply(res, 200, {{"value", {{{"name", "tiny"}}}}});
                     });
  fake_.server().Put(kVm, [this](const httplib::Request& req, httplib::Response& res) {
    Json vm = Json::parse(req.body);
    vm["id"] = kVm;
    vm["properties"]["provisioningState"] = "Creating";
    AcceptWithOperation(res, 201, vm);
  });
  ServeOperation({{"name", "op7"}, {"status", "Succeeded"}, {"percentComplete", 100}});
  ServeVm("running");

  std::string script = JoinPath(dir_, "boot.sh");
  ASSERT_TRUE(WriteFileAtomic(script, "#!/bin/sh\necho hi\n").ok());
  CliRun r = Stratus({"vm", "create", "-g", "rg1", "-n", "web1", "--image", "tiny", "--size",
                      "Standard_S1", "--data-disk-sizes-gb", "1", "2", "--data-disk-sku",
                      "Premium_LRS", "--custom-data", "@" + script, "--tags", "env=test"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "Name  ResourceGroup  Location  Size         PowerState  ProvisioningState\n"
            "----  -------------  --------  -----------  ----------  -----------------\n"
            "web1  rg1            regionA   Standard_S1  running     Succeeded\n");
  EXPECT_NE(r.err.find(" - Running ..  start 30% 0s\n"), std::string::npos) << r.err;

  auto puts = fake_.RequestsTo("PUT", kVm);
  ASSERT_EQ(puts.size(), 1u);
  EXPECT_EQ(puts[0].authorization, "Bearer file-token");
  Json body = Json::parse(puts[0].body);
  EXPECT_EQ(body["location"], "regionA");
  EXPECT_EQ(body["tags"], (Json{{"env", "test"}}));
  const Json& props = body["properties"];
  EXPECT_EQ(props["hardwareProfile"]["vmSize"], "Standard_S1");
  EXPECT_EQ(props["storageProfile"]["imageReference"], (Json{{"id", "tiny"}}));
  ASSERT_EQ(props["storageProfile"]["dataDisks"].size(), 2u);
  EXPECT_EQ(props["storageProfile"]["dataDisks"][1], (Json{{"lun", 1},
                                                           {"name", "web1-data1"},
                                                           {"createOption", "Empty"},
                                                           {"diskSizeGB", 2},
                                                           {"sku", "Premium_LRS"}}));
  EXPECT_EQ(props["osProfile"]["customData"], "#!/bin/sh\necho hi\n");
  EXPECT_EQ(props["osProfile"]["computerName"], "web1");
}

TEST_F(CliAppTest, VmCreateWithVnetAndSubnetMakesTheNicFirstLikeAz) {
  const std::string net = std::string("/subscriptions/") + kSub +
                          "/resourceGroups/rg1/providers/Stratus.Network/";
  fake_.server().Get(R"(/subscriptions/[^/]+/providers/Stratus.Compute/platformImages)",
                     [](const httplib::Request&, httplib::Response& res) {
                       FakeStratusd::Reply(res, 200, {{"value", {{{"name", "tiny"}}}}});
                     });
  fake_.server().Put(net + "networkInterfaces/web1VMNic",
                     [](const httplib::Request& req, httplib::Response& res) {
                       FakeStratusd::Reply(res, 201, Json::parse(req.body));
                     });
  fake_.server().Put(kVm, [this](const httplib::Request& req, httplib::Response& res) {
    Json vm = Json::parse(req.body);
    vm["id"] = kVm;
    AcceptWithOperation(res, 201, vm);
  });
  ServeOperation({{"name", "op7"}, {"status", "Succeeded"}, {"percentComplete", 100}});
  ServeVm("running");
  CliRun r = Stratus({"vm", "create", "-g", "rg1", "-n", "web1", "--image", "tiny", "--vnet",
                      "v1", "--subnet", "front", "--private-ip-address", "10.1.1.9", "--nsg",
                      "web-nsg"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto nic_puts = fake_.RequestsTo("PUT", net + "networkInterfaces/web1VMNic");
  ASSERT_EQ(nic_puts.size(), 1u);
  Json nic = Json::parse(nic_puts[0].body);
  const Json& ipc = nic["properties"]["ipConfigurations"][0]["properties"];
  EXPECT_EQ(ipc["subnet"]["id"], net + "virtualNetworks/v1/subnets/front");
  EXPECT_EQ(ipc["privateIPAddress"], "10.1.1.9");
  EXPECT_EQ(ipc["privateIPAllocationMethod"], "Static");
  EXPECT_EQ(nic["properties"]["networkSecurityGroup"]["id"], net + "networkSecurityGroups/web-nsg");
  auto vm_puts = fake_.RequestsTo("PUT", kVm);
  ASSERT_EQ(vm_puts.size(), 1u);
  Json vm = Json::parse(vm_puts[0].body);
  EXPECT_EQ(vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"],
            net + "networkInterfaces/web1VMNic");
  // --vnet alone is a usage error, and nothing is sent.
  CliRun bad = Stratus({"vm", "create", "-g", "rg1", "-n", "web2", "--image", "tiny", "--vnet", "v1"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
}

TEST_F(CliAppTest, VmCreateWithAPublicIpMakesItStaticWhenAbsentAndPutsItOnTheNic) {
  const std::string net = std::string("/subscriptions/") + kSub +
                          "/resourceGroups/rg1/providers/Stratus.Network/";
  fake_.server().Get(R"(/subscriptions/[^/]+/providers/Stratus.Compute/platformImages)",
                     [](const httplib::Request&, httplib::Response& res) {
                       FakeStratusd::Reply(res, 200, {{"value", {{{"name", "tiny"}}}}});
                     });
  fake_.server().Get(net + "publicIPAddresses/web1-ip",
                     [](const httplib::Request&, httplib::Response& res) {
                       FakeStratusd::Reply(res, 404, {{"error", {{"code", "ResourceNotFound"},
                                                                 {"message", "not found"}}}});
                     });
  for (const char* p : {"publicIPAddresses/web1-ip", "networkInterfaces/web1VMNic"})
    fake_.server().Put(net + p, [](const httplib::Request& req, httplib::Response& res) {
      FakeStratusd::Reply(res, 201, Json::parse(req.body));
    });
  fake_.server().Put(kVm, [this](const httplib::Request& req, httplib::Response& res) {
    Json vm = Json::parse(req.body);
    vm["id"] = kVm;
    AcceptWithOperation(res, 201, vm);
  });
  ServeOperation({{"name", "op7"}, {"status", "Succeeded"}, {"percentComplete", 100}});
  ServeVm("running");
  CliRun r = Stratus({"vm", "create", "-g", "rg1", "-n", "web1", "--image", "tiny", "--vnet",
                      "v1", "--subnet", "front", "--public-ip-address", "web1-ip"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto pip_puts = fake_.RequestsTo("PUT", net + "publicIPAddresses/web1-ip");
  ASSERT_EQ(pip_puts.size(), 1u);
  Json pip = Json::parse(pip_puts[0].body);
  EXPECT_EQ(pip["sku"]["name"], "Standard");
  EXPECT_EQ(pip["properties"]["publicIPAllocationMethod"], "Static");
  auto nic_puts = fake_.RequestsTo("PUT", net + "networkInterfaces/web1VMNic");
  ASSERT_EQ(nic_puts.size(), 1u);
  EXPECT_EQ(Json::parse(nic_puts[0].body)["properties"]["ipConfigurations"][0]["properties"]
                                         ["publicIPAddress"]["id"],
            net + "publicIPAddresses/web1-ip");
  // Without --vnet/--subnet it is a usage error.
  CliRun bad = Stratus({"vm", "create", "-g", "rg1", "-n", "web2", "--image", "tiny",
                        "--public-ip-address", "x"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  // network public-ip create: the sku and method as given.
  const std::string dyn = net + "publicIPAddresses/dyn";
  fake_.server().Put(dyn, [dyn](const httplib::Request& req, httplib::Response& res) {
    Json b = Json::parse(req.body);
    b["id"] = dyn;
    b["name"] = "dyn";
    FakeStratusd::Reply(res, 201, b);
  });
  CliRun c = Stratus({"network", "public-ip", "create", "-g", "rg1", "-n", "dyn", "--sku", "Basic",
                      "--allocation-method", "Dynamic"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto dyn_puts = fake_.RequestsTo("PUT", dyn);
  ASSERT_EQ(dyn_puts.size(), 1u);
  Json d = Json::parse(dyn_puts[0].body);
  EXPECT_EQ(d["sku"]["name"], "Basic");
  EXPECT_EQ(d["properties"]["publicIPAllocationMethod"], "Dynamic");
}

TEST_F(CliAppTest, NsgRuleCreateSendsTheArmRule) {
  const std::string rule = std::string("/subscriptions/") + kSub +
                           "/resourceGroups/rg1/providers/Stratus.Network/networkSecurityGroups/"
                           "web-nsg/securityRules/http";
  fake_.server().Put(rule, [rule](const httplib::Request& req, httplib::Response& res) {
    Json r = Json::parse(req.body);
    r["id"] = rule;
    r["name"] = "http";
    FakeStratusd::Reply(res, 201, r);
  });
  CliRun r = Stratus({"network", "nsg", "rule", "create", "-g", "rg1", "--nsg-name", "web-nsg",
                      "-n", "http", "--priority", "100", "--access", "Allow", "--protocol", "Tcp",
                      "--source-address-prefixes", "10.0.0.0/8", "Internet",
                      "--destination-port-ranges", "80", "8000-8080"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto puts = fake_.RequestsTo("PUT", rule);
  ASSERT_EQ(puts.size(), 1u);
  Json p = Json::parse(puts[0].body)["properties"];
  EXPECT_EQ(p["priority"], 100);
  EXPECT_EQ(p["direction"], "Inbound");
  EXPECT_EQ(p["sourceAddressPrefixes"], Json({"10.0.0.0/8", "Internet"}));
  EXPECT_EQ(p["destinationPortRanges"], Json({"80", "8000-8080"}));
  EXPECT_EQ(p["sourcePortRange"], "*");
  EXPECT_NE(r.out.find("http"), std::string::npos) << r.out;
}

TEST_F(CliAppTest, VnetPeeringCreateSendsTheRemoteVnetAndFlags) {
  const std::string net = std::string("/subscriptions/") + kSub +
                          "/resourceGroups/rg1/providers/Stratus.Network/virtualNetworks/";
  const std::string path = net + "hub/virtualNetworkPeerings/hub-to-spoke";
  fake_.server().Put(path, [path](const httplib::Request& req, httplib::Response& res) {
    Json r = Json::parse(req.body);
    r["id"] = path;
    r["name"] = "hub-to-spoke";
    r["properties"]["peeringState"] = "Initiated";
    FakeStratusd::Reply(res, 201, r);
  });
  CliRun r = Stratus({"network", "vnet", "peering", "create", "-g", "rg1", "--vnet-name", "hub",
                      "-n", "hub-to-spoke", "--remote-vnet", "spoke", "--allow-forwarded-traffic"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto puts = fake_.RequestsTo("PUT", path);
  ASSERT_EQ(puts.size(), 1u);
  Json p = Json::parse(puts[0].body)["properties"];
  EXPECT_EQ(p["remoteVirtualNetwork"]["id"], net + "spoke");
  EXPECT_EQ(p["allowVirtualNetworkAccess"], true);
  EXPECT_EQ(p["allowForwardedTraffic"], true);
  EXPECT_NE(r.out.find("Initiated"), std::string::npos) << r.out;
  // --remote-vnet is required; nothing is sent without it.
  CliRun bad = Stratus({"network", "vnet", "peering", "create", "-g", "rg1", "--vnet-name", "hub",
                        "-n", "p2"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
}

TEST_F(CliAppTest, RouteTableRoutesAndSubnetAssociationSendArmShapes) {
  const std::string net = std::string("/subscriptions/") + kSub +
                          "/resourceGroups/rg1/providers/Stratus.Network/";
  const std::string route = net + "routeTables/rt1/routes/to-fw";
  fake_.server().Put(route, [route](const httplib::Request& req, httplib::Response& res) {
    Json r = Json::parse(req.body);
    r["id"] = route;
    r["name"] = "to-fw";
    FakeStratusd::Reply(res, 201, r);
  });
  CliRun r = Stratus({"network", "route-table", "route", "create", "-g", "rg1",
                      "--route-table-name", "rt1", "-n", "to-fw", "--address-prefix",
                      "10.1.2.0/24", "--next-hop-type", "VirtualAppliance",
                      "--next-hop-ip-address", "10.1.255.4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto puts = fake_.RequestsTo("PUT", route);
  ASSERT_EQ(puts.size(), 1u);
  EXPECT_EQ(Json::parse(puts[0].body)["properties"],
            (Json{{"addressPrefix", "10.1.2.0/24"},
                  {"nextHopType", "VirtualAppliance"},
                  {"nextHopIpAddress", "10.1.255.4"}}));
  EXPECT_NE(r.out.find("10.1.255.4"), std::string::npos) << r.out;
  // The subnet keeps what it has and gets the table.
  const std::string subnet = net + "virtualNetworks/v1/subnets/front";
  fake_.server().Get(subnet, [](const httplib::Request&, httplib::Response& res) {
    FakeStratusd::Reply(res, 200, {{"name", "front"},
                                   {"properties", {{"addressPrefix", "10.1.1.0/24"},
                                                   {"provisioningState", "Succeeded"}}}});
  });
  fake_.server().Put(subnet, [](const httplib::Request& req, httplib::Response& res) {
    FakeStratusd::Reply(res, 200, Json::parse(req.body));
  });
  CliRun u = Stratus({"network", "vnet", "subnet", "update", "-g", "rg1", "--vnet-name", "v1",
                      "-n", "front", "--route-table", "rt1"});
  ASSERT_EQ(u.exit_code, 0) << u.err;
  auto sub_puts = fake_.RequestsTo("PUT", subnet);
  ASSERT_EQ(sub_puts.size(), 1u);
  Json p = Json::parse(sub_puts[0].body)["properties"];
  EXPECT_EQ(p["addressPrefix"], "10.1.1.0/24");
  EXPECT_EQ(p["routeTable"]["id"], net + "routeTables/rt1");
  // Listing the subnets goes to the VNET's subnets.
  fake_.server().Get(net + "virtualNetworks/v1/subnets",
                     [](const httplib::Request&, httplib::Response& res) {
                       FakeStratusd::Reply(res, 200, {{"value", {{{"name", "front"}}}}});
                     });
  CliRun l = Stratus({"network", "vnet", "subnet", "list", "-g", "rg1", "--vnet-name", "v1"});
  ASSERT_EQ(l.exit_code, 0) << l.err;
  EXPECT_NE(l.out.find("front"), std::string::npos) << l.out;
}

TEST_F(CliAppTest, FailedOperationExits7WithItsError) {
  fake_.server().Post(kVm + "/start", [this](const httplib::Request&, httplib::Response& res) {
    AcceptWithOperation(res, 202, nullptr);
  });
  ServeOperation({{"name", "op7"},
                  {"status", "Failed"},
                  {"error", {{"code", "HypervisorError"}, {"message", "qemu exited"}}}});
  CliRun r = Stratus({"vm", "start", "-g", "rg1", "-n", "web1"});
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_NE(r.err.find("ERROR: (HypervisorError) qemu exited\n"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(CliAppTest, NoWaitPrintsTheOperation) {
  fake_.server().Post(kVm + "/deallocate", [this](const httplib::Request&, httplib::Response& res) {
    AcceptWithOperation(res, 202, nullptr);
  });
  CliRun r = Stratus({"vm", "deallocate", "-g", "rg1", "-n", "web1", "--no-wait", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json printed = Json::parse(r.out);
  EXPECT_EQ(printed["operationId"], "op7");
  EXPECT_EQ(printed["url"], fake_.endpoint() + kAppOp + "?api-version=2026-11-01");
  EXPECT_EQ(op_polls_.load(), 0);
}

TEST_F(CliAppTest, ShowMissingGroupExits4) {
  CliRun r = Stratus({"group", "show", "-n", "nope"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.err, "ERROR: (ResourceNotFound) No resource at /subscriptions/" + kSub +
                       "/resourceGroups/nope\n");
}

TEST_F(CliAppTest, ConflictExits5) {
  std::string disk = kRg + "/providers/Stratus.Storage/disks/d1";
  fake_.server().Delete(disk, [](const httplib::Request&, httplib::Response& res) {
    FakeStratusd::ReplyError(res, 409, "DiskAttached", "Disk d1 is attached to web1.");
  });
  CliRun r = Stratus({"disk", "delete", "-g", "rg1", "-n", "d1", "--yes"});
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_EQ(r.err, "ERROR: (DiskAttached) Disk d1 is attached to web1.\n");
}

TEST_F(CliAppTest, UnauthorizedExits3AndEnvTokenIsSent) {
  fake_.server().Get("/subscriptions/" + kSub + "/resourceGroups",
                     [](const httplib::Request&, httplib::Response& res) {
                       FakeStratusd::ReplyError(res, 401, "AuthenticationFailed", "Unknown token.");
                     });
  token_ = "env-token";
  CliRun r = Stratus({"group", "list"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err, "ERROR: (AuthenticationFailed) Unknown token.\n");
  ASSERT_FALSE(fake_.requests().empty());
  EXPECT_EQ(fake_.requests()[0].authorization, "Bearer env-token");
}

TEST_F(CliAppTest, UnreachableDaemonExits6) {
  std::string endpoint = "http://127.0.0.1:" + std::to_string(testing::ClosedPort());
  WriteConfig(endpoint);
  CliRun r = Stratus({"group", "list"});
  EXPECT_EQ(r.exit_code, 6);
  EXPECT_NE(r.err.find("cannot reach stratusd at " + endpoint + ": is it running?"),
            std::string::npos)
      << r.err;
}

TEST_F(CliAppTest, UsageErrorsExit2WithoutRequests) {
  EXPECT_EQ(Stratus({"vm", "create", "-g", "rg1"}).exit_code, 2);
  EXPECT_EQ(Stratus({"vm"}).exit_code, 2);
  EXPECT_EQ(Stratus({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(Stratus({"group", "list", "-o", "yaml"}).exit_code, 2);
  CliRun r = Stratus({"disk", "create", "-g", "rg1", "-n", "d1", "--sku", "Gold"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("ERROR: (UsageError) ", 0), 0u) << r.err;
  EXPECT_EQ(Stratus({"disk", "create", "-g", "rg1", "-n", "d1"}).exit_code, 2);  // no size
  EXPECT_TRUE(fake_.requests().empty());
  EXPECT_EQ(Stratus({"--help"}).exit_code, 0);
}

TEST_F(CliAppTest, MissingConfigExits1) {
  RemoveFile(JoinPath(dir_, "config.json"));
  CliRun r = Stratus({"group", "list"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("ERROR: (ConfigNotFound)"), std::string::npos);
}

TEST_F(CliAppTest, GlobalOptionsWorkBeforeOrAfterTheCommand) {
  fake_.server().Get("/subscriptions/" + kSub + "/resourceGroups",
                     [](const httplib::Request&, httplib::Response& res) {
                       FakeStratusd::Reply(res, 200, {{"value", {{{"name", "rg1"}}}}});
                     });
  for (auto args : {std::vector<std::string>{"-o", "json", "group", "list"},
                    std::vector<std::string>{"group", "list", "--output", "json"}}) {
    CliRun r = Stratus(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(Json::parse(r.out), Json::parse(R"([{"name":"rg1"}])"));
  }
  CliRun r = Stratus({"group", "list", "--subscription", "22222222-2222-3333-4444-555555555555"});
  EXPECT_EQ(r.exit_code, 4);  // the fake only knows kSub
}

TEST_F(CliAppTest, DiskAttachResolvesTheDiskName) {
  fake_.server().Post(kVm + "/attachDetachDataDisks",
                      [](const httplib::Request&, httplib::Response& res) {
                        FakeStratusd::Reply(res, 200, Json::object());
                      });
  ServeVm("running");
  CliRun r = Stratus(
      {"vm", "disk", "attach", "-g", "rg1", "--vm-name", "web1", "--name", "d1", "--lun", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto posts = fake_.RequestsTo("POST", kVm + "/attachDetachDataDisks");
  ASSERT_EQ(posts.size(), 1u);
  Json body = Json::parse(posts[0].body);
  EXPECT_EQ(
      body["dataDisksToAttach"],
      Json::parse(R"([{"diskId":")" + kRg + R"(/providers/Stratus.Storage/disks/d1","lun":3}])"));
  EXPECT_NE(r.out.find("web1"), std::string::npos);
}

TEST_F(CliAppTest, VmSnapshotPrintsTheSnapshotIds) {
  fake_.server().Post(kVm + "/captureSnapshots",
                      [this](const httplib::Request&, httplib::Response& res) {
                        AcceptWithOperation(res, 202, nullptr);
                      });
  std::string s0 = kRg + "/providers/Stratus.Storage/snapshots/bk-web1-os";
  std::string s1 = kRg + "/providers/Stratus.Storage/snapshots/bk-web1-data0";
  ServeOperation({{"name", "op7"},
                  {"status", "Succeeded"},
                  {"properties", {{"snapshots", {s0, s1}}, {"consistency", "CrashConsistent"}}}});
  CliRun r =
      Stratus({"vm", "snapshot", "-g", "rg1", "-n", "web1", "--prefix", "bk", "--no-quiesce"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, s0 + "\n" + s1 + "\n");
  Json body = Json::parse(fake_.RequestsTo("POST", kVm + "/captureSnapshots")[0].body);
  EXPECT_EQ(body, (Json{{"quiesce", false}, {"snapshotNamePrefix", "bk"}}));
}

TEST_F(CliAppTest, ConsolePrintsTheText) {
  fake_.server().Post(
      kVm + "/retrieveConsoleLog", [](const httplib::Request& req, httplib::Response& res) {
        FakeStratusd::Reply(res, 200, {{"content", "tail=" + req.get_param_value("tail")}});
      });
  CliRun r = Stratus({"vm", "console", "-g", "rg1", "-n", "web1", "--tail", "64"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "tail=64\n");
}

}  // namespace
}  // namespace stratus::cli
