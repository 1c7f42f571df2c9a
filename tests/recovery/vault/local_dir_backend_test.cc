#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

#include "recovery/vault/object_backend.h"
#include "vault_test_util.h"

namespace stratus::recovery::vault {
namespace {

TEST(LocalDirBackendTest, PutGetExistsDeleteList) {
  test::TempDir tmp;
  auto b = LocalDirBackend::Open(tmp.Path("store"));
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  auto& be = **b;
  ASSERT_TRUE(be.Put("chunks/ab/cdef", "hello", Durability::kDeferred).ok());
  ASSERT_TRUE(be.Put("points/p1.json", "{}", Durability::kImmediate).ok());
  ASSERT_TRUE(be.Sync().ok());
  std::string out;
  ASSERT_TRUE(be.Get("chunks/ab/cdef", &out).ok());
  EXPECT_EQ(out, "hello");
  EXPECT_TRUE(*be.Exists("points/p1.json"));
  EXPECT_FALSE(*be.Exists("points/p2.json"));
  Status missing = be.Get("points/p2.json", &out);
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.arm_code(), "ObjectNotFound");

  ASSERT_TRUE(be.Put("chunks/ab/cdef", "replaced", Durability::kDeferred).ok());
  ASSERT_TRUE(be.Get("chunks/ab/cdef", &out).ok());
  EXPECT_EQ(out, "replaced");

  std::set<std::string> keys;
  ASSERT_TRUE(be.List("chunks/", [&](std::string_view k, uint64_t size) {
                  keys.insert(std::string(k));
                  EXPECT_EQ(size, 8u);
                  return Status::Ok();
                }).ok());
  EXPECT_EQ(keys, std::set<std::string>{"chunks/ab/cdef"});
  ASSERT_TRUE(be.Delete("chunks/ab/cdef", Durability::kDeferred).ok());
  ASSERT_TRUE(be.Delete("chunks/ab/cdef", Durability::kImmediate).ok());  // idempotent
  EXPECT_FALSE(*be.Exists("chunks/ab/cdef"));
  // No temporary files remain after successful puts.
  EXPECT_EQ(*be.CleanupIncompletePuts(), 0u);
}

TEST(LocalDirBackendTest, KeysCannotEscapeTheRoot) {
  test::TempDir tmp;
  auto b = LocalDirBackend::Open(tmp.Path("store"));
  ASSERT_TRUE(b.ok());
  for (std::string k : {"../x", "/abs", "a//b", "a/./b", "", "a b", "chunks/../../x"})
    EXPECT_EQ((*b)->Put(k, "x", Durability::kDeferred).code(), StatusCode::kInvalidArgument) << k;
  EXPECT_FALSE((*b)->List("..", [](std::string_view, uint64_t) { return Status::Ok(); }).ok());
}

TEST(LocalDirBackendTest, LeftoversOfDeadWritersAreCleanedButNotOfLiveOnes) {
  test::TempDir tmp;
  auto b = LocalDirBackend::Open(tmp.Path("store"));
  ASSERT_TRUE(b.ok());
  // A writer that died: a pid that has exited.
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  int status;
  waitpid(pid, &status, 0);
  std::string dead = tmp.Path("store/tmp/" + BootId() + "." + std::to_string(pid) + ".0000000000000001");
  std::string other_boot = tmp.Path("store/tmp/ffffffff.1.0000000000000002");
  std::string live = tmp.Path("store/tmp/" + BootId() + "." + std::to_string(getpid()) + ".0000000000000003");
  for (auto& p : {dead, other_boot, live}) ASSERT_TRUE(WriteFileAtomic(p, "partial").ok());
  auto removed = (*b)->CleanupIncompletePuts();
  ASSERT_TRUE(removed.ok());
  // WriteFileAtomic leaves no extra files; the two stale ones go, the live one stays.
  EXPECT_EQ(*removed, 2u);
  EXPECT_FALSE(PathExists(dead));
  EXPECT_FALSE(PathExists(other_boot));
  EXPECT_TRUE(PathExists(live));
}

}  // namespace
}  // namespace stratus::recovery::vault
