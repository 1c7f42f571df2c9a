// Qcow2DiskEngine against the real qemu-img, in a temp dir.
#include "storage/qcow2_disk_engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/fs.h"
#include "core/json.h"
#include "core/scoped_temp_dir.h"
#include "core/subprocess.h"

namespace stratus::storage {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kMiB = 1024 * 1024;

class Qcow2DiskEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    if (!RunProcess({"qemu-img", "--version"}).ok()) GTEST_SKIP() << "qemu-img is not installed";
  }

  std::string P(const std::string& name) const { return dir_.Path(name); }

  Json Info(const std::string& path) {
    auto out = RunChecked({"qemu-img", "info", "-U", "--output=json", path});
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? Json::parse(*out) : Json();
  }

  // Writes `pattern` over [offset, offset+len) of a qcow2 image.
  void Write(const std::string& path, int pattern, uint64_t offset, uint64_t len) {
    char cmd[128];
    std::snprintf(cmd, sizeof cmd, "write -P 0x%02x %llu %llu", pattern,
                  static_cast<unsigned long long>(offset), static_cast<unsigned long long>(len));
    auto r = RunChecked({"qemu-io", "-f", "qcow2", "-c", cmd, path});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  // True when every byte of [offset, offset+len) equals `pattern`.
  bool Reads(const std::string& path, int pattern, uint64_t offset, uint64_t len) {
    char cmd[128];
    std::snprintf(cmd, sizeof cmd, "read -P 0x%02x %llu %llu", pattern,
                  static_cast<unsigned long long>(offset), static_cast<unsigned long long>(len));
    auto r = RunProcess({"qemu-io", "-f", "qcow2", "-c", cmd, path});
    return r.ok() && r->exit_code == 0 && r->out.find("Pattern verification failed") == std::string::npos;
  }

  // qemu-img compare: 0 identical, 1 different.
  int Compare(const std::string& a, const std::string& b) {
    auto r = RunProcess({"qemu-img", "compare", "-q", a, b});
    return r.ok() ? r->exit_code : -1;
  }

  test::ScopedTempDir dir_{"qcow2"};
  Qcow2DiskEngine engine_;
};

TEST_F(Qcow2DiskEngineTest, CreateEmptyMakesAThinQcow2) {
  const uint64_t size = 4ull << 30;  // 4 GiB virtual
  ASSERT_TRUE(engine_.CreateEmpty(P("d.qcow2"), size).ok());
  Json info = Info(P("d.qcow2"));
  EXPECT_EQ(info["format"], "qcow2");
  EXPECT_EQ(info["virtual-size"], size);
  EXPECT_FALSE(info.contains("backing-filename"));
  auto u = engine_.Usage(P("d.qcow2"));
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->virtual_bytes, size);
  EXPECT_GT(u->allocated_bytes, 0u);
  EXPECT_LT(u->allocated_bytes, 4 * kMiB);  // thin: metadata only
  EXPECT_FALSE(PathExists(P("d.qcow2.creating")));
}

TEST_F(Qcow2DiskEngineTest, CreateOverAnExistingFileIsAConflict) {
  ASSERT_TRUE(engine_.CreateEmpty(P("d.qcow2"), 64 * kMiB).ok());
  Write(P("d.qcow2"), 0x11, 0, kMiB);
  Status st = engine_.CreateEmpty(P("d.qcow2"), 128 * kMiB);
  EXPECT_EQ(st.code(), StatusCode::kConflict);
  EXPECT_THAT(st.message(), HasSubstr(P("d.qcow2")));
  ASSERT_TRUE(engine_.CreateEmpty(P("src.qcow2"), 64 * kMiB).ok());
  EXPECT_EQ(engine_.CreateFromSource(P("d.qcow2"), P("src.qcow2"), 0, "").code(),
            StatusCode::kConflict);
  // The existing disk is untouched.
  EXPECT_EQ(engine_.Usage(P("d.qcow2"))->virtual_bytes, 64 * kMiB);
  EXPECT_TRUE(Reads(P("d.qcow2"), 0x11, 0, kMiB));
}

