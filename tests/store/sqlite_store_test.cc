#include "store/sqlite_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/scoped_temp_dir.h"

namespace stratus::store {
namespace {

constexpr const char* kGroup = "/subscriptions/s1/resourcegroups/rg";
const std::string kVms = std::string(kGroup) + "/providers/stratus.compute/virtualmachines/";
const std::string kDisks = std::string(kGroup) + "/providers/stratus.storage/disks/";

Record Rec(const std::string& key, const std::string& type, Json body = Json::object()) {
  Record r;
  r.key = key;
  r.type = type;
  r.body = std::move(body);
  return r;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    Reopen();
  }

  void Reopen(SqliteStore::Durability d = SqliteStore::Durability::kFull) {
    store_.reset();
    auto s = SqliteStore::Open(db_path(), d);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }

  std::string db_path() const { return dir_.Path("state.db"); }

  Record MustPut(Record r, const WriteCondition& cond = {}) {
    auto out = store_->Put(std::move(r), cond);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? *out : Record{};
  }

  test::ScopedTempDir dir_{"store"};
  std::unique_ptr<Store> store_;  // through the interface, as callers use it
};

TEST_F(SqliteStoreTest, PutThenGetReturnsEverything) {
  Record r = Rec(kVms + "vm1", "stratus.compute/virtualmachines", {{"name", "vm1"}, {"n", 3}});
  r.internal = {{"path", "/x/y.qcow2"}};
  Record put = MustPut(r);
  EXPECT_EQ(put.version, 1);
  EXPECT_FALSE(put.etag.empty());
  EXPECT_EQ(put.etag.front(), '"');  // ETags are quoted, as HTTP wants them
  EXPECT_EQ(put.etag.back(), '"');

  auto got = store_->Get(kVms + "vm1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->key, kVms + "vm1");
  EXPECT_EQ(got->type, "stratus.compute/virtualmachines");
  EXPECT_EQ(got->body, r.body);
  EXPECT_EQ(got->internal, r.internal);
  EXPECT_EQ(got->etag, put.etag);
  EXPECT_EQ(got->version, 1);
}

TEST_F(SqliteStoreTest, GetMissingIsNotFound) {
  auto got = store_->Get(kVms + "nope");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound);
  EXPECT_NE(got.status().message().find("nope"), std::string::npos);
}

TEST_F(SqliteStoreTest, EveryPutChangesTheEtagAndBumpsTheVersion) {
  std::set<std::string> etags;
  for (int i = 1; i <= 5; ++i) {
    Record put = MustPut(Rec(kVms + "vm1", "t", {{"i", i}}));
    EXPECT_EQ(put.version, i);
    etags.insert(put.etag);
  }
  EXPECT_EQ(etags.size(), 5u);
  EXPECT_EQ(store_->Get(kVms + "vm1")->body["i"], 5);
}

TEST_F(SqliteStoreTest, PutIgnoresCallerSuppliedEtagAndVersion) {
  Record r = Rec(kVms + "vm1", "t");
  r.etag = "\"mine\"";
  r.version = 99;
  Record put = MustPut(r);
  EXPECT_NE(put.etag, "\"mine\"");
  EXPECT_EQ(put.version, 1);
}

TEST_F(SqliteStoreTest, IfMatchMismatchIsPreconditionFailedAndChangesNothing) {
  Record first = MustPut(Rec(kVms + "vm1", "t", {{"v", 1}}));
  WriteCondition cond;
  cond.if_match = "\"stale\"";
  auto r = store_->Put(Rec(kVms + "vm1", "t", {{"v", 2}}), cond);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPreconditionFailed);
  EXPECT_EQ(r.status().http_status(), 412);
  auto got = store_->Get(kVms + "vm1");
  EXPECT_EQ(got->body["v"], 1);
  EXPECT_EQ(got->etag, first.etag);
  EXPECT_EQ(got->version, 1);
}

TEST_F(SqliteStoreTest, IfMatchWithCurrentEtagOrStarSucceeds) {
  Record first = MustPut(Rec(kVms + "vm1", "t", {{"v", 1}}));
  WriteCondition cond;
  cond.if_match = first.etag;
  Record second = MustPut(Rec(kVms + "vm1", "t", {{"v", 2}}), cond);
  EXPECT_EQ(second.version, 2);
  // The old etag is now stale.
  auto stale = store_->Put(Rec(kVms + "vm1", "t", {{"v", 3}}), cond);
  EXPECT_EQ(stale.status().code(), StatusCode::kPreconditionFailed);
  cond.if_match = "*";
  EXPECT_EQ(MustPut(Rec(kVms + "vm1", "t", {{"v", 4}}), cond).version, 3);
}

