#include "auth/token_authenticator.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "core/fs.h"
#include "core/scoped_temp_dir.h"
#include "store/sqlite_store.h"

namespace stratus::auth {
namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class TokenAuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    OpenStore();
  }

  void OpenStore() {
    store_.reset();
    auto s = store::SqliteStore::Open(dir_.Path("state.db"));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }

  std::unique_ptr<TokenAuthenticator> Init() {
    auto a = TokenAuthenticator::Init(store_.get(), dir_.path());
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? std::move(a).value() : nullptr;
  }

  std::string AdminToken() { return Trim(*ReadFile(dir_.Path("admin.token"))); }

  static void ExpectUnauthorized(const Result<Principal>& r) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnauthorized);
    EXPECT_EQ(r.status().http_status(), 401);
    EXPECT_EQ(r.status().arm_code(), "AuthenticationFailed");
    EXPECT_FALSE(r.status().message().empty());
  }

  test::ScopedTempDir dir_{"auth"};
  std::unique_ptr<store::Store> store_;
};

TEST_F(TokenAuthenticatorTest, FirstInitWritesAdminTokenWithMode0600) {
  auto a = Init();
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->created_admin_token());
  EXPECT_EQ(a->admin_token_path(), dir_.Path("admin.token"));
  struct stat st;
  ASSERT_EQ(::stat(dir_.Path("admin.token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600);
  std::string token = AdminToken();
  EXPECT_EQ(token.rfind("stk_", 0), 0u) << token;
  EXPECT_EQ(token.size(), 4u + 64u);  // 256 random bits in hex
  auto p = a->Authenticate("Bearer " + token);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->name, "admin");
  EXPECT_EQ(p->role, "Owner");
}

TEST_F(TokenAuthenticatorTest, SecondInitKeepsTheToken) {
  ASSERT_NE(Init(), nullptr);
  std::string token = AdminToken();
  OpenStore();  // a restarted daemon
  auto again = Init();
  ASSERT_NE(again, nullptr);
  EXPECT_FALSE(again->created_admin_token());
  EXPECT_EQ(AdminToken(), token);
  EXPECT_TRUE(again->Authenticate("Bearer " + token).ok());
}

TEST_F(TokenAuthenticatorTest, LostTokenFileIsRecreated) {
  ASSERT_NE(Init(), nullptr);
  std::string old_token = AdminToken();
  ASSERT_TRUE(RemoveFile(dir_.Path("admin.token")).ok());
  auto again = Init();
  ASSERT_NE(again, nullptr);
  EXPECT_TRUE(again->created_admin_token());
  std::string token = AdminToken();
  EXPECT_NE(token, old_token);
  EXPECT_TRUE(again->Authenticate("Bearer " + token).ok());
}

TEST_F(TokenAuthenticatorTest, RejectsMissingMalformedAndUnknownTokens) {
  auto a = Init();
  ASSERT_NE(a, nullptr);
  std::string token = AdminToken();
  ExpectUnauthorized(a->Authenticate(""));
  ExpectUnauthorized(a->Authenticate("Bearer"));
  ExpectUnauthorized(a->Authenticate("Bearer "));
  ExpectUnauthorized(a->Authenticate("Basic " + token));
  ExpectUnauthorized(a->Authenticate(token));
  ExpectUnauthorized(a->Authenticate("bearer" + token));
  ExpectUnauthorized(a->Authenticate("Bearer stk_" + std::string(64, '0')));
  ExpectUnauthorized(a->Authenticate("Bearer " + token + "x"));
  ExpectUnauthorized(a->Authenticate("Bearer " + token.substr(0, token.size() - 1)));
  ExpectUnauthorized(a->Authenticate("Bearerx " + token));
}

TEST_F(TokenAuthenticatorTest, TheSchemeIsCaseInsensitive) {
  // RFC 7235 2.1: auth-scheme is a case-insensitive token, followed by one or more spaces.
  auto a = Init();
  ASSERT_NE(a, nullptr);
  std::string token = AdminToken();
  for (std::string h : {"bearer " + token, "BEARER " + token, "BeArEr " + token,
                        "Bearer   " + token, "Bearer " + token + " "}) {
    auto p = a->Authenticate(h);
    ASSERT_TRUE(p.ok()) << h << ": " << p.status().ToString();
    EXPECT_EQ(p->name, "admin");
  }
}

TEST_F(TokenAuthenticatorTest, IssuedTokensAuthenticateAsTheirPrincipal) {
  auto a = Init();
  ASSERT_NE(a, nullptr);
  auto t1 = a->Issue({"alice", "Reader"});
  auto t2 = a->Issue({"bob", "Contributor"});
  ASSERT_TRUE(t1.ok());
  ASSERT_TRUE(t2.ok());
  EXPECT_NE(*t1, *t2);
  auto p1 = a->Authenticate("Bearer " + *t1);
  auto p2 = a->Authenticate("Bearer " + *t2);
  ASSERT_TRUE(p1.ok());
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(p1->name, "alice");
  EXPECT_EQ(p1->role, "Reader");
  EXPECT_EQ(p2->name, "bob");
}

TEST_F(TokenAuthenticatorTest, StoreHoldsOnlyTheSha256OfTokens) {
  auto a = Init();
  ASSERT_NE(a, nullptr);
  std::string token = AdminToken();
  auto issued = a->Issue({"alice", "Reader"});
  ASSERT_TRUE(issued.ok());
  auto setting = store_->GetSetting("admin_token_sha256");
  ASSERT_TRUE(setting.ok());
  ASSERT_TRUE(setting->has_value());
  EXPECT_EQ(**setting, Sha256Hex(token));
  EXPECT_TRUE(store_->GetSetting("token." + Sha256Hex(*issued))->has_value());
  EXPECT_FALSE(store_->GetSetting("token." + *issued)->has_value());
  store_.reset();  // flush and close
  for (const char* f : {"state.db", "state.db-wal"}) {
    auto bytes = ReadFile(dir_.Path(f));
    if (!bytes.ok()) continue;
    EXPECT_EQ(bytes->find(token), std::string::npos) << f << " holds the admin token";
    EXPECT_EQ(bytes->find(token.substr(4)), std::string::npos) << f;
    EXPECT_EQ(bytes->find(*issued), std::string::npos) << f << " holds an issued token";
  }
}

TEST(Sha256HexTest, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace stratus::auth
