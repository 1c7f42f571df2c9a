// Region pairing through the API, with two (and a third) whole in-process control planes whose
// peer links listen on loopback: the token from A, B's PUT, what each side records, the link used
// both ways afterwards, and every way a pairing must be refused with nothing recorded.
#include <gtest/gtest.h>

#include "common/in_process_region.h"
#include "core/base64.h"
#include "recovery/site/pairing_token.h"

namespace stratus::recovery::site {
namespace {

using test::InProcessRegion;

constexpr char kProv[] = "/subscriptions/sub1/providers/Stratus.RecoveryServices";

std::string PairingPath(const std::string& name) {
  return std::string(kProv) + "/regionPairings/" + name;
}

class PairingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static const bool have_tools = RunProcess({"qemu-img", "--version"}).ok();
    if (!have_tools) GTEST_SKIP() << "qemu-img is needed";
    a_ = std::make_unique<InProcessRegion>("regionA", true);
    b_ = std::make_unique<InProcessRegion>("regionB", true);
    ASSERT_TRUE(a_->ok() && b_->ok());
  }

  static std::string Token(InProcessRegion& r, Json body = Json::object()) {
    auto resp = r.Call("POST", std::string(kProv) + "/generatePairingToken", std::move(body));
    EXPECT_EQ(resp.status, 200) << resp.body.dump();
    EXPECT_EQ(resp.headers["Cache-Control"], "no-store");
    return resp.body.value("token", "");
  }
  static api::ApiResponse Pair(InProcessRegion& r, const std::string& name,
                               const std::string& token) {
    return r.Call("PUT", PairingPath(name), {{"properties", {{"pairingToken", token}}}});
  }
  // The pairings `r` lists.
  static size_t Pairings(InProcessRegion& r) {
    auto resp = r.Call("GET", std::string(kProv) + "/regionPairings");
    EXPECT_EQ(resp.status, 200) << resp.body.dump();
    return resp.body["value"].size();
  }
  // A token like `token` with one field changed.
  static std::string Altered(const std::string& token, const std::string& field, Json value) {
    auto raw = Base64Decode(token.substr(4));
    Json j = Json::parse(*raw);
    j[field] = std::move(value);
    return "SP1." + Base64Encode(j.dump());
  }

  std::unique_ptr<InProcessRegion> a_, b_;
};

TEST_F(PairingTest, BothSidesRecordThePairingAndTheLinkWorksBothWays) {
  std::string token = Token(*a_, {{"expiresInMinutes", 30}});
  ASSERT_EQ(token.rfind("SP1.", 0), 0u);
  auto decoded = DecodePairingToken(token);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->region, "regionA");
  EXPECT_EQ(decoded->fingerprint, a_->control()->pairing()->identity().fingerprint);
  EXPECT_EQ(decoded->expires_ms, a_->clock().NowMs() + 30 * 60000);

  auto put = Pair(*b_, "regionA", token);
  ASSERT_EQ(put.status, 201) << put.body.dump();
  const Json& p = put.body["properties"];
  EXPECT_EQ(put.body["id"], PairingPath("regionA"));
  EXPECT_EQ(put.body["type"], "Stratus.RecoveryServices/regionPairings");
  EXPECT_EQ(p["provisioningState"], "Succeeded");
  EXPECT_EQ(p["peerCertificateThumbprint"], a_->control()->pairing()->identity().fingerprint);
  EXPECT_EQ(p["localCertificateThumbprint"], b_->control()->pairing()->identity().fingerprint);
  EXPECT_EQ(p["initiatedBy"], "Local");
  EXPECT_FALSE(put.body.dump().find(token) != std::string::npos) << "the token is not kept";

  // A recorded B, with the certificate B presented.
  auto on_a = a_->Call("GET", PairingPath("regionB"));
  ASSERT_EQ(on_a.status, 200) << on_a.body.dump();
  EXPECT_EQ(on_a.body["properties"]["initiatedBy"], "Peer");
  EXPECT_EQ(on_a.body["properties"]["peerCertificateThumbprint"],
            b_->control()->pairing()->identity().fingerprint);
  EXPECT_EQ(Pairings(*a_), 1u);

  // The link answers both ways.
  for (auto [from, to] : {std::pair{b_.get(), "regionA"}, std::pair{a_.get(), "regionB"}}) {
    auto check = from->Call("POST", PairingPath(to) + "/checkConnection");
    ASSERT_EQ(check.status, 200);
    EXPECT_TRUE(check.body["reachable"].get<bool>()) << check.body.dump();
  }

  // The same PUT again is the same pairing: 200, nothing called (the token is used by now).
  auto again = Pair(*b_, "regionA", token);
  EXPECT_EQ(again.status, 200) << again.body.dump();

  // The token is never in the activity log.
  auto log = b_->Call("GET", "/subscriptions/sub1/providers/Stratus.Insights/activityLogs");
  ASSERT_EQ(log.status, 200);
  EXPECT_EQ(log.body.dump().find(token.substr(4, 40)), std::string::npos);
  // Newest first: the second PUT, the connection check, the first PUT.
  EXPECT_EQ(log.body["value"][0]["operationName"], "Stratus.RecoveryServices/regionPairings/write");
  EXPECT_EQ(log.body["value"][1]["operationName"],
            "Stratus.RecoveryServices/regionPairings/checkConnection/action");
}