TEST_F(SqliteStoreTest, IfMatchOnMissingRecordFails) {
  WriteCondition cond;
  cond.if_match = "*";
  auto r = store_->Put(Rec(kVms + "vm1", "t"), cond);
  ASSERT_FALSE(r.ok());
  // RFC 9110: If-Match fails without a current representation (ARM answers 412).
  EXPECT_EQ(r.status().code(), StatusCode::kPreconditionFailed);
  EXPECT_FALSE(store_->Get(kVms + "vm1").ok());
}

TEST_F(SqliteStoreTest, MustNotExistCreatesOnlyOnce) {
  WriteCondition create;
  create.must_not_exist = true;
  Record first = MustPut(Rec(kVms + "vm1", "t", {{"v", 1}}), create);
  auto again = store_->Put(Rec(kVms + "vm1", "t", {{"v", 2}}), create);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kPreconditionFailed);
  EXPECT_EQ(store_->Get(kVms + "vm1")->body["v"], 1);
  EXPECT_EQ(store_->Get(kVms + "vm1")->etag, first.etag);
}

TEST_F(SqliteStoreTest, MustExistUpdatesOnly) {
  WriteCondition update;
  update.must_exist = true;
  auto missing = store_->Put(Rec(kVms + "vm1", "t"), update);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(store_->Get(kVms + "vm1").ok());
  MustPut(Rec(kVms + "vm1", "t", {{"v", 1}}));
  EXPECT_EQ(MustPut(Rec(kVms + "vm1", "t", {{"v", 2}}), update).version, 2);
}

TEST_F(SqliteStoreTest, FailedConditionDoesNotLeaveATransactionOpen) {
  MustPut(Rec(kVms + "vm1", "t"));
  WriteCondition cond;
  cond.if_match = "\"stale\"";
  ASSERT_FALSE(store_->Put(Rec(kVms + "vm1", "t"), cond).ok());
  // Later writes still commit (and survive a reopen).
  MustPut(Rec(kVms + "vm2", "t"));
  Reopen();
  EXPECT_TRUE(store_->Get(kVms + "vm2").ok());
}

TEST_F(SqliteStoreTest, Delete) {
  Record r = MustPut(Rec(kVms + "vm1", "t"));
  EXPECT_EQ(store_->Delete(kVms + "vm1", std::string("\"other\"")).code(),
            StatusCode::kPreconditionFailed);
  EXPECT_TRUE(store_->Get(kVms + "vm1").ok());
  EXPECT_TRUE(store_->Delete(kVms + "vm1", r.etag).ok());
  EXPECT_EQ(store_->Get(kVms + "vm1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Delete(kVms + "vm1").code(), StatusCode::kNotFound);
  MustPut(Rec(kVms + "vm2", "t"));
  EXPECT_TRUE(store_->Delete(kVms + "vm2", std::string("*")).ok());
  EXPECT_FALSE(store_->Get(kVms + "vm2").ok());
}

TEST_F(SqliteStoreTest, ListFiltersByPrefixAndType) {
  MustPut(Rec(kVms + "a", "stratus.compute/virtualmachines"));
  MustPut(Rec(kVms + "b", "stratus.compute/virtualmachines"));
  MustPut(Rec(kDisks + "d1", "stratus.storage/disks"));
  MustPut(Rec("/subscriptions/s1/resourcegroups/rg2/providers/stratus.compute/virtualmachines/c",
              "stratus.compute/virtualmachines"));
  MustPut(Rec(kGroup, "resourcegroups"));

  auto vms = store_->List(kVms, "stratus.compute/virtualmachines", "", 100);
  ASSERT_TRUE(vms.ok()) << vms.status().ToString();
  ASSERT_EQ(vms->records.size(), 2u);
  EXPECT_EQ(vms->records[0].key, kVms + "a");
  EXPECT_EQ(vms->records[1].key, kVms + "b");
  EXPECT_TRUE(vms->next_key.empty());

  auto in_group = store_->List(std::string(kGroup) + "/providers/", "", "", 100);
  ASSERT_TRUE(in_group.ok());
  EXPECT_EQ(in_group->records.size(), 3u);  // not rg2's VM, not the group itself

  auto all_vms = store_->List("/subscriptions/", "stratus.compute/virtualmachines", "", 100);
  ASSERT_TRUE(all_vms.ok());
  EXPECT_EQ(all_vms->records.size(), 3u);

  auto none = store_->List(kVms, "stratus.storage/disks", "", 100);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->records.empty());
}

TEST_F(SqliteStoreTest, ListByTypeExcludesGrandchildren) {
  MustPut(Rec(kVms + "vm1", "stratus.compute/virtualmachines"));
  MustPut(Rec(kVms + "vm1/extensions/e1", "stratus.compute/virtualmachines/extensions"));
  MustPut(Rec(kVms + "vm2", "stratus.compute/virtualmachines"));
  auto page = store_->List(kVms, "stratus.compute/virtualmachines", "", 100);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->records.size(), 2u);
  EXPECT_EQ(page->records[0].key, kVms + "vm1");
  EXPECT_EQ(page->records[1].key, kVms + "vm2");
  // Without a type filter the child shows up.
  EXPECT_EQ(store_->List(kVms, "", "", 100)->records.size(), 3u);
}

