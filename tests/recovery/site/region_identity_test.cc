// The region's peer identity (region_identity.h): made once, loaded again, checked, and what a
// pairing pins.
#include "recovery/site/region_identity.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "core/fs.h"
#include "core/scoped_temp_dir.h"
#include "core/subprocess.h"

namespace stratus::recovery::site {
namespace {

TEST(RegionIdentityTest, IsMadeOnceAndLoadedAgain) {
  test::ScopedTempDir dir("identity");
  auto a = LoadOrCreateIdentity(dir.Path("peer"), "regionA", {"127.0.0.1", "regiona.example"});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->fingerprint.size(), 64u);
  struct stat st {};
  ASSERT_EQ(stat(a->key_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "the key is the region's secret";
  auto again = LoadOrCreateIdentity(dir.Path("peer"), "regionA", {"127.0.0.1"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->fingerprint, a->fingerprint) << "made once";
  auto fp = CertificateFingerprint(a->cert_pem);
  ASSERT_TRUE(fp.ok());
  EXPECT_EQ(*fp, a->fingerprint);
  // What openssl itself reads: the subject, the names, the curve.
  auto text = RunProcess({"openssl", "x509", "-in", a->cert_file, "-noout", "-text"});
  if (text.ok() && text->exit_code == 0) {
    EXPECT_NE(text->out.find("CN = stratus-region regionA"), std::string::npos) << text->out;
    EXPECT_NE(text->out.find("IP Address:127.0.0.1"), std::string::npos) << text->out;
    EXPECT_NE(text->out.find("DNS:regiona.example"), std::string::npos) << text->out;
    EXPECT_NE(text->out.find("prime256v1"), std::string::npos) << text->out;
  }
  // Another region's identity is another key.
  auto b = LoadOrCreateIdentity(dir.Path("peerB"), "regionB", {"127.0.0.1"});
  ASSERT_TRUE(b.ok());
  EXPECT_NE(b->fingerprint, a->fingerprint);
}

TEST(RegionIdentityTest, AKeyThatIsNotTheCertificatesIsRefused) {
  test::ScopedTempDir dir("identity");
  auto a = LoadOrCreateIdentity(dir.Path("a"), "regionA", {});
  auto b = LoadOrCreateIdentity(dir.Path("b"), "regionB", {});
  ASSERT_TRUE(a.ok() && b.ok());
  auto other_key = ReadFile(b->key_file);
  ASSERT_TRUE(other_key.ok());
  ASSERT_TRUE(WriteFileAtomic(a->key_file, *other_key, 0600).ok());
  auto mixed = LoadOrCreateIdentity(dir.Path("a"), "regionA", {});
  EXPECT_FALSE(mixed.ok());
  EXPECT_FALSE(CertificateFingerprint("not a certificate").ok());
}

}  // namespace
}  // namespace stratus::recovery::site
