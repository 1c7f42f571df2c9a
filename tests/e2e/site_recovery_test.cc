// Site recovery between two real regions on this machine: two stratusd daemons, each with its own
// data dir, API port and peer link, paired with the CLI (`stratus recovery pair token` in A,
// `pair create` in B). What each side records, the link checked both ways, across a restart of A
// (same identity, same peer port), and reported unreachable while A is down.
#include <gtest/gtest.h>

#include "e2e/harness.h"

namespace stratus::e2e {
namespace {

class SiteRecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = SkipReason();
    if (!why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(a_.Start());
    ASSERT_TRUE(b_.Start());
  }
  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "---- regionA log ----\n" << a_.LogTail() << "\n";
      std::cerr << "---- regionB log ----\n" << b_.LogTail() << "\n";
    }
    a_.Cleanup();
    b_.Cleanup();
  }

  // `stratus <args>` against region `d`; returns the exit code, *out its output.
  static int Cli(const Daemon& d, std::vector<std::string> args, std::string* out) {
    std::vector<std::string> argv = {"env", "STRATUS_CONFIG=" + d.cli_config_path(),
                                     STRATUS_CLI_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, out);
  }
  static std::string PairingPath(const Daemon& d, const std::string& peer) {
    return d.SubPath() + "/providers/Stratus.RecoveryServices/regionPairings/" + peer;
  }

  Daemon a_{"regionA"};
  Daemon b_{"regionB"};
};

TEST_F(SiteRecoveryTest, RegionsPairWithTheCliAndTheLinkSurvivesARestart) {
  ASSERT_NE(a_.peer_port(), 0);
  ASSERT_NE(a_.peer_port(), b_.peer_port());

  std::string out;
  ASSERT_EQ(Cli(a_, {"recovery", "pair", "token", "--expires-in-minutes", "10", "-o", "json"}, &out), 0)
      << out;
  Json token = Json::parse(out, nullptr, false);
  ASSERT_TRUE(token.is_object()) << out;
  EXPECT_EQ(token["region"], "regionA");
  EXPECT_EQ(token["peerEndpoint"], "https://127.0.0.1:" + std::to_string(a_.peer_port()));

  ASSERT_EQ(Cli(b_, {"recovery", "pair", "create", "--token", token["token"]}, &out), 0) << out;
  EXPECT_NE(out.find("regionA"), std::string::npos) << out;
  auto b_side = b_.Get(PairingPath(b_, "regionA"));
  ASSERT_EQ(b_side.status, 200) << b_side.Describe();
  EXPECT_EQ(b_side.json["properties"]["peerCertificateThumbprint"],
            token["certificateThumbprint"]);
  auto a_side = a_.Get(PairingPath(a_, "regionB"));
  ASSERT_EQ(a_side.status, 200) << a_side.Describe();
  EXPECT_EQ(a_side.json["properties"]["initiatedBy"], "Peer");
  EXPECT_EQ(a_side.json["properties"]["peerCertificateThumbprint"],
            b_side.json["properties"]["localCertificateThumbprint"]);
  EXPECT_EQ(a_side.json["properties"]["peerEndpoint"],
            "https://127.0.0.1:" + std::to_string(b_.peer_port()));

  ASSERT_EQ(Cli(b_, {"recovery", "pair", "check", "--peer", "regionA"}, &out), 0) << out;
  ASSERT_EQ(Cli(a_, {"recovery", "pair", "check", "--peer", "regionB"}, &out), 0) << out;

  // The identity and the port outlive a restart.
  ASSERT_TRUE(a_.Restart());
  ASSERT_EQ(Cli(b_, {"recovery", "pair", "check", "--peer", "regionA"}, &out), 0) << out;

  // A down: reported, nothing changes.
  ASSERT_TRUE(a_.Kill9());
  EXPECT_EQ(Cli(b_, {"recovery", "pair", "check", "--peer", "regionA"}, &out), 6) << out;
  EXPECT_NE(out.find("PeerRegionUnreachable"), std::string::npos) << out;
  ASSERT_EQ(Cli(b_, {"recovery", "pair", "list", "-o", "json"}, &out), 0) << out;
  EXPECT_NE(out.find("regionA"), std::string::npos) << out;

  // Unpairing while A is down: B forgets, warns that A was not told.
  ASSERT_EQ(Cli(b_, {"recovery", "pair", "delete", "--peer", "regionA"}, &out), 0) << out;
  EXPECT_NE(out.find("was not reached"), std::string::npos) << out;
  EXPECT_EQ(b_.Get(PairingPath(b_, "regionA")).status, 404);
}

}  // namespace
}  // namespace stratus::e2e