TEST_F(SqliteStoreTest, ListPagesThroughManyRecordsWithNextKey) {
  Reopen(SqliteStore::Durability::kNormal);  // many writes; fsync per commit is not the point
  const int kCount = 237;
  for (int i = 0; i < kCount; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "vm%04d", i);
    MustPut(Rec(kVms + name, "stratus.compute/virtualmachines", {{"i", i}}));
  }
  MustPut(Rec(kDisks + "d", "stratus.storage/disks"));  // another type in the same group
  std::vector<std::string> seen;
  std::string after;
  int pages = 0;
  for (;;) {
    auto page = store_->List(kVms, "stratus.compute/virtualmachines", after, 50);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ++pages;
    ASSERT_LE(page->records.size(), 50u);
    for (auto& r : page->records) seen.push_back(r.key);
    if (page->next_key.empty()) break;
    EXPECT_EQ(page->records.size(), 50u);
    EXPECT_EQ(page->next_key, page->records.back().key);
    after = page->next_key;
    ASSERT_LT(pages, 100) << "paging does not terminate";
  }
  EXPECT_EQ(pages, 5);
  ASSERT_EQ(seen.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "vm%04d", i);
    EXPECT_EQ(seen[i], kVms + name);
  }
}

TEST_F(SqliteStoreTest, ExactlyFullPageHasNoNextKey) {
  for (int i = 0; i < 4; ++i) MustPut(Rec(kVms + "vm" + std::to_string(i), "t"));
  auto page = store_->List(kVms, "t", "", 4);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->records.size(), 4u);
  EXPECT_TRUE(page->next_key.empty());
  auto smaller = store_->List(kVms, "t", "", 3);
  EXPECT_EQ(smaller->records.size(), 3u);
  EXPECT_EQ(smaller->next_key, kVms + "vm2");
}

TEST_F(SqliteStoreTest, Operations) {
  OperationRecord op;
  op.id = "op-1";
  op.subscription = "s1";
  op.resource_key = kVms + "vm1";
  op.status = "InProgress";
  op.body = {{"status", "InProgress"}, {"percentComplete", 0}};
  op.internal = {{"name", "Stratus.Compute/virtualMachines/write"}};
  ASSERT_TRUE(store_->PutOperation(op).ok());
  OperationRecord done = op;
  done.id = "op-2";
  done.status = "Succeeded";
  ASSERT_TRUE(store_->PutOperation(done).ok());

  auto got = store_->GetOperation("op-1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->subscription, "s1");
  EXPECT_EQ(got->resource_key, kVms + "vm1");
  EXPECT_EQ(got->status, "InProgress");
  EXPECT_EQ(got->body, op.body);
  EXPECT_EQ(got->internal, op.internal);

  auto missing = store_->GetOperation("nope");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().arm_code(), "OperationNotFound");

  auto in_progress = store_->ListOperationsWithStatus("InProgress");
  ASSERT_TRUE(in_progress.ok());
  ASSERT_EQ(in_progress->size(), 1u);
  EXPECT_EQ((*in_progress)[0].id, "op-1");
  EXPECT_EQ((*in_progress)[0].internal, op.internal);

  // Replacing an operation moves it between statuses.
  op.status = "Failed";
  op.body["status"] = "Failed";
  ASSERT_TRUE(store_->PutOperation(op).ok());
  EXPECT_TRUE(store_->ListOperationsWithStatus("InProgress")->empty());
  EXPECT_EQ(store_->ListOperationsWithStatus("Failed")->size(), 1u);
  EXPECT_EQ(store_->ListOperationsWithStatus("Succeeded")->size(), 1u);
  EXPECT_EQ(store_->GetOperation("op-1")->body["status"], "Failed");
}

