#include "api/operations.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/scoped_temp_dir.h"
#include "store/sqlite_store.h"

namespace stratus::api {
namespace {

using ::testing::HasSubstr;

// A one-shot gate: operations wait on it, the test opens it.
class Gate {
 public:
  void Open() {
    std::lock_guard<std::mutex> l(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Signals once an operation has reached a point.
class Reached {
 public:
  void Signal() {
    std::lock_guard<std::mutex> l(mu_);
    done_ = true;
    cv_.notify_all();
  }
  bool WaitFor(int ms = 5000) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, std::chrono::milliseconds(ms), [&] { return done_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

ResourceId Vm(const std::string& name) {
  return ResourceId::Resource("sub1", "rg", "Stratus.Compute", "virtualMachines", name);
}

class OperationManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    auto s = store::SqliteStore::Open(dir_.Path("state.db"), store::SqliteStore::Durability::kNormal);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    mgr_ = std::make_unique<OperationManager>(store_.get(), &clock_, 4);
  }
  void TearDown() override {
    for (auto& g : gates_) g.Open();
    if (restarted_) restarted_->Shutdown();
    if (mgr_) mgr_->Shutdown();
  }

  // Gates and signals live as long as the fixture, so that a test that stops early (a failed
  // ASSERT) never leaves a worker waiting on a destroyed object. Gates open in TearDown.
  Gate& NewGate() { return gates_.emplace_back(); }
  Reached& NewReached() { return reached_.emplace_back(); }

  // An operation function that blocks on `gate`.
  OperationFn Blocking(Gate* gate, Reached* started = nullptr) {
    return [gate, started](OperationContext&) {
      if (started) started->Signal();
      gate->Wait();
      return Status::Ok();
    };
  }

  store::OperationRecord MustGet(const std::string& id) {
    auto op = mgr_->Get(id);
    EXPECT_TRUE(op.ok()) << op.status().ToString();
    return op.ok() ? *op : store::OperationRecord{};
  }

  test::ScopedTempDir dir_{"ops"};
  FakeClock clock_{1795341600000};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<OperationManager> mgr_;
  std::unique_ptr<OperationManager> restarted_;  // a second daemon over the same store
  std::deque<Gate> gates_;
  std::deque<Reached> reached_;
};

TEST_F(OperationManagerTest, StartRunsTheFunctionAndRecordsSuccess) {
  std::atomic<int> runs{0};
  std::string seen_resource;
  auto id = mgr_->Start(Vm("vm1"), "Stratus.Compute/virtualMachines/write", Json{{"k", "v"}},
                        [&](OperationContext& ctx) {
                          ++runs;
                          seen_resource = ctx.resource().ToString();
                          EXPECT_EQ(ctx.internal(), (Json{{"k", "v"}}));
                          ctx.result()["answer"] = 42;
                          return Status::Ok();
                        },
                        {}, "alice");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  mgr_->WaitIdle();
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(seen_resource, Vm("vm1").ToString());
  store::OperationRecord op = MustGet(*id);
  EXPECT_EQ(op.status, "Succeeded");
  EXPECT_EQ(op.subscription, "sub1");
  EXPECT_EQ(op.resource_key, Vm("vm1").Key());
  EXPECT_EQ(op.body["status"], "Succeeded");
  EXPECT_EQ(op.body["percentComplete"], 100);
  EXPECT_EQ(op.body["operation"], "Stratus.Compute/virtualMachines/write");
  EXPECT_EQ(op.body["resourceId"], Vm("vm1").ToString());
  EXPECT_EQ(op.body["name"], *id);
  EXPECT_EQ(op.body["id"], "/subscriptions/sub1/providers/Stratus.Resources/operations/" + *id);
  EXPECT_EQ(op.body["startTime"], "2026-11-22T10:00:00.000Z");
  EXPECT_TRUE(op.body.contains("endTime"));
  EXPECT_EQ(op.body["properties"]["answer"], 42);
  EXPECT_FALSE(op.body.contains("error"));
  EXPECT_EQ(op.internal["caller"], "alice");
  EXPECT_EQ(mgr_->Holder(Vm("vm1").Key()), "");
}

TEST_F(OperationManagerTest, FailureRecordsTheArmErrorBody) {
  auto id = mgr_->Start(Vm("vm1"), "op", Json::object(), [](OperationContext&) {
    return Conflict("Disk 'd1' is attached.", "disks/d1", "DiskAttached");
  });
  ASSERT_TRUE(id.ok());
  mgr_->WaitIdle();
  store::OperationRecord op = MustGet(*id);
  EXPECT_EQ(op.status, "Failed");
  EXPECT_EQ(op.body["status"], "Failed");
  EXPECT_EQ(op.body["error"]["code"], "DiskAttached");
  EXPECT_EQ(op.body["error"]["message"], "Disk 'd1' is attached.");
  EXPECT_EQ(op.body["error"]["target"], "disks/d1");
  EXPECT_NE(op.body["percentComplete"], 100);
  EXPECT_EQ(mgr_->Holder(Vm("vm1").Key()), "");
}

TEST_F(OperationManagerTest, ExceptionInTheFunctionFailsTheOperation) {
  auto id = mgr_->Start(Vm("vm1"), "op", Json::object(), [](OperationContext&) -> Status {
    throw std::runtime_error("kaboom");
  });
  ASSERT_TRUE(id.ok());
  mgr_->WaitIdle();
  store::OperationRecord op = MustGet(*id);
  EXPECT_EQ(op.status, "Failed");
  EXPECT_EQ(op.body["error"]["code"], "InternalServerError");
  EXPECT_THAT(op.body["error"]["message"].get<std::string>(), HasSubstr("kaboom"));
  // The worker survived: the next operation runs.
  auto next = mgr_->Start(Vm("vm1"), "op", Json::object(),
                          [](OperationContext&) { return Status::Ok(); });
  ASSERT_TRUE(next.ok());
  mgr_->WaitIdle();
  EXPECT_EQ(MustGet(*next).status, "Succeeded");
}

TEST_F(OperationManagerTest, ProgressAndInternalStateArePersistedWhileRunning) {
  Gate& gate = NewGate();
  Reached& reported = NewReached();
  auto id = mgr_->Start(Vm("vm1"), "op", Json{{"step", 0}}, [&](OperationContext& ctx) {
    ctx.SetProgress(40, "copying disks");
    ctx.SaveInternal(Json{{"step", 2}});
    reported.Signal();
    gate.Wait();
    return Status::Ok();
  });
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(reported.WaitFor());
  store::OperationRecord op = MustGet(*id);
  EXPECT_EQ(op.status, "InProgress");
  EXPECT_EQ(op.body["status"], "InProgress");
  EXPECT_EQ(op.body["percentComplete"], 40);
  EXPECT_EQ(op.body["message"], "copying disks");
  EXPECT_EQ(op.internal["data"]["step"], 2);
  EXPECT_EQ(store_->ListOperationsWithStatus("InProgress")->size(), 1u);
  gate.Open();
  mgr_->WaitIdle();
  op = MustGet(*id);
  EXPECT_EQ(op.status, "Succeeded");
  EXPECT_EQ(op.internal["data"]["step"], 2);
  EXPECT_TRUE(store_->ListOperationsWithStatus("InProgress")->empty());
}

TEST_F(OperationManagerTest, SecondOperationOnALockedKeyIsAConflict) {
  Gate& gate = NewGate();
  auto first = mgr_->Start(Vm("vm1"), "op", Json::object(), Blocking(&gate));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(mgr_->Holder(Vm("vm1").Key()), *first);

  auto second = mgr_->Start(Vm("VM1"), "op", Json::object(),
                            [](OperationContext&) { return Status::Ok(); });
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kConflict);
  EXPECT_EQ(second.status().http_status(), 409);
  EXPECT_EQ(second.status().arm_code(), "OperationNotAllowed");
  EXPECT_THAT(second.status().message(), HasSubstr(*first));

  // Another resource is independent.
  auto other = mgr_->Start(Vm("vm2"), "op", Json::object(),
                           [](OperationContext&) { return Status::Ok(); });
  EXPECT_TRUE(other.ok());

  gate.Open();
  mgr_->WaitIdle();
  EXPECT_EQ(mgr_->Holder(Vm("vm1").Key()), "");
  auto third = mgr_->Start(Vm("vm1"), "op", Json::object(),
                           [](OperationContext&) { return Status::Ok(); });
  EXPECT_TRUE(third.ok()) << third.status().ToString();
  mgr_->WaitIdle();
}

TEST_F(OperationManagerTest, ExtraKeysAreLockedToo) {
  const std::string disk = "/subscriptions/sub1/resourcegroups/rg/providers/stratus.storage/disks/d1";
  Gate& gate = NewGate();
  auto first = mgr_->Start(Vm("vm1"), "op", Json::object(), Blocking(&gate), {disk});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(mgr_->Holder(disk), *first);

  auto clash = mgr_->Start(Vm("vm2"), "op", Json::object(),
                           [](OperationContext&) { return Status::Ok(); }, {disk});
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.status().code(), StatusCode::kConflict);
  EXPECT_EQ(clash.status().target(), disk);
  // The failed Start took nothing: vm2 is free.
  EXPECT_EQ(mgr_->Holder(Vm("vm2").Key()), "");
  EXPECT_FALSE(mgr_->TryLock({disk}).ok());

  gate.Open();
  mgr_->WaitIdle();
  EXPECT_EQ(mgr_->Holder(disk), "");
  EXPECT_TRUE(mgr_->TryLock({disk}).ok());
}

TEST_F(OperationManagerTest, TryLockConflictsWithARunningOperationAndViceVersa) {
  Gate& gate = NewGate();
  auto op = mgr_->Start(Vm("vm1"), "op", Json::object(), Blocking(&gate));
  ASSERT_TRUE(op.ok());
  auto lock = mgr_->TryLock({Vm("vm1").Key()});
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.status().code(), StatusCode::kConflict);
  EXPECT_THAT(lock.status().message(), HasSubstr(*op));
  gate.Open();
  mgr_->WaitIdle();

