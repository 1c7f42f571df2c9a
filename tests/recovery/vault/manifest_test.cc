#include "recovery/vault/manifest.h"

#include <gtest/gtest.h>

namespace stratus::recovery::vault {
namespace {

SecretKey Key(uint8_t b) {
  SecretKey k;
  std::memset(k.data(), b, k.size());
  return k;
}

RecoveryPoint Point() {
  RecoveryPoint p;
  p.point_id = "20261122T040506Z-0a1b2c3d";
  p.vault_id = "vault-1";
  p.created_ms = 1795000000000;
  p.parent_point_id = "20261121T040506Z-00000000";
  p.consistency = "FileSystemConsistent";
  p.vm_config = {{"hardwareProfile", {{"vmSize", "Standard_S2"}}}, {"ratio", 0.1}};
  p.metadata = {{"job", "j1"}};
  DiskIndex d;
  d.name = "osdisk";
  d.size = (4u << 20) + 512;
  d.chunk_size = 1u << 20;
  d.chunks.assign(d.slot_count(), ChunkId::Hole());
  d.chunks[1].bytes.fill(7);
  d.chunks[4].bytes.fill(9);
  p.disks.push_back(d);
  return p;
}

TEST(ManifestTest, RoundTrips) {
  RecoveryPoint p = Point();
  auto text = SerializeManifest(p, Key(1));
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  auto back = ParseManifest(*text, Key(1), p.vault_id, p.point_id);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->created_ms, p.created_ms);
  EXPECT_EQ(back->parent_point_id, p.parent_point_id);
  EXPECT_EQ(back->consistency, p.consistency);
  EXPECT_EQ(back->vm_config, p.vm_config);
  EXPECT_EQ(back->metadata, p.metadata);
  ASSERT_EQ(back->disks.size(), 1u);
  EXPECT_EQ(back->disks[0].chunks, p.disks[0].chunks);
  EXPECT_EQ(back->disks[0].size, p.disks[0].size);
  ASSERT_NE(back->FindDisk("osdisk"), nullptr);
  EXPECT_EQ(back->FindDisk("data0"), nullptr);
}

TEST(ManifestTest, AnyEditIsDetected) {
  RecoveryPoint p = Point();
  std::string text = *SerializeManifest(p, Key(1));
  Json doc = Json::parse(text);
  std::vector<std::function<void(Json&)>> edits = {
      [](Json& d) { d["consistency"] = "ApplicationConsistent"; },
      [](Json& d) { d["vm_config"]["hardwareProfile"]["vmSize"] = "Standard_S8"; },
      [](Json& d) { d["disks"][0]["size"] = d["disks"][0]["size"].get<uint64_t>() + 1; },
      [](Json& d) { d["created_ms"] = 1; },
      [](Json& d) { d["signature"]["value"] = std::string(64, '0'); },
      [](Json& d) { d.erase("signature"); },
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    Json bad = doc;
    edits[i](bad);
    auto r = ParseManifest(bad.dump(), Key(1), p.vault_id, p.point_id);
    ASSERT_FALSE(r.ok()) << "edit " << i;
    EXPECT_EQ(r.status().arm_code(), "ManifestTampered") << r.status().ToString();
  }
  // A byte flipped inside the base64 index.
  std::string flipped = text;
  size_t pos = flipped.find("\"index\":\"") + 20;
  flipped[pos] = flipped[pos] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(ParseManifest(flipped, Key(1), p.vault_id, p.point_id).ok());
  // Another key.
  EXPECT_EQ(ParseManifest(text, Key(2), p.vault_id, p.point_id).status().arm_code(),
            "ManifestTampered");
}

TEST(ManifestTest, AManifestUnderAnotherNameOrVaultIsRejected) {
  RecoveryPoint p = Point();
  std::string text = *SerializeManifest(p, Key(1));
  EXPECT_EQ(ParseManifest(text, Key(1), p.vault_id, "20261122T000000Z-ffffffff").status().arm_code(),
            "ManifestTampered");
  EXPECT_EQ(ParseManifest(text, Key(1), "vault-2", p.point_id).status().arm_code(),
            "ManifestTampered");
}

TEST(ManifestTest, GarbageAndNewerVersionsAreNamed) {
  EXPECT_EQ(ParseManifest("{", Key(1), "v", "p").status().arm_code(), "ManifestCorrupt");
  Json newer = {{"format", "stratus-recovery-point"}, {"version", 2}};
  EXPECT_EQ(ParseManifest(newer.dump(), Key(1), "v", "p").status().arm_code(),
            "UnsupportedFormatVersion");
}

TEST(ManifestTest, DuplicateDiskNamesAndBadIdsAreRefused) {
  RecoveryPoint p = Point();
  p.disks.push_back(p.disks[0]);
  EXPECT_FALSE(SerializeManifest(p, Key(1)).ok());
  EXPECT_FALSE(ValidatePointId("../etc").ok());
  EXPECT_FALSE(ValidatePointId("").ok());
  EXPECT_TRUE(ValidatePointId(NewPointId(1795000000000)).ok());
  EXPECT_EQ(NewPointId(1795000000000).substr(0, 16), "20261118T110640Z");
}

}  // namespace
}  // namespace stratus::recovery::vault