TEST_F(Qcow2DiskEngineTest, CreateFromSourceCopiesTheData) {
  ASSERT_TRUE(engine_.CreateEmpty(P("src.qcow2"), 64 * kMiB).ok());
  Write(P("src.qcow2"), 0x5a, 0, kMiB);
  Write(P("src.qcow2"), 0xa5, 32 * kMiB, kMiB);
  ASSERT_TRUE(engine_.CreateFromSource(P("copy.qcow2"), P("src.qcow2"), 0, "").ok());
  EXPECT_EQ(Compare(P("src.qcow2"), P("copy.qcow2")), 0);
  EXPECT_TRUE(Reads(P("copy.qcow2"), 0x5a, 0, kMiB));
  EXPECT_TRUE(Reads(P("copy.qcow2"), 0xa5, 32 * kMiB, kMiB));
  EXPECT_TRUE(Reads(P("copy.qcow2"), 0x00, 8 * kMiB, kMiB));
  Json info = Info(P("copy.qcow2"));
  EXPECT_EQ(info["format"], "qcow2");
  EXPECT_EQ(info["virtual-size"], 64 * kMiB);
  EXPECT_FALSE(info.contains("backing-filename"));  // an independent copy
  // Only the written data is allocated.
  EXPECT_LT(engine_.Usage(P("copy.qcow2"))->allocated_bytes, 8 * kMiB);
  // Changing the copy leaves the source alone.
  Write(P("copy.qcow2"), 0x77, 0, kMiB);
  EXPECT_TRUE(Reads(P("src.qcow2"), 0x5a, 0, kMiB));
  EXPECT_EQ(Compare(P("src.qcow2"), P("copy.qcow2")), 1);
  EXPECT_FALSE(PathExists(P("copy.qcow2.creating")));
}

TEST_F(Qcow2DiskEngineTest, CreateFromSourceGrowsButNeverShrinks) {
  ASSERT_TRUE(engine_.CreateEmpty(P("src.qcow2"), 64 * kMiB).ok());
  Write(P("src.qcow2"), 0x5a, 0, kMiB);
  ASSERT_TRUE(engine_.CreateFromSource(P("big.qcow2"), P("src.qcow2"), 256 * kMiB, "").ok());
  EXPECT_EQ(engine_.Usage(P("big.qcow2"))->virtual_bytes, 256 * kMiB);
  EXPECT_TRUE(Reads(P("big.qcow2"), 0x5a, 0, kMiB));
  EXPECT_EQ(Compare(P("src.qcow2"), P("big.qcow2")), 0);  // the new tail reads as zeroes
  ASSERT_TRUE(engine_.CreateFromSource(P("small.qcow2"), P("src.qcow2"), 16 * kMiB, "").ok());
  EXPECT_EQ(engine_.Usage(P("small.qcow2"))->virtual_bytes, 64 * kMiB);
}

TEST_F(Qcow2DiskEngineTest, CreateFromARawSource) {
  std::string raw = P("src.raw");
  ASSERT_TRUE(RunChecked({"qemu-img", "create", "-q", "-f", "raw", raw, "8M"}).ok());
  ASSERT_TRUE(RunChecked({"qemu-io", "-f", "raw", "-c", "write -P 0x3c 0 64k", raw}).ok());
  ASSERT_TRUE(engine_.CreateFromSource(P("d.qcow2"), raw, 0, "raw").ok());
  EXPECT_EQ(Info(P("d.qcow2"))["format"], "qcow2");
  EXPECT_TRUE(Reads(P("d.qcow2"), 0x3c, 0, 64 * 1024));
}

TEST_F(Qcow2DiskEngineTest, MissingOrUnreadableSourceFailsCleanly) {
  Status missing = engine_.CreateFromSource(P("d.qcow2"), P("nope.qcow2"), 0, "");
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("nope.qcow2"));
  ASSERT_TRUE(MakeDirs(P("adir")).ok());
  Status bad = engine_.CreateFromSource(P("d.qcow2"), P("adir"), 0, "");
  EXPECT_FALSE(bad.ok());
  EXPECT_FALSE(PathExists(P("d.qcow2")));
  EXPECT_FALSE(PathExists(P("d.qcow2.creating")));
}

TEST_F(Qcow2DiskEngineTest, CreateInAMissingDirectoryFails) {
  Status st = engine_.CreateEmpty(P("no/such/d.qcow2"), 64 * kMiB);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_THAT(st.message(), HasSubstr("qemu-img"));
}