  {
    auto held = mgr_->TryLock({Vm("vm2").Key(), "extra"});
    ASSERT_TRUE(held.ok());
    EXPECT_FALSE(mgr_->TryLock({"extra"}).ok());
    auto blocked = mgr_->Start(Vm("vm2"), "op", Json::object(),
                               [](OperationContext&) { return Status::Ok(); });
    ASSERT_FALSE(blocked.ok());
    EXPECT_EQ(blocked.status().code(), StatusCode::kConflict);
  }
  // Released with the lock object.
  EXPECT_EQ(mgr_->Holder(Vm("vm2").Key()), "");
  EXPECT_EQ(mgr_->Holder("extra"), "");
  EXPECT_TRUE(mgr_->Start(Vm("vm2"), "op", Json::object(),
                          [](OperationContext&) { return Status::Ok(); })
                  .ok());
  mgr_->WaitIdle();
}

TEST_F(OperationManagerTest, MovedLockReleasesOnce) {
  auto a = mgr_->TryLock({"k1"});
  ASSERT_TRUE(a.ok());
  ResourceLock moved = std::move(a).value();
  EXPECT_FALSE(mgr_->TryLock({"k1"}).ok());
  {
    auto b = mgr_->TryLock({"k2"});
    ASSERT_TRUE(b.ok());
    moved = std::move(b).value();  // releases k1, now holds k2
  }
  EXPECT_EQ(mgr_->Holder("k1"), "");
  EXPECT_NE(mgr_->Holder("k2"), "");
  moved = ResourceLock();
  EXPECT_EQ(mgr_->Holder("k2"), "");
}

TEST_F(OperationManagerTest, StartLockedAdoptsTheHeldLockWithoutAWindow) {
  const std::string disk = "/subscriptions/sub1/resourcegroups/rg/providers/stratus.storage/disks/d1";
  auto lock = mgr_->TryLock({Vm("vm1").Key(), disk});
  ASSERT_TRUE(lock.ok());
  Gate& gate = NewGate();
  Reached& started = NewReached();
  auto id = mgr_->StartLocked(std::move(lock).value(), Vm("vm1"), "op", Json::object(),
                              Blocking(&gate, &started), "bob");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  // The keys now belong to the operation, and stay held while it runs.
  EXPECT_EQ(mgr_->Holder(Vm("vm1").Key()), *id);
  EXPECT_EQ(mgr_->Holder(disk), *id);
  ASSERT_TRUE(started.WaitFor());
  EXPECT_EQ(mgr_->Holder(Vm("vm1").Key()), *id);
  EXPECT_EQ(mgr_->Holder(disk), *id);
  EXPECT_FALSE(mgr_->TryLock({disk}).ok());
  EXPECT_FALSE(mgr_->Start(Vm("vm1"), "op", Json::object(),
                           [](OperationContext&) { return Status::Ok(); })
                   .ok());
  gate.Open();
  mgr_->WaitIdle();
  EXPECT_EQ(mgr_->Holder(Vm("vm1").Key()), "");
  EXPECT_EQ(mgr_->Holder(disk), "");
  EXPECT_EQ(MustGet(*id).status, "Succeeded");
  EXPECT_EQ(MustGet(*id).internal["caller"], "bob");
}

TEST_F(OperationManagerTest, StartLockedStillChecksKeysTheLockDoesNotCover) {
  Gate& gate = NewGate();
  auto running = mgr_->Start(Vm("vm1"), "op", Json::object(), Blocking(&gate));
  ASSERT_TRUE(running.ok());
  // The caller holds only "extra", not vm1: adopting must not steal vm1 from `running`.
  auto lock = mgr_->TryLock({"extra"});
  ASSERT_TRUE(lock.ok());
  auto id = mgr_->StartLocked(std::move(lock).value(), Vm("vm1"), "op", Json::object(),
                              [](OperationContext&) { return Status::Ok(); });
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kConflict);
  EXPECT_EQ(mgr_->Holder(Vm("vm1").Key()), *running);
  EXPECT_EQ(mgr_->Holder("extra"), "");  // the refused lock was released
  gate.Open();
  mgr_->WaitIdle();
}

TEST_F(OperationManagerTest, OnFinishSeesTheFinalRecordAndCaller) {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> finished;  // (status, caller)
  mgr_->on_finish = [&](const store::OperationRecord& op, const std::string& caller) {
    std::lock_guard<std::mutex> l(mu);
    finished.emplace_back(op.status, caller);
    EXPECT_TRUE(op.body.contains("endTime"));
  };
  ASSERT_TRUE(mgr_->Start(Vm("vm1"), "op", Json::object(),
                          [](OperationContext&) { return Status::Ok(); }, {}, "alice")
                  .ok());
  mgr_->WaitIdle();
  ASSERT_TRUE(mgr_->Start(Vm("vm2"), "op", Json::object(),
                          [](OperationContext&) { return Internal("x"); }, {}, "bob")
                  .ok());
  mgr_->WaitIdle();
  std::lock_guard<std::mutex> l(mu);
  ASSERT_EQ(finished.size(), 2u);
  EXPECT_EQ(finished[0], (std::pair<std::string, std::string>("Succeeded", "alice")));
  EXPECT_EQ(finished[1], (std::pair<std::string, std::string>("Failed", "bob")));
}

TEST_F(OperationManagerTest, WaitIdleWaitsForEveryQueuedOperation) {
  std::atomic<int> done{0};
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(mgr_->Start(Vm("vm" + std::to_string(i)), "op", Json::object(),
                            [&](OperationContext&) {
                              std::this_thread::sleep_for(std::chrono::milliseconds(2));
                              ++done;
                              return Status::Ok();
                            })
                    .ok());
  }
  mgr_->WaitIdle();
  EXPECT_EQ(done.load(), 20);
  EXPECT_EQ(store_->ListOperationsWithStatus("Succeeded")->size(), 20u);
}