TEST_F(SqliteStoreTest, ActivityIsNewestFirstPerSubscriptionAndLimited) {
  for (int i = 0; i < 10; ++i) {
    ActivityEvent ev;
    ev.time_ms = 1000 + i;
    ev.subscription = i % 2 ? "s2" : "s1";
    ev.body = {{"i", i}};
    ASSERT_TRUE(store_->AppendActivity(ev).ok());
  }
  auto s1 = store_->ListActivity("s1", 100);
  ASSERT_TRUE(s1.ok());
  ASSERT_EQ(s1->size(), 5u);
  EXPECT_EQ((*s1)[0].body["i"], 8);
  EXPECT_EQ((*s1)[0].time_ms, 1008);
  EXPECT_EQ((*s1)[0].subscription, "s1");
  EXPECT_EQ((*s1)[4].body["i"], 0);
  auto limited = store_->ListActivity("s2", 2);
  ASSERT_EQ(limited->size(), 2u);
  EXPECT_EQ((*limited)[0].body["i"], 9);
  EXPECT_EQ((*limited)[1].body["i"], 7);
  EXPECT_TRUE(store_->ListActivity("s3", 10)->empty());
}

TEST_F(SqliteStoreTest, ActivityOrderFollowsInsertionNotTime) {
  ActivityEvent late{5000, "s1", {{"n", "first"}}};
  ActivityEvent early{10, "s1", {{"n", "second"}}};
  ASSERT_TRUE(store_->AppendActivity(late).ok());
  ASSERT_TRUE(store_->AppendActivity(early).ok());
  auto evs = store_->ListActivity("s1", 10);
  ASSERT_EQ(evs->size(), 2u);
  EXPECT_EQ((*evs)[0].body["n"], "second");
}

TEST_F(SqliteStoreTest, Settings) {
  auto none = store_->GetSetting("x");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(store_->PutSetting("x", "1").ok());
  ASSERT_TRUE(store_->PutSetting("x", "2").ok());
  auto got = store_->GetSetting("x");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, "2");
  // The schema version lives in the same table.
  EXPECT_EQ(**store_->GetSetting("schema_version"), "1");
}

TEST_F(SqliteStoreTest, EverythingSurvivesReopeningTheFile) {
  Record vm = MustPut(Rec(kVms + "vm1", "stratus.compute/virtualmachines", {{"a", "b"}}));
  OperationRecord op{"op-1", "s1", kVms + "vm1", {{"status", "InProgress"}}, {{"k", 1}},
                     "InProgress"};
  ASSERT_TRUE(store_->PutOperation(op).ok());
  ASSERT_TRUE(store_->AppendActivity({123, "s1", {{"e", 1}}}).ok());
  ASSERT_TRUE(store_->PutSetting("default_subscription", "s1").ok());

  Reopen();

  auto got = store_->Get(kVms + "vm1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, vm.body);
  EXPECT_EQ(got->etag, vm.etag);
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(store_->List(kVms, "stratus.compute/virtualmachines", "", 10)->records.size(), 1u);
  auto ops = store_->ListOperationsWithStatus("InProgress");
  ASSERT_EQ(ops->size(), 1u);
  EXPECT_EQ((*ops)[0].internal["k"], 1);
  auto evs = store_->ListActivity("s1", 10);
  ASSERT_EQ(evs->size(), 1u);
  EXPECT_EQ((*evs)[0].time_ms, 123);
  EXPECT_EQ(**store_->GetSetting("default_subscription"), "s1");
  // The version keeps counting from where it was.
  EXPECT_EQ(MustPut(Rec(kVms + "vm1", "t")).version, 2);
}

TEST_F(SqliteStoreTest, OpenOfUnusablePathFails) {
  auto s = SqliteStore::Open(dir_.Path("no/such/dir/state.db"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInternal);
  EXPECT_NE(s.status().message().find("no/such/dir/state.db"), std::string::npos);
}

TEST_F(SqliteStoreTest, ConcurrentPutsFromEightThreads) {
  Reopen(SqliteStore::Durability::kNormal);  // the point is the locking, not fsync throughput
  constexpr int kThreads = 8, kPerThread = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Own record plus one shared record everyone updates.
        auto a = store_->Put(Rec(kVms + "t" + std::to_string(t) + "-" + std::to_string(i), "t",
                                 {{"t", t}, {"i", i}}));
        auto b = store_->Put(Rec(kVms + "shared", "t", {{"t", t}}));
        if (!a.ok() || !b.ok()) ++failures;
        ActivityEvent ev{i, "s1", {{"t", t}}};
        if (!store_->AppendActivity(ev).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto page = store_->List(kVms, "t", "", 1000);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->records.size(), static_cast<size_t>(kThreads * kPerThread + 1));
  auto shared = store_->Get(kVms + "shared");
  ASSERT_TRUE(shared.ok());
  EXPECT_EQ(shared->version, kThreads * kPerThread);  // no lost update of the version counter
  EXPECT_EQ(store_->ListActivity("s1", 1000)->size(), static_cast<size_t>(kThreads * kPerThread));
}

}  // namespace
}  // namespace stratus::store