TEST_F(Qcow2DiskEngineTest, LeftoverTempFileFromACrashIsReplaced) {
  ASSERT_TRUE(WriteFileAtomic(P("d.qcow2.creating"), "half-written garbage").ok());
  ASSERT_TRUE(engine_.CreateEmpty(P("d.qcow2"), 64 * kMiB).ok());
  EXPECT_EQ(Info(P("d.qcow2"))["format"], "qcow2");
  EXPECT_FALSE(PathExists(P("d.qcow2.creating")));
}

TEST_F(Qcow2DiskEngineTest, GrowKeepsTheDataAndRefusesToShrink) {
  ASSERT_TRUE(engine_.CreateEmpty(P("d.qcow2"), 64 * kMiB).ok());
  Write(P("d.qcow2"), 0x5a, 0, kMiB);
  ASSERT_TRUE(engine_.Grow(P("d.qcow2"), 128 * kMiB).ok());
  EXPECT_EQ(engine_.Usage(P("d.qcow2"))->virtual_bytes, 128 * kMiB);
  EXPECT_TRUE(Reads(P("d.qcow2"), 0x5a, 0, kMiB));
  EXPECT_TRUE(engine_.Grow(P("d.qcow2"), 128 * kMiB).ok());  // same size: nothing to do

  Status shrink = engine_.Grow(P("d.qcow2"), 64 * kMiB);
  EXPECT_EQ(shrink.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(shrink.message(), HasSubstr("grow"));
  EXPECT_EQ(engine_.Usage(P("d.qcow2"))->virtual_bytes, 128 * kMiB);
  EXPECT_TRUE(Reads(P("d.qcow2"), 0x5a, 0, kMiB));

  EXPECT_FALSE(engine_.Grow(P("missing.qcow2"), 128 * kMiB).ok());
}

TEST_F(Qcow2DiskEngineTest, RemoveIsIdempotentAndCleansTempFiles) {
  ASSERT_TRUE(engine_.CreateEmpty(P("d.qcow2"), 64 * kMiB).ok());
  ASSERT_TRUE(WriteFileAtomic(P("d.qcow2.creating"), "x").ok());
  EXPECT_TRUE(engine_.Remove(P("d.qcow2")).ok());
  EXPECT_FALSE(PathExists(P("d.qcow2")));
  EXPECT_FALSE(PathExists(P("d.qcow2.creating")));
  EXPECT_TRUE(engine_.Remove(P("d.qcow2")).ok());
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path()));
}

TEST_F(Qcow2DiskEngineTest, UsageOfAMissingFileFails) {
  auto u = engine_.Usage(P("missing.qcow2"));
  ASSERT_FALSE(u.ok());
  EXPECT_THAT(u.status().message(), HasSubstr("missing.qcow2"));
}