TEST_F(OperationManagerTest, ShutdownDrainsTheQueueThenRefusesNewWork) {
  std::atomic<int> done{0};
  for (int i = 0; i < 8; ++i)
    ASSERT_TRUE(mgr_->Start(Vm("vm" + std::to_string(i)), "op", Json::object(),
                            [&](OperationContext&) {
                              ++done;
                              return Status::Ok();
                            })
                    .ok());
  mgr_->Shutdown();
  EXPECT_EQ(done.load(), 8);
  auto late = mgr_->Start(Vm("vm1"), "op", Json::object(),
                          [](OperationContext&) { return Status::Ok(); });
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(mgr_->Holder(Vm("vm1").Key()), "");
  mgr_->Shutdown();  // idempotent
}

class OperationRecoveryTest : public OperationManagerTest {
 protected:
  // What a killed daemon leaves behind: an InProgress record.
  void LeaveInterrupted(const std::string& id, const std::string& name, const ResourceId& rid,
                        Json data = Json::object()) {
    store::OperationRecord op;
    op.id = id;
    op.subscription = rid.subscription();
    op.resource_key = rid.Key();
    op.status = "InProgress";
    op.body = {{"id", "/subscriptions/" + rid.subscription() +
                          "/providers/Stratus.Resources/operations/" + id},
               {"name", id},
               {"operation", name},
               {"resourceId", rid.ToString()},
               {"status", "InProgress"},
               {"percentComplete", 30}};
    op.internal = {{"name", name}, {"caller", "carol"}, {"data", std::move(data)}};
    ASSERT_TRUE(store_->PutOperation(op).ok());
  }
};