TEST_F(PairingTest, ATokenPairsOnceAndAForgedOneNever) {
  std::string token = Token(*a_);
  ASSERT_EQ(Pair(*b_, "regionA", token).status, 201);

  InProcessRegion c("regionC", true);
  ASSERT_TRUE(c.ok());
  auto reused = Pair(c, "regionA", token);
  EXPECT_EQ(reused.status, 409) << reused.body.dump();
  EXPECT_EQ(InProcessRegion::Code(reused), "PairingTokenAlreadyUsed");

  // A secret A never made, in an otherwise good token.
  auto forged = Pair(c, "regionA", Altered(Token(*a_), "secret", std::string(64, 'a')));
  EXPECT_EQ(forged.status, 403) << forged.body.dump();
  EXPECT_EQ(InProcessRegion::Code(forged), "PairingTokenInvalid");

  // A token whose certificate is not the one A presents: the handshake fails, B sends nothing.
  auto pinned = Pair(c, "regionA", Altered(Token(*a_), "fingerprint", std::string(64, 'b')));
  EXPECT_EQ(pinned.status, 503) << pinned.body.dump();
  EXPECT_EQ(InProcessRegion::Code(pinned), "PeerRegionUnreachable");
  EXPECT_NE(pinned.body.dump().find("not the paired one"), std::string::npos) << pinned.body.dump();

  EXPECT_EQ(Pairings(c), 0u);
  EXPECT_EQ(Pairings(*a_), 1u) << "only B";
}

TEST_F(PairingTest, BadTokensAndNamesAreRefusedWithNothingRecorded) {
  std::string token = Token(*a_);
  struct Case {
    std::string name, token, code;
    int status;
  } cases[] = {
      {"regionA", "not-a-token", "InvalidPairingToken", 400},
      {"regionA", "SP1.!!!!", "InvalidPairingToken", 400},
      {"regionA", token.substr(0, token.size() - 8), "InvalidPairingToken", 400},
      {"regionA", Altered(token, "port", 0), "InvalidPairingToken", 400},
      {"regionC", token, "PairingRegionMismatch", 400},
      {"bad name!", token, "InvalidResourceName", 400},
  };
  for (auto& c : cases) {
    auto r = Pair(*b_, c.name, c.token);
    EXPECT_EQ(r.status, c.status) << c.name << " " << r.body.dump();
    EXPECT_EQ(InProcessRegion::Code(r), c.code) << r.body.dump();
  }
  auto no_token = b_->Call("PUT", PairingPath("regionA"), {{"properties", Json::object()}});
  EXPECT_EQ(no_token.status, 400);
  auto wrong_type = b_->Call("PUT", PairingPath("regionA"), {{"properties", {{"pairingToken", 5}}}});
  EXPECT_EQ(wrong_type.status, 400);
  auto unknown = b_->Call("PUT", PairingPath("regionA"),
                          {{"properties", {{"pairingToken", token}, {"x", 1}}}});
  EXPECT_EQ(unknown.status, 400);
  auto ttl = b_->Call("POST", std::string(kProv) + "/generatePairingToken",
                      {{"expiresInMinutes", 0}});
  EXPECT_EQ(ttl.status, 400);
  EXPECT_EQ(b_->Call("GET", std::string(kProv) + "/generatePairingToken").status, 405);

  // A region's own token.
  auto self = Pair(*a_, "regionA", token);
  EXPECT_EQ(self.status, 400) << self.body.dump();
  EXPECT_EQ(InProcessRegion::Code(self), "CannotPairWithSelf");

  EXPECT_EQ(Pairings(*a_), 0u);
  EXPECT_EQ(Pairings(*b_), 0u);
  // The token was not spent by any of that.
  EXPECT_EQ(Pair(*b_, "regionA", token).status, 201);
}