TEST_F(Qcow2DiskEngineTest, InspectTellsFormatSizesBackingAndBitmaps) {
  ASSERT_TRUE(engine_.CreateEmpty(P("d.qcow2"), 64 * kMiB).ok());
  Write(P("d.qcow2"), 0x5a, 0, kMiB);
  auto info = engine_.Inspect(P("d.qcow2"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->format, "qcow2");
  EXPECT_EQ(info->virtual_bytes, 64 * kMiB);
  EXPECT_GT(info->allocated_bytes, kMiB);
  EXPECT_EQ(info->backing, "");
  EXPECT_TRUE(info->bitmaps.empty());

  ASSERT_TRUE(RunChecked({"qemu-img", "create", "-q", "-f", "qcow2", "-b", P("d.qcow2"), "-F",
                          "qcow2", P("top.qcow2")})
                  .ok());
  auto top = engine_.Inspect(P("top.qcow2"));
  ASSERT_TRUE(top.ok()) << top.status().ToString();
  EXPECT_EQ(top->backing, P("d.qcow2"));
  EXPECT_EQ(engine_.Inspect(P("missing.qcow2")).status().code(), StatusCode::kNotFound);
}

TEST_F(Qcow2DiskEngineTest, BitmapsAreAddedListedAndRemovedByName) {
  ASSERT_TRUE(engine_.CreateEmpty(P("d.qcow2"), 64 * kMiB).ok());
  ASSERT_TRUE(engine_.AddBitmap(P("d.qcow2"), "stratus-1").ok());
  Status again = engine_.AddBitmap(P("d.qcow2"), "stratus-1");
  EXPECT_EQ(again.code(), StatusCode::kConflict);
  EXPECT_EQ(engine_.AddBitmap(P("d.qcow2"), "").code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(engine_.AddBitmap(P("d.qcow2"), "stratus-2").ok());
  auto list = engine_.ListBitmaps(P("d.qcow2"));
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "stratus-1");
  EXPECT_TRUE((*list)[0].enabled);
  EXPECT_FALSE((*list)[0].in_use);
  EXPECT_EQ((*list)[0].granularity, 65536u);
  EXPECT_EQ(engine_.Inspect(P("d.qcow2"))->bitmaps.size(), 2u);

  ASSERT_TRUE(engine_.RemoveBitmap(P("d.qcow2"), "stratus-1").ok());
  EXPECT_EQ(engine_.RemoveBitmap(P("d.qcow2"), "stratus-1").code(), StatusCode::kNotFound);
  list = engine_.ListBitmaps(P("d.qcow2"));
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "stratus-2");
  EXPECT_EQ(engine_.ListBitmaps(P("missing.qcow2")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(engine_.AddBitmap(P("missing.qcow2"), "b").code(), StatusCode::kNotFound);
}

TEST_F(Qcow2DiskEngineTest, APinnedSourceFormatIsNeverProbed) {
  // A "raw" file whose bytes are a qcow2 header naming another file: read as raw, the copy holds
  // those bytes and refers to nothing.
  ASSERT_TRUE(WriteFileAtomic(P("secret"), std::string(65536, 's')).ok());
  ASSERT_TRUE(RunChecked({"qemu-img", "create", "-q", "-f", "qcow2", "-b", P("secret"), "-F",
                          "raw", P("trap"), "64k"})
                  .ok());
  ASSERT_TRUE(engine_.CreateFromSource(P("d.qcow2"), P("trap"), 0, "raw").ok());
  auto info = engine_.Inspect(P("d.qcow2"));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->backing, "");
  auto same = RunProcess({"qemu-img", "compare", "-q", "-f", "raw", "-F", "qcow2", P("trap"),
                          P("d.qcow2")});
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->exit_code, 0);
  EXPECT_FALSE(Reads(P("d.qcow2"), 's', 0, 4096));
}

TEST_F(Qcow2DiskEngineTest, OverlayOnAMissingNbdExportLeavesNothing) {
  Status st = engine_.CreateOverNbd(P("o.qcow2"), P("no-server.sock"), 64 * kMiB);
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_FALSE(PathExists(P("o.qcow2")));
  EXPECT_FALSE(PathExists(P("o.qcow2.creating")));
  ASSERT_TRUE(engine_.CreateEmpty(P("o.qcow2"), 64 * kMiB).ok());
  EXPECT_EQ(engine_.CreateOverNbd(P("o.qcow2"), P("no-server.sock"), 64 * kMiB).code(),
            StatusCode::kConflict);
}

// An engine with only the required calls: the optional ones say so and change nothing.
class MinimalEngine final : public DiskEngine {
 public:
  Status CreateEmpty(const std::string&, uint64_t) override { return Status::Ok(); }
  Status CreateFromSource(const std::string&, const std::string&, uint64_t,
                          const std::string&) override {
    return Status::Ok();
  }
  Status Grow(const std::string&, uint64_t) override { return Status::Ok(); }
  Result<DiskUsage> Usage(const std::string&) override { return DiskUsage{}; }
  Result<DiskInfo> Inspect(const std::string&) override { return DiskInfo{}; }
  Status Remove(const std::string&) override { return Status::Ok(); }
};

TEST(DiskEngineDefaultsTest, OptionalCapabilitiesAreNotSupported) {
  MinimalEngine e;
  Status overlay = e.CreateOverNbd("pool/d", "/run/x.sock", 1);
  EXPECT_EQ(overlay.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(overlay.arm_code(), kNotSupported);
  EXPECT_THAT(overlay.message(), HasSubstr("pool/d"));
  EXPECT_EQ(e.AddBitmap("pool/d", "b").arm_code(), kNotSupported);
  auto list = e.ListBitmaps("pool/d");
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
  EXPECT_EQ(e.RemoveBitmap("pool/d", "b").code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace stratus::storage