TEST_F(OperationRecoveryTest, RegisteredHandlerResumesTheOperation) {
  LeaveInterrupted("op-a", "Test.Things/widgets/write", Vm("vm1"), Json{{"step", 3}});
  std::string seen_id, seen_caller;
  Json seen_data;
  mgr_->RegisterRecovery("Test.Things/widgets/write",
                         [&](const store::OperationRecord& rec, OperationContext& ctx) {
                           seen_id = rec.id;
                           seen_caller = rec.internal.value("caller", "");
                           seen_data = ctx.internal();
                           EXPECT_EQ(ctx.resource().ToString(), Vm("vm1").ToString());
                           ctx.SetProgress(90, "resumed");
                           return Status::Ok();
                         });
  std::string finished_caller;
  mgr_->on_finish = [&](const store::OperationRecord&, const std::string& caller) {
    finished_caller = caller;
  };
  ASSERT_TRUE(mgr_->RecoverInterrupted().ok());
  mgr_->WaitIdle();
  EXPECT_EQ(seen_id, "op-a");
  EXPECT_EQ(seen_caller, "carol");
  EXPECT_EQ(seen_data["step"], 3);
  EXPECT_EQ(finished_caller, "carol");
  store::OperationRecord op = MustGet("op-a");
  EXPECT_EQ(op.status, "Succeeded");
  EXPECT_EQ(op.body["percentComplete"], 100);
  EXPECT_EQ(op.body["message"], "resumed");
  EXPECT_TRUE(store_->ListOperationsWithStatus("InProgress")->empty());
  EXPECT_EQ(mgr_->Holder(Vm("vm1").Key()), "");
}

