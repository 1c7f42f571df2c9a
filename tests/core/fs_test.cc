#include "core/fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/scoped_temp_dir.h"

namespace stratus {
namespace {

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(dir_.ok()); }

  std::vector<std::string> Entries() const {
    std::vector<std::string> out;
    for (auto& e : std::filesystem::directory_iterator(dir_.path()))
      out.push_back(e.path().filename().string());
    return out;
  }

  static int Mode(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return -1;
    return st.st_mode & 07777;
  }

  test::ScopedTempDir dir_{"fs"};
};

TEST_F(FsTest, WriteFileAtomicWritesContentAndLeavesNoTempFile) {
  std::string path = dir_.Path("state.json");
  ASSERT_TRUE(WriteFileAtomic(path, "hello\n").ok());
  auto text = ReadFile(path);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "hello\n");
  EXPECT_EQ(Entries(), std::vector<std::string>{"state.json"});
}

TEST_F(FsTest, WriteFileAtomicReplacesExistingContent) {
  std::string path = dir_.Path("f");
  ASSERT_TRUE(WriteFileAtomic(path, std::string(10000, 'a')).ok());
  ASSERT_TRUE(WriteFileAtomic(path, "short").ok());
  EXPECT_EQ(*ReadFile(path), "short");
  EXPECT_EQ(Entries(), std::vector<std::string>{"f"});
}

TEST_F(FsTest, WriteFileAtomicHonoursModeDespiteUmask) {
  mode_t old = ::umask(077);
  std::string shared = dir_.Path("shared");
  std::string secret = dir_.Path("secret");
  Status a = WriteFileAtomic(shared, "x", 0644);
  Status b = WriteFileAtomic(secret, "y", 0600);
  ::umask(old);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(Mode(shared), 0644);
  EXPECT_EQ(Mode(secret), 0600);
  ASSERT_TRUE(WriteFileAtomic(secret, "z", 0755).ok());
  EXPECT_EQ(Mode(secret), 0755);
}

TEST_F(FsTest, WriteFileAtomicIntoMissingDirectoryFailsNamingThePath) {
  std::string path = dir_.Path("no/such/dir/f");
  Status st = WriteFileAtomic(path, "x");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_NE(st.message().find(dir_.Path("no/such/dir/f")), std::string::npos) << st.message();
}

TEST_F(FsTest, ReadFileOfMissingFileIsNotFound) {
  auto r = ReadFile(dir_.Path("absent"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("absent"), std::string::npos);
}

TEST_F(FsTest, ReadFileKeepsBinaryBytes) {
  std::string data("a\0b\xff", 4);
  ASSERT_TRUE(WriteFileAtomic(dir_.Path("bin"), data).ok());
  EXPECT_EQ(*ReadFile(dir_.Path("bin")), data);
}

TEST_F(FsTest, MakeDirsCreatesNestedDirectoriesWithMode) {
  std::string d = dir_.Path("a/b/c");
  ASSERT_TRUE(MakeDirs(d, 0700).ok());
  EXPECT_TRUE(PathExists(d));
  EXPECT_EQ(Mode(d), 0700);
  EXPECT_TRUE(MakeDirs(d, 0700).ok());  // exists already: fine
  // The mode is exact whatever the umask, and nothing but the folders is left beside them.
  const mode_t old = ::umask(077);
  std::string q = dir_.Path("q/r");
  Status made = MakeDirs(q, 0711);
  ::umask(old);
  ASSERT_TRUE(made.ok()) << made.ToString();
  EXPECT_EQ(Mode(dir_.Path("q")), 0711);
  EXPECT_EQ(Mode(q), 0711);
  std::vector<std::string> names;
  for (auto& e : std::filesystem::directory_iterator(dir_.path()))
    names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "q"}));
  // Side by side: every caller succeeds and one folder is made.
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] { ok += MakeDirs(dir_.Path("race/x/y"), 0711).ok(); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(Mode(dir_.Path("race/x/y")), 0711);
  size_t in_race = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_.Path("race")))
    in_race += !e.path().empty();
  EXPECT_EQ(in_race, 1u) << "no temporary folder left";
}

TEST_F(FsTest, RemoveFileAndTreeAreIdempotent) {
  std::string f = dir_.Path("f");
  ASSERT_TRUE(WriteFileAtomic(f, "x").ok());
  EXPECT_TRUE(PathExists(f));
  EXPECT_TRUE(RemoveFile(f).ok());
  EXPECT_FALSE(PathExists(f));
  EXPECT_TRUE(RemoveFile(f).ok());

  std::string t = dir_.Path("tree/sub");
  ASSERT_TRUE(MakeDirs(t).ok());
  ASSERT_TRUE(WriteFileAtomic(JoinPath(t, "g"), "y").ok());
  EXPECT_TRUE(RemoveTree(dir_.Path("tree")).ok());
  EXPECT_FALSE(PathExists(dir_.Path("tree")));
  EXPECT_TRUE(RemoveTree(dir_.Path("tree")).ok());
}

TEST_F(FsTest, FsyncDir) {
  EXPECT_TRUE(FsyncDir(dir_.path()).ok());
  EXPECT_FALSE(FsyncDir(dir_.Path("missing")).ok());
}

TEST_F(FsTest, FreeBytesMatchesStatvfs) {
  auto free = FreeBytes(dir_.path());
  ASSERT_TRUE(free.ok()) << free.status().ToString();
  auto space = std::filesystem::space(dir_.path());
  EXPECT_GT(*free, 0u);
  // The file system is shared with other processes: allow some drift between the two calls.
  uint64_t diff = *free > space.available ? *free - space.available : space.available - *free;
  EXPECT_LT(diff, 256u * 1024 * 1024) << *free << " vs " << space.available;
  EXPECT_FALSE(FreeBytes(dir_.Path("missing")).ok());
}

TEST(JoinPathTest, Joins) {
  EXPECT_EQ(JoinPath("/a", "b"), "/a/b");
  EXPECT_EQ(JoinPath("/a/", "b"), "/a/b");
  EXPECT_EQ(JoinPath("", "b"), "b");
  EXPECT_EQ(JoinPath("/a", "b/c.qcow2"), "/a/b/c.qcow2");
}

}  // namespace
}  // namespace stratus