TEST_F(PairingTest, ExpiryIsCheckedByBothSides) {
  std::string token = Token(*a_, {{"expiresInMinutes", 1}});
  // B's clock says it expired: B does not call.
  b_->clock().AdvanceMs(120000);
  auto local = Pair(*b_, "regionA", token);
  EXPECT_EQ(local.status, 400) << local.body.dump();
  EXPECT_EQ(InProcessRegion::Code(local), "PairingTokenExpired");
  // A's clock says so (B's does not): A refuses.
  std::string token2 = Token(*a_, {{"expiresInMinutes", 1}});
  a_->clock().AdvanceMs(120000);
  b_->clock().AdvanceMs(-120000);
  auto remote = Pair(*b_, "regionA", token2);
  EXPECT_EQ(remote.status, 403) << remote.body.dump();
  EXPECT_EQ(InProcessRegion::Code(remote), "PairingTokenExpired");
  EXPECT_EQ(Pairings(*a_) + Pairings(*b_), 0u);
}

TEST_F(PairingTest, AnUnreachablePeerRecordsNothing) {
  std::string token = Token(*a_);
  a_->control()->pairing()->Stop();
  auto r = Pair(*b_, "regionA", token);
  EXPECT_EQ(r.status, 503) << r.body.dump();
  EXPECT_EQ(InProcessRegion::Code(r), "PeerRegionUnreachable");
  EXPECT_EQ(Pairings(*b_), 0u);
}

TEST_F(PairingTest, OnlyAPairedCertificateGetsThroughAndUnpairingEndsItOnBothSides) {
  ASSERT_EQ(Pair(*b_, "regionA", Token(*a_)).status, 201);
  // A certificate A never paired with (the same name as B's, even) is refused on every route.
  auto stranger = LoadOrCreateIdentity(a_->data_dir() + "/../stranger", "regionB", {"127.0.0.1"});
  ASSERT_TRUE(stranger.ok());
  auto pairing = a_->control()->pairing();
  PeerClient c(*stranger,
               {"127.0.0.1", pairing->advertised_port(), pairing->identity().fingerprint},
               std::chrono::seconds(5));
  for (auto [method, path] : {std::pair{"GET", "/peer/v1/hello"},
                              std::pair{"DELETE", "/peer/v1/pairing"}}) {
    auto r = c.Call(method, path);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 403) << r->body;
    EXPECT_NE(r->body.find("PeerNotPaired"), std::string::npos);
  }
  EXPECT_EQ(Pairings(*a_), 1u) << "the stranger's DELETE changed nothing";

  // The pairing survives a restart of A (same identity, same port).
  ASSERT_TRUE(a_->Restart());
  auto check = b_->Call("POST", PairingPath("regionA") + "/checkConnection");
  EXPECT_TRUE(check.body.value("reachable", false)) << check.body.dump();

  auto del = b_->Call("DELETE", PairingPath("regionA"));
  EXPECT_EQ(del.status, 200) << del.body.dump();
  EXPECT_EQ(del.body["peerNotified"], true);
  EXPECT_EQ(Pairings(*a_), 0u);
  EXPECT_EQ(Pairings(*b_), 0u);
  EXPECT_EQ(b_->Call("DELETE", PairingPath("regionA")).status, 204);
  EXPECT_EQ(b_->Call("POST", PairingPath("regionA") + "/checkConnection").status, 404);
  // B's certificate no longer gets through to A either.
  auto hello = a_->control()->pairing()->ClientFor("regionB");
  EXPECT_FALSE(hello.ok());
}

}  // namespace
}  // namespace stratus::recovery::site