TEST_F(OperationRecoveryTest, HandlerErrorMarksTheOperationFailed) {
  LeaveInterrupted("op-b", "Test.Things/widgets/write", Vm("vm1"));
  mgr_->RegisterRecovery("Test.Things/widgets/write",
                         [](const store::OperationRecord&, OperationContext&) {
                           return Internal("could not finish");
                         });
  ASSERT_TRUE(mgr_->RecoverInterrupted().ok());
  mgr_->WaitIdle();
  store::OperationRecord op = MustGet("op-b");
  EXPECT_EQ(op.status, "Failed");
  EXPECT_EQ(op.body["error"]["message"], "could not finish");
}

TEST_F(OperationRecoveryTest, UnknownNamesAreMarkedFailed) {
  LeaveInterrupted("op-c", "Test.Things/gizmos/write", Vm("vm1"));
  ASSERT_TRUE(mgr_->RecoverInterrupted().ok());
  mgr_->WaitIdle();
  store::OperationRecord op = MustGet("op-c");
  EXPECT_EQ(op.status, "Failed");
  EXPECT_EQ(op.body["status"], "Failed");
  EXPECT_THAT(op.body["error"]["message"].get<std::string>(), HasSubstr("interrupted"));
  EXPECT_THAT(op.body["error"]["message"].get<std::string>(),
              HasSubstr("Test.Things/gizmos/write"));
}

TEST_F(OperationRecoveryTest, RecoveredOperationHoldsItsResourceLock) {
  LeaveInterrupted("op-d", "Test.Things/widgets/write", Vm("vm1"));
  Gate& gate = NewGate();
  Reached& started = NewReached();
  mgr_->RegisterRecovery("Test.Things/widgets/write",
                         [&](const store::OperationRecord&, OperationContext&) {
                           started.Signal();
                           gate.Wait();
                           return Status::Ok();
                         });
  ASSERT_TRUE(mgr_->RecoverInterrupted().ok());
  ASSERT_TRUE(started.WaitFor());
  EXPECT_EQ(mgr_->Holder(Vm("vm1").Key()), "op-d");
  auto clash = mgr_->Start(Vm("vm1"), "op", Json::object(),
                           [](OperationContext&) { return Status::Ok(); });
  EXPECT_EQ(clash.status().code(), StatusCode::kConflict);
  gate.Open();
  mgr_->WaitIdle();
  EXPECT_EQ(MustGet("op-d").status, "Succeeded");
}

TEST_F(OperationRecoveryTest, ResumedOperationRetakesItsExtraKeys) {
  const std::string disk = "/subscriptions/sub1/resourcegroups/rg/providers/stratus.storage/disks/d1";
  Gate& gate = NewGate();
  auto id = mgr_->Start(Vm("vm1"), "Test.Things/widgets/write", Json::object(), Blocking(&gate),
                        {disk});
  ASSERT_TRUE(id.ok());
  auto rec = store_->GetOperation(*id);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->internal["keys"], (Json{Vm("vm1").Key(), disk}));

  // The daemon "restarts" while the operation is InProgress in the store.
  restarted_ = std::make_unique<OperationManager>(store_.get(), &clock_, 1);
  Gate& resumed_gate = NewGate();
  Reached& resumed = NewReached();
  restarted_->RegisterRecovery("Test.Things/widgets/write",
                               [&resumed, &resumed_gate](const store::OperationRecord&,
                                                         OperationContext&) {
                                 resumed.Signal();
                                 resumed_gate.Wait();
                                 return Status::Ok();
                               });
  ASSERT_TRUE(restarted_->RecoverInterrupted().ok());
  ASSERT_TRUE(resumed.WaitFor());
  EXPECT_EQ(restarted_->Holder(Vm("vm1").Key()), *id);
  EXPECT_EQ(restarted_->Holder(disk), *id);
  EXPECT_FALSE(restarted_->TryLock({disk}).ok());
  resumed_gate.Open();
  restarted_->WaitIdle();
  EXPECT_EQ(restarted_->Holder(disk), "");
  EXPECT_EQ(store_->GetOperation(*id)->status, "Succeeded");
  EXPECT_EQ(store_->GetOperation(*id)->internal["keys"].size(), 2u);
}

TEST_F(OperationRecoveryTest, FinishedOperationsAreLeftAlone) {
  LeaveInterrupted("op-e", "Test.Things/widgets/write", Vm("vm1"));
  store::OperationRecord done = MustGet("op-e");
  done.id = "op-f";
  done.status = "Succeeded";
  ASSERT_TRUE(store_->PutOperation(done).ok());
  std::atomic<int> runs{0};
  mgr_->RegisterRecovery("Test.Things/widgets/write",
                         [&](const store::OperationRecord&, OperationContext&) {
                           ++runs;
                           return Status::Ok();
                         });
  ASSERT_TRUE(mgr_->RecoverInterrupted().ok());
  mgr_->WaitIdle();
  EXPECT_EQ(runs.load(), 1);
}

}  // namespace
}  // namespace stratus::api
