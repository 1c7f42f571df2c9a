// Replication through the API between two whole in-process regions (their control planes over
// a fake hypervisor, real qcow2 disks, real peer links on loopback): B's vault item asks A to
// replicate a (stopped) VM; A's scheduler sends cycles; B's points read back exactly A's disks,
// first whole, then after a change; the bad inputs of enabling; a VM deleted at the source; and
// disabling, which stops A and removes B's replicas.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "recovery/site/replication_test_util.h"

namespace stratus::recovery::site {
namespace {

using test::InProcessRegion;

TEST_F(ReplicationTest, PointsInBReadBackTheSourceDisksFirstWholeThenAfterAChange) {
  auto put = b_->Call("PUT", kVault + "/replicationProtectedItems/db1", ItemBody(vm_id_));
  ASSERT_EQ(put.status, 201) << put.body.dump();
  EXPECT_EQ(put.body["properties"]["protectionState"], "Enabling");
  ASSERT_EQ(b_->Finish(put)["status"], "Succeeded");
  Json item = WaitPoints("db1", 1);
  const Json& p = item["properties"];
  EXPECT_EQ(p["protectionState"], "Protected");
  EXPECT_EQ(p["vmConfig"]["vmSize"], "Standard_S1");
  EXPECT_EQ(p["policy"]["crashConsistentFrequencyInSeconds"], 5);
  EXPECT_EQ(p["replicationHealth"], "Normal");
  EXPECT_LE(p.value("rpoInSeconds", 999), 10);
  std::string item_id = p.value("replicatedItemId", "");
  EXPECT_EQ(CompareNewest(item_id, "osdisk", os_disk_), 0);
  EXPECT_EQ(CompareNewest(item_id, "lun0", data_disk_), 0);

  // The guest (here qemu-io on the stopped VM's disk) writes 4 KiB; the next cycle sends about
  // that (one 64 KiB cluster of the bitmap), not the disk.
  ASSERT_TRUE(WriteSource("write -P 0x7e 5M 4k", data_disk_));
  size_t n = item["properties"].value("recoveryPointCount", 0);
  item = WaitPoints("db1", n + 1);
  EXPECT_EQ(CompareNewest(item_id, "lun0", data_disk_), 0);
  auto points = b_->Call("GET", kVault + "/replicationProtectedItems/db1/recoveryPoints");
  ASSERT_EQ(points.status, 200);
  EXPECT_GE(points.body["value"].size(), 2u);
  EXPECT_EQ(points.body["value"][0]["properties"]["recoveryPointType"], "CrashConsistent");
  // Every point after the first together carried the one 4 KiB block the guest wrote: the dirty
  // 64 KiB cluster was read, but only its changed 4 KiB block sent (the block map).
  uint64_t after_first = 0;
  for (size_t i = 1; i < points.body["value"].size(); ++i)
    after_first += points.body["value"][i]["properties"].value("bytesReceived", uint64_t{0});
  EXPECT_EQ(after_first, 4096u) << points.body.dump();
  uint64_t first = points.body["value"][0]["properties"].value("bytesReceived", uint64_t{0});
  EXPECT_GE(first, 2u << 20) << "the first cycle carried the allocated data";

  // Disabling stops the source and removes the replicas.
  auto del = b_->Call("DELETE", kVault + "/replicationProtectedItems/db1");
  ASSERT_EQ(del.status, 202) << del.body.dump();
  Json op = b_->Finish(del);
  EXPECT_EQ(op["status"], "Succeeded") << op.dump();
  EXPECT_EQ(b_->Call("GET", kVault + "/replicationProtectedItems/db1").status, 404);
  EXPECT_FALSE(PathExists(JoinPath(b_->data_dir(), "replicas/" + item_id)));
  auto out =
      a_->store()->List("/providers/stratus.recoveryservices/outboundreplications/", "", "", 10);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->records.empty());
}

TEST_F(ReplicationTest, BadEnablesAreRefusedWithNothingRecorded) {
  auto code = [&](const Json& body, const std::string& name = "x") {
    auto r = b_->Call("PUT", kVault + "/replicationProtectedItems/" + name, body);
    return std::to_string(r.status) + " " + InProcessRegion::Code(r);
  };
  EXPECT_EQ(code(ItemBody(vm_id_, "regionB")), "400 ReplicationToSameRegion");
  EXPECT_EQ(code(ItemBody(vm_id_, "regionC")), "400 RegionNotPaired");
  EXPECT_EQ(code(ItemBody("/subscriptions/sub1/resourceGroups/rg")), "400 InvalidResourceId");
  EXPECT_EQ(code({{"properties", {{"sourceVmId", vm_id_}}}}), "400 MissingParameter");
  Json fast = ItemBody(vm_id_);
  fast["properties"]["policy"]["crashConsistentFrequencyInSeconds"] = 1;
  EXPECT_EQ(code(fast), "400 InvalidParameter");
  Json rare = ItemBody(vm_id_);
  rare["properties"]["policy"]["appConsistentFrequencyInMinutes"] = 721;
  EXPECT_EQ(code(rare), "400 InvalidParameter");
  Json unknown = ItemBody(vm_id_);
  unknown["properties"]["x"] = 1;
  EXPECT_EQ(code(unknown), "400 InvalidParameter");
  auto list = b_->Call("GET", kVault + "/replicationProtectedItems");
  EXPECT_TRUE(list.body["value"].empty());

  // A VM the source does not have: the operation fails, naming it; nothing is left.
  auto ghost = b_->Call("PUT", kVault + "/replicationProtectedItems/ghost",
                        ItemBody(InProcessRegion::Path("Stratus.Compute/virtualMachines", "nope")));
  ASSERT_EQ(ghost.status, 201);
  Json op = b_->Finish(ghost);
  EXPECT_EQ(op["status"], "Failed");
  EXPECT_EQ(op["error"].value("code", ""), "SourceVmNotFound") << op.dump();
  EXPECT_EQ(b_->Call("GET", kVault + "/replicationProtectedItems/ghost").status, 404);

  // The same VM twice.
  ASSERT_EQ(b_->Finish(b_->Call("PUT", kVault + "/replicationProtectedItems/db1",
                                ItemBody(vm_id_)))["status"],
            "Succeeded");
  EXPECT_EQ(code(ItemBody(vm_id_), "db1-again"), "409 VmAlreadyReplicated");
  // The vault cannot go while it holds the item.
  EXPECT_EQ(b_->Call("DELETE", kVault).status, 409);
}

TEST_F(ReplicationTest, AVmDeletedAtTheSourceEndsReplicationAndBKeepsItsPoints) {
  auto put = b_->Call("PUT", kVault + "/replicationProtectedItems/db1", ItemBody(vm_id_));
  ASSERT_EQ(b_->Finish(put)["status"], "Succeeded");
  Json item = WaitPoints("db1", 1);
  ASSERT_EQ(a_->Finish(a_->Call("DELETE", kVm))["status"], "Succeeded");
  bool ended = false;
  for (int i = 0; i < 100 && !ended; ++i) {
    auto out =
        a_->store()->List("/providers/stratus.recoveryservices/outboundreplications/", "", "", 10);
    ended = out.ok() && !out->records.empty() &&
            out->records[0].body.value("state", "") == "SourceVmDeleted";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(ended);
  item = b_->Call("GET", kVault + "/replicationProtectedItems/db1").body;
  EXPECT_GE(item["properties"].value("recoveryPointCount", 0), 1);
}

}  // namespace
}  // namespace stratus::recovery::site

namespace stratus::recovery::site {
namespace {

TEST_F(ReplicationTest, UnplannedFailoverMakesTheVmInBFromAPointWithoutTheSource) {
  const std::string item = kVault + "/replicationProtectedItems/db1";
  // Before any point: nothing to fail over to.
  ASSERT_EQ(b_->Finish(b_->Call("PUT", item, ItemBody(vm_id_)))["status"], "Succeeded");
  Json it = WaitPoints("db1", 1);
  std::string item_id = it["properties"].value("replicatedItemId", "");
  // The source goes away for good (its peer link stops answering): nothing below calls it.
  a_->control()->replication()->Stop();
  a_->control()->pairing()->Stop();
  EXPECT_EQ(InProcessRegion::Code(
                b_->Call("POST", item + "/unplannedFailover", {{"recoveryPointName", "nope"}})),
            "RecoveryPointNotFound");
  EXPECT_EQ(InProcessRegion::Code(b_->Call("POST", item + "/unplannedFailover",
                                           {{"targetResourceGroup", "nogroup"}})),
            "ResourceGroupNotFound");
  // The newest application-consistent point: there is none (the VM is stopped: its points are
  // crash-consistent); a bad kind, or a kind and a name, are refused.
  EXPECT_EQ(InProcessRegion::Code(b_->Call("POST", item + "/unplannedFailover",
                                           {{"recoveryPointType", "LatestApplicationConsistent"}})),
            "NoApplicationConsistentPoint");
  EXPECT_EQ(b_->Call("POST", item + "/unplannedFailover", {{"recoveryPointType", "Oldest"}}).status,
            400);
  Json pts = b_->Call("GET", item + "/recoveryPoints").body;
  ASSERT_GE(pts["value"].size(), 1u);
  const std::string first = pts["value"][0].value("name", "");
  EXPECT_EQ(
      b_->Call("POST", item + "/unplannedFailover",
               {{"recoveryPointType", "LatestApplicationConsistent"}, {"recoveryPointName", first}})
          .status,
      400);
  // Had the first point been application-consistent (a running VM's hooks and freeze), the
  // failover picks it over newer crash-consistent ones.
  auto rec = b_->store()->Get(ResourceId::Parse(pts["value"][0].value("id", ""))->Key());
  ASSERT_TRUE(rec.ok());
  rec->body["properties"]["recoveryPointType"] = "ApplicationConsistent";
  ASSERT_TRUE(b_->store()->Put(*rec).ok());
  auto r = b_->Call("POST", item + "/unplannedFailover",
                    {{"recoveryPointType", "LatestApplicationConsistent"}});
  ASSERT_EQ(r.status, 202) << r.body.dump();
  Json op = b_->Finish(r);
  ASSERT_EQ(op["status"], "Succeeded") << op.dump();
  EXPECT_EQ(op["properties"].value("recoveryPoint", ""), pts["value"][0].value("id", ""));
  std::string vm = op["properties"].value("vmId", "");
  EXPECT_EQ(vm, InProcessRegion::Path("Stratus.Compute/virtualMachines", "db1"));
  EXPECT_GE(op["properties"].value("stratusTimeMs", -1), 0);
  auto got = b_->Call("GET", vm);
  ASSERT_EQ(got.status, 200) << got.body.dump();
  EXPECT_EQ(got.body["properties"]["hardwareProfile"]["vmSize"], "Standard_S1");
  EXPECT_EQ(got.body["properties"]["storageProfile"]["dataDisks"].size(), 1u);
  // Its data disk holds the source's disk as of the point (the source did not change since).
  std::string b_data = b_->DiskFile("db1-lun0");
  ASSERT_FALSE(b_data.empty());
  auto cmp = RunProcess({"qemu-img", "compare", "-U", "-q", data_disk_, b_data});
  ASSERT_TRUE(cmp.ok());
  EXPECT_EQ(cmp->exit_code, 0) << cmp->out << cmp->err;
  it = b_->Call("GET", item).body;
  EXPECT_EQ(it["properties"]["protectionState"], "FailedOver");
  EXPECT_EQ(it["properties"]["failedOverVmId"], vm);
  // Twice is refused; cycles are refused from now on.
  EXPECT_EQ(InProcessRegion::Code(b_->Call("POST", item + "/unplannedFailover", Json::object())),
            "AlreadyFailedOver");
  PeerCaller from_a{"", "regionA"};
  auto cycle = b_->control()->replication()->receiver().Begin(
      from_a, Json{{"item", item_id},
                   {"seq", 99},
                   {"disks", {{{"name", "osdisk"}, {"sizeBytes", 1 << 30}}}}});
  ASSERT_FALSE(cycle.ok());
  EXPECT_EQ(cycle.status().arm_code(), "ItemFailedOver");
}

// After a failover the point can change (the VM's disks replaced by another point's) until the
// failover is committed; neither before a failover.
TEST_F(ReplicationTest, AFailedOverItemChangesItsPointUntilCommitted) {
  const std::string item = kVault + "/replicationProtectedItems/db1";
  ASSERT_EQ(b_->Finish(b_->Call("PUT", item, ItemBody(vm_id_)))["status"], "Succeeded");
  Json it = WaitPoints("db1", 1);
  std::string item_id = it["properties"].value("replicatedItemId", "");
  EXPECT_EQ(InProcessRegion::Code(b_->Call("POST", item + "/commit", Json::object())),
            "NotFailedOver");
  EXPECT_EQ(InProcessRegion::Code(
                b_->Call("POST", item + "/changeRecoveryPoint", {{"recoveryPointName", "x"}})),
            "NotFailedOver");
  Json first = b_->Call("GET", item + "/recoveryPoints").body["value"][0];
  ASSERT_TRUE(WriteSource("write -P 0x5a 1M 4k", data_disk_));
  WaitPoints("db1", it["properties"].value("recoveryPointCount", 0) + 2);
  Json op = b_->Finish(b_->Call("POST", item + "/unplannedFailover", Json::object()));
  ASSERT_EQ(op["status"], "Succeeded") << op.dump();
  std::string b_data = b_->DiskFile("db1-lun0");
  ASSERT_FALSE(b_data.empty());
  auto same = [](const std::string& x, const std::string& y) {
    auto r = RunProcess({"qemu-img", "compare", "-U", "-q", x, y});
    return r.ok() && r->exit_code == 0;
  };
  EXPECT_TRUE(same(data_disk_, b_data)) << "the newest point has the change";

  EXPECT_EQ(InProcessRegion::Code(
                b_->Call("POST", item + "/changeRecoveryPoint", {{"recoveryPointName", "nope"}})),
            "RecoveryPointNotFound");
  op = b_->Finish(b_->Call("POST", item + "/changeRecoveryPoint",
                           {{"recoveryPointName", first.value("name", "")}}));
  ASSERT_EQ(op["status"], "Succeeded") << op.dump();
  auto chain = b_->control()->replication()->receiver().Chain(item_id, "lun0");
  ASSERT_TRUE(chain.ok());
  auto image = (*chain)->PointImage(first["properties"].value("sequence", uint64_t{0}));
  ASSERT_TRUE(image.ok());
  EXPECT_TRUE(same(*image, b_data)) << "the VM's disk is the first point's now";
  EXPECT_FALSE(same(data_disk_, b_data));
  it = b_->Call("GET", item).body;
  EXPECT_EQ(it["properties"]["failoverRecoveryPoint"], first["id"]);
  EXPECT_EQ(b_->Call("GET", InProcessRegion::Path("Stratus.Compute/virtualMachines", "db1"))
                .body["properties"]["provisioningState"],
            "Succeeded");

  ASSERT_EQ(b_->Finish(b_->Call("POST", item + "/commit", Json::object()))["status"], "Succeeded");
  EXPECT_TRUE(b_->Call("GET", item).body["properties"].value("failoverCommitted", false));
  EXPECT_EQ(InProcessRegion::Code(b_->Call("POST", item + "/changeRecoveryPoint",
                                           {{"recoveryPointName", first.value("name", "")}})),
            "FailoverCommitted");
}

}  // namespace
}  // namespace stratus::recovery::site

namespace stratus::recovery::site {
namespace {

// Two VMs in one consistency group: their cycles share numbers (one instant), the group's points
// are the cycles both have, its RPO the newest one's age; the group fails over as one, both VMs
// from the same point; a group with members cannot be deleted; bad names and points are refused.
TEST_F(ReplicationTest, AConsistencyGroupIsCapturedTogetherAndFailsOverToOnePoint) {
  const std::string vm2_id = MakeStoppedVm("db2");
  ASSERT_FALSE(vm2_id.empty());
  std::string data2 = a_->DiskFile("db2_DataDisk_0");
  ASSERT_TRUE(WriteSource("write -P 0x42 3M 1M", data2));

  auto item_body = [&](const std::string& vm, const std::string& group) {
    Json b = ItemBody(vm);
    b["properties"]["multiVmGroupName"] = group;
    return b;
  };
  const std::string group = kVault + "/replicationConsistencyGroups/app";
  EXPECT_EQ(InProcessRegion::Code(b_->Call("PUT", kVault + "/replicationProtectedItems/db1",
                                           item_body(vm_id_, "no/pe"))),
            "InvalidResourceName");
  EXPECT_EQ(b_->Call("GET", group).status, 404) << "a refused item makes no group";
  ASSERT_EQ(b_->Finish(b_->Call("PUT", kVault + "/replicationProtectedItems/db1",
                                item_body(vm_id_, "app")))["status"],
            "Succeeded");
  ASSERT_EQ(b_->Finish(b_->Call("PUT", kVault + "/replicationProtectedItems/db2",
                                item_body(vm2_id, "app")))["status"],
            "Succeeded");
  // The group's first point is a cycle both members have.
  Json g;
  for (int i = 0; i < 300; ++i) {
    g = b_->Call("GET", group).body;
    if (g["properties"].value("recoveryPointCount", 0) >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GE(g["properties"].value("recoveryPointCount", 0), 2) << g.dump();
  EXPECT_EQ(g["properties"]["memberCount"], 2);
  EXPECT_EQ(g["properties"]["protectionState"], "Protected");
  EXPECT_LE(g["properties"].value("rpoInSeconds", 999), 10);
  EXPECT_EQ(g["properties"]["replicationHealth"], "Normal");
  auto list = b_->Call("GET", kVault + "/replicationConsistencyGroups");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.body["value"].size(), 1u);
  EXPECT_EQ(list.body["value"][0]["properties"]["memberCount"], 2);
  // Every cycle of the group carries both members: their point names are the same numbers.
  auto names = [&](const std::string& path) {
    std::set<std::string> out;
    Json got = b_->Call("GET", path).body;
    for (auto& p : got["value"]) out.insert(p.value("name", ""));
    return out;
  };
  auto gp = names(group + "/recoveryPoints");
  auto p1 = names(kVault + "/replicationProtectedItems/db1/recoveryPoints");
  auto p2 = names(kVault + "/replicationProtectedItems/db2/recoveryPoints");
  ASSERT_FALSE(gp.empty());
  for (auto& n : gp) EXPECT_TRUE(p1.count(n) && p2.count(n)) << n;
  std::string point = *gp.begin();
  auto one = b_->Call("GET", group + "/recoveryPoints/" + point);
  ASSERT_EQ(one.status, 200) << one.body.dump();
  EXPECT_EQ(one.body["properties"]["memberCount"], 2);
  EXPECT_EQ(b_->Call("GET", group + "/recoveryPoints/00000000000000000001").status, 404);

  // Refusals: a group with members; a point the group has not; an unknown action.
  EXPECT_EQ(InProcessRegion::Code(b_->Call("DELETE", group)), "GroupHasMembers");
  EXPECT_EQ(InProcessRegion::Code(
                b_->Call("POST", group + "/unplannedFailover", {{"recoveryPointName", "nope"}})),
            "RecoveryPointNotFound");
  EXPECT_EQ(InProcessRegion::Code(b_->Call("POST", group + "/unplannedFailover",
                                           {{"recoveryPointType", "LatestApplicationConsistent"}})),
            "NoApplicationConsistentPoint");
  EXPECT_EQ(b_->Call("POST", group + "/failback", Json::object()).status, 404);
  EXPECT_EQ(InProcessRegion::Code(
                b_->Call("POST", group + "/plannedFailover", {{"recoveryPointName", point}})),
            "InvalidParameter")
      << "a planned failover's points are the last cycles";

  // The source is gone; the group fails over to its oldest point, both VMs from it.
  a_->control()->replication()->Stop();
  a_->control()->pairing()->Stop();
  auto fo = b_->Call("POST", group + "/unplannedFailover", {{"recoveryPointName", point}});
  ASSERT_EQ(fo.status, 202) << fo.body.dump();
  Json op = b_->Finish(fo);
  ASSERT_EQ(op["status"], "Succeeded") << op.dump();
  EXPECT_EQ(op["properties"]["vms"].size(), 2u) << op.dump();
  EXPECT_EQ(op["properties"]["recoveryPointName"], point);
  for (auto name : {"db1", "db2"}) {
    Json it = b_->Call("GET", kVault + "/replicationProtectedItems/" + name).body;
    EXPECT_EQ(it["properties"]["protectionState"], "FailedOver") << name;
    EXPECT_NE(it["properties"].value("failoverRecoveryPoint", "").find(point), std::string::npos)
        << it.dump();
    EXPECT_EQ(
        b_->Call("GET", InProcessRegion::Path("Stratus.Compute/virtualMachines", name)).status,
        200);
  }
  auto cmp = RunProcess({"qemu-img", "compare", "-U", "-q", data2, b_->DiskFile("db2-lun0")});
  ASSERT_TRUE(cmp.ok());
  EXPECT_EQ(cmp->exit_code, 0) << cmp->out << cmp->err;
  EXPECT_EQ(b_->Call("GET", group).body["properties"]["protectionState"], "FailedOver");
  EXPECT_EQ(InProcessRegion::Code(b_->Call("POST", group + "/unplannedFailover", Json::object())),
            "AlreadyFailedOver");

  // Once its members are gone, the group can go.
  for (auto name : {"db1", "db2"})
    ASSERT_EQ(
        b_->Finish(b_->Call("DELETE", kVault + "/replicationProtectedItems/" + name))["status"],
        "Succeeded");
  EXPECT_EQ(b_->Call("DELETE", group).status, 200);
  EXPECT_EQ(b_->Call("GET", group).status, 404);
}

}  // namespace
}  // namespace stratus::recovery::site

namespace stratus::recovery::site {
namespace {

// Planned failover: the source's last write after the newest point is in the VM made in B (the
// source sends a last cycle once the VM is stopped); refused without the source.
TEST_F(ReplicationTest, PlannedFailoverCarriesTheSourcesLastWrite) {
  const std::string item = kVault + "/replicationProtectedItems/db1";
  ASSERT_EQ(b_->Finish(b_->Call("PUT", item, ItemBody(vm_id_)))["status"], "Succeeded");
  WaitPoints("db1", 1);
  EXPECT_EQ(InProcessRegion::Code(
                b_->Call("POST", item + "/plannedFailover", {{"recoveryPointName", "x"}})),
            "InvalidParameter")
      << "a planned failover's point is the last cycle";
  // Written after the newest point, right before the call.
  ASSERT_TRUE(WriteSource("write -P 0x99 7M 64k", data_disk_));
  auto r = b_->Call("POST", item + "/plannedFailover", Json::object());
  ASSERT_EQ(r.status, 202) << r.body.dump();
  Json op = b_->Finish(r);
  ASSERT_EQ(op["status"], "Succeeded") << op.dump();
  EXPECT_EQ(op["properties"]["failoverType"], "Planned");
  auto cmp = RunProcess({"qemu-img", "compare", "-U", "-q", data_disk_, b_->DiskFile("db1-lun0")});
  ASSERT_TRUE(cmp.ok());
  EXPECT_EQ(cmp->exit_code, 0) << "the last write is in B: " << cmp->out << cmp->err;
  Json it = b_->Call("GET", item).body;
  EXPECT_EQ(it["properties"]["protectionState"], "FailedOver");
  EXPECT_EQ(it["properties"]["failoverType"], "Planned");
  auto out =
      a_->store()->List("/providers/stratus.recoveryservices/outboundreplications/", "", "", 10);
  ASSERT_TRUE(out.ok() && out->records.size() == 1u);
  EXPECT_EQ(out->records[0].body["state"], "ReadyForFailover");
}

// A planned failover of a consistency group: every member's VM stops in the source and sends
// its last cycle; each member fails over to its own, with the writes made after the newest point.
TEST_F(ReplicationTest, PlannedFailoverOfAGroupCarriesEveryMembersLastWrite) {
  const std::string vm2 = MakeStoppedVm("db2");
  ASSERT_FALSE(vm2.empty());
  const std::string data2 = a_->DiskFile("db2_DataDisk_0");
  const std::string group = kVault + "/replicationConsistencyGroups/app";
  for (auto [name, vm] : {std::pair<std::string, std::string>{"db1", vm_id_}, {"db2", vm2}}) {
    Json b = ItemBody(vm);
    b["properties"]["multiVmGroupName"] = "app";
    ASSERT_EQ(
        b_->Finish(b_->Call("PUT", kVault + "/replicationProtectedItems/" + name, b))["status"],
        "Succeeded");
    WaitPoints(name, 1);
  }
  // Written after the newest points, right before the call.
  ASSERT_TRUE(WriteSource("write -P 0x91 5M 64k", data_disk_));
  ASSERT_TRUE(WriteSource("write -P 0x92 6M 64k", data2));
  auto r = b_->Call("POST", group + "/plannedFailover", Json::object());
  ASSERT_EQ(r.status, 202) << r.body.dump();
  Json op = b_->Finish(r);
  ASSERT_EQ(op["status"], "Succeeded") << op.dump();
  EXPECT_EQ(op["properties"]["failoverType"], "Planned");
  EXPECT_EQ(op["properties"]["vms"].size(), 2u) << op.dump();
  EXPECT_EQ(op["properties"]["recoveryPoints"].size(), 2u) << op.dump();
  ExpectPlannedWithEveryWrite({{"db1", data_disk_}, {"db2", data2}});
}

TEST_F(ReplicationTest, PlannedFailoverNeedsTheSource) {
  const std::string item = kVault + "/replicationProtectedItems/db1";
  ASSERT_EQ(b_->Finish(b_->Call("PUT", item, ItemBody(vm_id_)))["status"], "Succeeded");
  WaitPoints("db1", 1);
  a_->control()->replication()->Stop();
  a_->control()->pairing()->Stop();
  auto r = b_->Call("POST", item + "/plannedFailover", Json::object());
  // Refused at once or failed by the operation: either way no VM is made and the item stays.
  if (r.status == 202) {
    Json op = b_->Finish(r);
    EXPECT_EQ(op["status"], "Failed") << op.dump();
  } else {
    EXPECT_EQ(InProcessRegion::Code(r), "PeerRegionUnreachable") << r.body.dump();
  }
  EXPECT_EQ(b_->Call("GET", kVm).status, 404);
  EXPECT_EQ(b_->Call("GET", item).body["properties"]["protectionState"], "Protected");
}

}  // namespace
}  // namespace stratus::recovery::site

namespace stratus::recovery::site {
namespace {

// Test failover: a VM from copy-on-write clones of a point while replication goes on; one at a
// time; a real failover may start during the drill; the cleanup removes the test VM and disks.
TEST_F(ReplicationTest, TestFailoverRunsBesideReplicationAndCleansUp) {
  const std::string item = kVault + "/replicationProtectedItems/db1";
  ASSERT_EQ(b_->Finish(b_->Call("PUT", item, ItemBody(vm_id_)))["status"], "Succeeded");
  Json it = WaitPoints("db1", 1);
  EXPECT_EQ(InProcessRegion::Code(b_->Call("POST", item + "/testFailoverCleanup", Json::object())),
            "NoTestFailover");
  auto r = b_->Call("POST", item + "/testFailover", Json::object());
  ASSERT_EQ(r.status, 202) << r.body.dump();
  Json op = b_->Finish(r);
  ASSERT_EQ(op["status"], "Succeeded") << op.dump();
  const std::string test_vm = InProcessRegion::Path("Stratus.Compute/virtualMachines", "db1-test");
  EXPECT_EQ(op["properties"]["vmId"], test_vm);
  auto vm = b_->Call("GET", test_vm);
  ASSERT_EQ(vm.status, 200);
  EXPECT_EQ(vm.body["tags"]["stratus-test-failover"], item);
  // Its data disk is a clone of the point: A's disk as it was, backed by the replica.
  std::string clone = b_->DiskFile("db1-test-lun0");
  ASSERT_FALSE(clone.empty());
  auto cmp = RunProcess({"qemu-img", "compare", "-U", "-q", data_disk_, clone});
  ASSERT_TRUE(cmp.ok());
  EXPECT_EQ(cmp->exit_code, 0) << cmp->out << cmp->err;
  auto info = RunChecked({"qemu-img", "info", "-U", "--output=json", clone});
  ASSERT_TRUE(info.ok());
  EXPECT_NE(Json::parse(*info).value("backing-filename", "").find("/replicas/"), std::string::npos)
      << *info;
  it = b_->Call("GET", item).body;
  EXPECT_EQ(it["properties"]["testFailoverState"], "Completed");
  EXPECT_EQ(it["properties"]["protectionState"], "Protected");
  // Replication goes on during the drill.
  int n = it["properties"].value("recoveryPointCount", 0);
  ASSERT_TRUE(WriteSource("write -P 0x5a 9M 4k", data_disk_));
  WaitPoints("db1", n + 1);
  EXPECT_EQ(InProcessRegion::Code(b_->Call("POST", item + "/testFailover", Json::object())),
            "TestFailoverInProgress");
  // A real failover during the drill.
  a_->control()->replication()->Stop();
  a_->control()->pairing()->Stop();
  Json fo = b_->Finish(b_->Call("POST", item + "/unplannedFailover", Json::object()));
  ASSERT_EQ(fo["status"], "Succeeded") << fo.dump();
  // The cleanup: the test VM and its disks go; the failed-over VM stays.
  Json cl = b_->Finish(b_->Call("POST", item + "/testFailoverCleanup", Json::object()));
  ASSERT_EQ(cl["status"], "Succeeded") << cl.dump();
  EXPECT_EQ(b_->Call("GET", test_vm).status, 404);
  EXPECT_TRUE(b_->DiskFile("db1-test-lun0").empty());
  EXPECT_FALSE(PathExists(clone));
  EXPECT_EQ(b_->Call("GET", kVm).status, 200);
  it = b_->Call("GET", item).body;
  EXPECT_EQ(it["properties"]["testFailoverState"], "None");
  EXPECT_EQ(it["properties"]["protectionState"], "FailedOver");
}

}  // namespace
}  // namespace stratus::recovery::site

namespace stratus::recovery::site {
namespace {

// The pairing's bandwidth cap (PATCH regionPairings/{peer} in the sending region) paces the
// cycles; bad values are refused.
TEST_F(ReplicationTest, ThePairingsBandwidthCapPacesTheCycles) {
  const std::string pairing = std::string(kProv) + "/regionPairings/regionB";
  auto code = [&](const Json& body) {
    auto r = a_->Call("PATCH", pairing, body);
    return std::to_string(r.status) + " " + InProcessRegion::Code(r);
  };
  EXPECT_EQ(code({{"properties", {{"replicationBandwidthMbps", -1}}}}), "400 InvalidParameter");
  EXPECT_EQ(code({{"properties", {{"replicationBandwidthMbps", "x"}}}}),
            "400 InvalidRequestContent");
  EXPECT_EQ(code({{"properties", {{"other", 1}}}}), "400 InvalidParameter");
  auto set = a_->Call("PATCH", pairing, {{"properties", {{"replicationBandwidthMbps", 8}}}});
  ASSERT_EQ(set.status, 200) << set.body.dump();
  EXPECT_EQ(a_->Call("GET", pairing).body["properties"]["replicationBandwidthMbps"], 8);
  // 8 Mbit/s = 1 MB/s: the seed (3 MiB of random data) takes about 3 s on the wire.
  std::string noise = JoinPath(a_->data_dir(), "noise.bin");
  ASSERT_TRUE(
      RunChecked({"dd", "if=/dev/urandom", "of=" + noise, "bs=1M", "count=3", "status=none"}).ok());
  ASSERT_TRUE(WriteSource("write -s " + noise + " 1M 3M", data_disk_));
  ASSERT_EQ(b_->Finish(b_->Call("PUT", kVault + "/replicationProtectedItems/db1",
                                ItemBody(vm_id_)))["status"],
            "Succeeded");
  // While the seed is on the wire, B shows it: the cycle in flight, what of it is still to come
  // (backlog) and the rate it comes at.
  uint64_t max_backlog = 0, rate_seen = 0;
  Json in_flight;
  for (int i = 0; i < 300; ++i) {
    Json p = b_->Call("GET", kVault + "/replicationProtectedItems/db1").body["properties"];
    if (p.value("recoveryPointCount", 0) >= 1) break;
    if (p.contains("currentCycle")) {
      in_flight = p["currentCycle"];
      max_backlog = std::max(max_backlog, p.value("backlogBytes", uint64_t{0}));
      rate_seen = std::max(rate_seen, p.value("transferBytesPerSecond", uint64_t{0}));
      EXPECT_LE(p.value("backlogBytes", uint64_t{0}), in_flight.value("changedBytes", uint64_t{0}));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GT(max_backlog, 1u << 20) << in_flight.dump();
  EXPECT_GT(rate_seen, 0u);
  Json done = WaitPoints("db1", 1)["properties"];
  EXPECT_EQ(done.value("backlogBytes", uint64_t{1}), 0u);
  EXPECT_FALSE(done.contains("currentCycle"));
  EXPECT_GT(done["lastCycle"].value("bytesPerSecond", uint64_t{0}), 0u) << done.dump();
  // A records the cycle once B has answered its commit: wait for that too.
  Json last;
  for (int i = 0; i < 100 && last.is_null(); ++i) {
    auto out =
        a_->store()->List("/providers/stratus.recoveryservices/outboundreplications/", "", "", 10);
    ASSERT_TRUE(out.ok() && out->records.size() == 1u);
    if (out->records[0].body.contains("lastCycle"))
      last = out->records[0].body["lastCycle"];
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  uint64_t sent = last.value("bytesSent", uint64_t{0});
  int64_t ms = last.value("durationMs", int64_t{0});
  ASSERT_GT(sent, 3u << 20) << last.dump();
  EXPECT_GE(ms, static_cast<int64_t>(sent / 1000) * 8 / 10) << "paced at 1 MB/s: " << last.dump();
}

}  // namespace
}  // namespace stratus::recovery::site

namespace stratus::recovery::site {
namespace {

// RPO alerts: an item whose RPO crosses its threshold (a slow link: A's send cap, random data)
// alerts the vault's webhooks once, and once more when it recovers.
TEST_F(ReplicationTest, RpoAlertsGoToTheVaultsWebhooksOncePerCrossing) {
  httplib::Server hook;
  std::mutex mu;
  std::vector<Json> got;
  hook.Post("/alert", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> l(mu);
    got.push_back(Json::parse(req.body, nullptr, false));
    res.status = 204;
  });
  int port = hook.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread t([&] { hook.listen_after_bind(); });
  struct Stop {
    httplib::Server& s;
    std::thread& t;
    ~Stop() {
      s.stop();
      t.join();
    }
  } stop{hook, t};
  auto alerts = [&] {
    std::lock_guard<std::mutex> l(mu);
    return got;
  };
  auto wait_alerts = [&](size_t n, int seconds) {
    for (int i = 0; i < seconds * 10 && alerts().size() < n; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return alerts();
  };
  ASSERT_EQ(
      b_->Call("PUT", kVault,
               {{"location", "regionB"},
                {"properties",
                 {{"alerts",
                   {{"webhooks", {"http://127.0.0.1:" + std::to_string(port) + "/alert"}}}}}}})
          .status,
      200);
  Json body = ItemBody(vm_id_);
  body["properties"]["policy"]["rpoAlertThresholdInSeconds"] = 10;
  const std::string item = kVault + "/replicationProtectedItems/db1";
  ASSERT_EQ(b_->Finish(b_->Call("PUT", item, body))["status"], "Succeeded");
  WaitPoints("db1", 1);
  EXPECT_TRUE(alerts().empty());
  // A slow link and 2 MiB of new random data: one cycle takes ~16 s, the RPO passes 10 s.
  const std::string pairing = std::string(kProv) + "/regionPairings/regionB";
  ASSERT_EQ(a_->Call("PATCH", pairing, {{"properties", {{"replicationBandwidthMbps", 1}}}}).status,
            200);
  std::string noise = JoinPath(a_->data_dir(), "noise.bin");
  ASSERT_TRUE(
      RunChecked({"dd", "if=/dev/urandom", "of=" + noise, "bs=1M", "count=2", "status=none"}).ok());
  ASSERT_TRUE(WriteSource("write -s " + noise + " 5M 2M", data_disk_));
  auto a1 = wait_alerts(1, 40);
  ASSERT_GE(a1.size(), 1u);
  EXPECT_EQ(a1[0]["alert"], "RpoThresholdExceeded") << a1[0].dump();
  EXPECT_EQ(a1[0]["replicationProtectedItemId"], b_->Call("GET", item).body["id"]);
  EXPECT_GT(a1[0].value("rpoInSeconds", 0), 10);
  EXPECT_EQ(b_->Call("GET", item).body["properties"]["replicationHealth"], "Critical");
  ASSERT_EQ(a_->Call("PATCH", pairing, {{"properties", {{"replicationBandwidthMbps", 0}}}}).status,
            200);
  auto a2 = wait_alerts(2, 60);
  ASSERT_EQ(a2.size(), 2u);
  EXPECT_EQ(a2[1]["alert"], "RpoRecovered") << a2[1].dump();
  EXPECT_EQ(b_->Call("GET", item).body["properties"]["replicationHealth"], "Normal");
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_EQ(alerts().size(), 2u) << "one alert per crossing";
}

}  // namespace
}  // namespace stratus::recovery::site

namespace stratus::recovery::site {
namespace {

// A recovery plan: two groups in order, a script after each, a manual step before the second;
// every step recorded; group 2 does not start before the acknowledgement; the cleanup removes
// the drill's VMs. Bad plans are refused.
TEST_F(ReplicationTest, ARecoveryPlanRunsItsGroupsInOrderWithScriptsAndAManualStep) {
  const std::string vm2_id = MakeStoppedVm("db2");
  ASSERT_FALSE(vm2_id.empty());
  const std::string i1 = kVault + "/replicationProtectedItems/db1";
  const std::string i2 = kVault + "/replicationProtectedItems/db2";
  ASSERT_EQ(b_->Finish(b_->Call("PUT", i1, ItemBody(vm_id_)))["status"], "Succeeded");
  ASSERT_EQ(b_->Finish(b_->Call("PUT", i2, ItemBody(vm2_id)))["status"], "Succeeded");
  WaitPoints("db1", 1);
  WaitPoints("db2", 1);
  std::string id1 = b_->Call("GET", i1).body.value("id", "");
  std::string id2 = b_->Call("GET", i2).body.value("id", "");
  // The operator's script: it logs the group, the action and the VMs so far.
  std::string scripts = JoinPath(b_->data_dir(), "recovery-scripts");
  std::string log = JoinPath(b_->data_dir(), "plan.log");
  ASSERT_TRUE(MakeDirs(scripts, 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(JoinPath(scripts, "note.sh"),
                              "#!/bin/sh\necho \"$STRATUS_PLAN_GROUP $STRATUS_PLAN_ACTION "
                              "$STRATUS_PLAN_RUN $STRATUS_PLAN_VMS\" >> " +
                                  log + "\n",
                              0755)
                  .ok());
  auto script = [](const std::string& name) {
    return Json{
        {"actionName", name},
        {"customDetails", {{"instanceType", "ScriptActionDetails"}, {"scriptName", "note.sh"}}}};
  };
  Json plan = {
      {"properties",
       {{"vmReadiness", "PowerState"},
        {"groups",
         {{{"replicationProtectedItems", {id1}}, {"endGroupActions", {script("after1")}}},
          {{"replicationProtectedItems", {id2}},
           {"startGroupActions",
            {{{"actionName", "approve"},
              {"customDetails",
               {{"instanceType", "ManualActionDetails"}, {"description", "DBA says go"}}}}}},
           {"endGroupActions", {script("after2")}}}}}}}};
  const std::string p = kVault + "/replicationRecoveryPlans/app";
  auto code = [&](const Json& body) {
    auto r = b_->Call("PUT", p, body);
    return std::to_string(r.status) + " " + InProcessRegion::Code(r);
  };
  Json bad = plan;
  bad["properties"]["groups"][0]["replicationProtectedItems"] = {kVault +
                                                                 "/replicationProtectedItems/nope"};
  EXPECT_EQ(code(bad), "400 ReplicatedItemNotFound");
  bad = plan;
  bad["properties"]["groups"][1]["replicationProtectedItems"] = {id1};
  EXPECT_EQ(code(bad), "400 InvalidParameter") << "an item twice";
  bad = plan;
  bad["properties"]["groups"][0]["endGroupActions"][0]["customDetails"]["scriptName"] = "../etc/x";
  EXPECT_EQ(code(bad), "400 ScriptNotFound");
  ASSERT_EQ(code(plan), "201 ");
  // Each item's newest application-consistent point: the stopped VMs have none (checked before
  // anything starts); a bad kind is refused.
  EXPECT_EQ(InProcessRegion::Code(b_->Call("POST", p + "/testFailover",
                                           {{"recoveryPointType", "LatestApplicationConsistent"}})),
            "NoApplicationConsistentPoint");
  EXPECT_EQ(b_->Call("POST", p + "/unplannedFailover", {{"recoveryPointType", "Oldest"}}).status,
            400);

  auto run = b_->Call("POST", p + "/testFailover", Json::object());
  ASSERT_EQ(run.status, 202) << run.body.dump();
  // Group 1 fails over and its script runs; then the plan waits for the person.
  Json cur;
  for (int i = 0; i < 300; ++i) {
    cur = b_->Call("GET", p).body["properties"]["currentRun"];
    if (cur.value("waitingFor", "") == "approve") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(cur.value("waitingFor", ""), "approve") << cur.dump();
  const std::string t1 = InProcessRegion::Path("Stratus.Compute/virtualMachines", "db1-test");
  const std::string t2 = InProcessRegion::Path("Stratus.Compute/virtualMachines", "db2-test");
  EXPECT_EQ(b_->Call("GET", t1).status, 200);
  EXPECT_EQ(b_->Call("GET", t2).status, 404) << "group 2 waits for the acknowledgement";
  EXPECT_EQ(InProcessRegion::Code(
                b_->Call("POST", p + "/acknowledgeManualAction", {{"actionName", "other"}})),
            "NotWaitingForAction");
  EXPECT_EQ(InProcessRegion::Code(b_->Call("POST", p + "/testFailover", Json::object())),
            "PlanRunning");
  ASSERT_EQ(b_->Call("POST", p + "/acknowledgeManualAction", {{"actionName", "approve"}}).status,
            200);
  Json op = b_->Finish(run);
  ASSERT_EQ(op["status"], "Succeeded") << op.dump();
  EXPECT_EQ(b_->Call("GET", t2).status, 200);
  std::vector<std::string> names;
  for (auto& s : op["properties"]["steps"]) {
    names.push_back(s.value("name", ""));
    EXPECT_EQ(s["state"], "Succeeded") << s.dump();
    EXPECT_TRUE(s.contains("startTime") && s.contains("endTime")) << s.dump();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"group 1: test failover of db1", "group 1: VMs up",
                                             "group 1: after1", "group 2: approve",
                                             "group 2: test failover of db2", "group 2: VMs up",
                                             "group 2: after2"}));
  EXPECT_GE(op["properties"].value("rtoMs", -1), 0);
  EXPECT_GE(op["properties"].value("manualWaitMs", -1), 0);
  auto logged = ReadFile(log);
  ASSERT_TRUE(logged.ok());
  EXPECT_EQ(*logged,
            "1 after1 TestFailover " + t1 + "\n2 after2 TestFailover " + t1 + "," + t2 + "\n");
  Json shown = b_->Call("GET", p).body["properties"]["currentRun"];
  EXPECT_EQ(shown["state"], "Succeeded");
  EXPECT_EQ(shown["steps"].size(), 7u);

  // The drill's cleanup.
  Json cl = b_->Finish(b_->Call("POST", p + "/testFailoverCleanup", Json::object()));
  ASSERT_EQ(cl["status"], "Succeeded") << cl.dump();
  EXPECT_EQ(b_->Call("GET", t1).status, 404);
  EXPECT_EQ(b_->Call("GET", t2).status, 404);
  // Commit and reprotect follow a (real) failover of the plan.
  EXPECT_EQ(InProcessRegion::Code(b_->Call("POST", p + "/commit", Json::object())),
            "NotFailedOver");
  EXPECT_EQ(InProcessRegion::Code(b_->Call("POST", p + "/reprotect", Json::object())),
            "NotFailedOver");
  EXPECT_EQ(b_->Call("DELETE", p).status, 200);
}

}  // namespace
}  // namespace stratus::recovery::site

namespace stratus::recovery::site {
namespace {

// A planned failover of a plan stops the source's VMs, the last group first, each sending its
// last cycle; then the groups fail over in order to those cycles (the second group's VM
// made, paused, while the first came up): no write made in the source is lost.
TEST_F(ReplicationTest, PlannedFailoverOfAPlanStopsTheSourceLastGroupFirstAndLosesNothing) {
  const std::string vm2 = MakeStoppedVm("db2");
  ASSERT_FALSE(vm2.empty());
  const std::string data2 = a_->DiskFile("db2_DataDisk_0");
  std::vector<std::string> ids;
  for (auto [name, vm] : {std::pair<std::string, std::string>{"db1", vm_id_}, {"db2", vm2}}) {
    const std::string item = kVault + "/replicationProtectedItems/" + name;
    ASSERT_EQ(b_->Finish(b_->Call("PUT", item, ItemBody(vm)))["status"], "Succeeded");
    WaitPoints(name, 1);
    ids.push_back(b_->Call("GET", item).body.value("id", ""));
  }
  const std::string p = kVault + "/replicationRecoveryPlans/app";
  auto made = b_->Call("PUT", p,
                       {{"properties",
                         {{"vmReadiness", "PowerState"},
                          {"groups",
                           {{{"replicationProtectedItems", {ids[0]}}},
                            {{"replicationProtectedItems", {ids[1]}}}}}}}});
  ASSERT_EQ(made.status, 201) << made.body.dump();
  EXPECT_EQ(InProcessRegion::Code(
                b_->Call("POST", p + "/plannedFailover", {{"recoveryPointType", "Latest"}})),
            "InvalidParameter")
      << "a planned failover's points are the last cycles";
  ASSERT_TRUE(WriteSource("write -P 0x93 5M 64k", data_disk_));
  ASSERT_TRUE(WriteSource("write -P 0x94 6M 64k", data2));
  auto r = b_->Call("POST", p + "/plannedFailover", Json::object());
  ASSERT_EQ(r.status, 202) << r.body.dump();
  Json op = b_->Finish(r);
  ASSERT_EQ(op["status"], "Succeeded") << op.dump();
  std::vector<std::string> states;
  const Json run = b_->Call("GET", p).body["properties"]["currentRun"];
  EXPECT_EQ(run["type"], "PlannedFailover");
  for (auto& s : run["steps"]) states.push_back(s.value("name", "") + " " + s.value("state", ""));
  EXPECT_EQ(states,
            (std::vector<std::string>{
                "group 2: shut down in the source: db2 Succeeded",
                "group 1: shut down in the source: db1 Succeeded",
                "group 1: planned failover of db1 Succeeded", "group 1: VMs up Succeeded",
                "group 2: planned failover of db2 Succeeded", "group 2: VMs up Succeeded"}));
  EXPECT_EQ(run["steps"][4].value("detail", ""),
            "1 of 1 VMs were made (started paused) while group 1 came up");
  ExpectPlannedWithEveryWrite({{"db1", data_disk_}, {"db2", data2}});
  EXPECT_EQ(InProcessRegion::Code(b_->Call("POST", p + "/plannedFailover", Json::object())),
            "AlreadyFailedOver");
}

// An unplanned failover of a plan copies the next group's disks while this group's VMs come up
// (StartPrestage): group 2 fails over from those copies; group 3's copies, which no failover
// took because the plan stopped before it, are removed and its item is Protected again and
// fails over on its own.
TEST_F(ReplicationTest, APlansNextGroupIsStartedPausedAheadAndRemovedWhenThePlanStopsBeforeIt) {
  std::vector<std::string> ids = {vm_id_};
  for (std::string name : {"db2", "db3"}) {
    ids.push_back(MakeStoppedVm(name));
    ASSERT_FALSE(ids.back().empty());
  }
  std::vector<std::string> items;
  for (int i = 0; i < 3; ++i) {
    std::string name = "db" + std::to_string(i + 1);
    std::string item = kVault + "/replicationProtectedItems/" + name;
    ASSERT_EQ(b_->Finish(b_->Call("PUT", item, ItemBody(ids[i])))["status"], "Succeeded");
    WaitPoints(name, 1);
    items.push_back(item);
  }
  std::string scripts = JoinPath(b_->data_dir(), "recovery-scripts");
  ASSERT_TRUE(MakeDirs(scripts, 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(JoinPath(scripts, "gate.sh"), "#!/bin/sh\nexit 3\n", 0755).ok());
  auto group = [&](int i) {
    return Json{{"replicationProtectedItems", {b_->Call("GET", items[i]).body.value("id", "")}}};
  };
  Json g3 = group(2);
  g3["startGroupActions"] = {
      {{"actionName", "gate"},
       {"customDetails", {{"instanceType", "ScriptActionDetails"}, {"scriptName", "gate.sh"}}}}};
  const std::string p = kVault + "/replicationRecoveryPlans/three";
  auto made = b_->Call(
      "PUT", p,
      {{"properties", {{"vmReadiness", "PowerState"}, {"groups", {group(0), group(1), g3}}}}});
  ASSERT_EQ(made.status, 201) << made.body.dump();
  Json op = b_->Finish(b_->Call("POST", p + "/unplannedFailover", Json::object()));
  ASSERT_EQ(op["status"], "Failed") << op.dump();
  std::vector<std::string> states;
  const Json run = b_->Call("GET", p).body["properties"]["currentRun"];
  for (auto& s : run["steps"]) states.push_back(s.value("name", "") + " " + s.value("state", ""));
  EXPECT_EQ(states, (std::vector<std::string>{
                        "group 1: failover of db1 Succeeded", "group 1: VMs up Succeeded",
                        "group 2: failover of db2 Succeeded", "group 2: VMs up Succeeded",
                        "group 3: gate Failed"}));
  EXPECT_EQ(run["steps"][2].value("detail", ""),
            "1 of 1 VMs were made (started paused) while group 1 came up");
  for (int i = 0; i < 2; ++i) {
    Json it = b_->Call("GET", items[i]).body["properties"];
    EXPECT_EQ(it["protectionState"], "FailedOver") << it.dump();
    EXPECT_EQ(b_->Call("GET", it.value("failedOverVmId", "")).status, 200) << it.dump();
  }
  EXPECT_EQ(b_->Call("GET", items[2]).body["properties"]["protectionState"], "Protected")
      << "the plan stopped before group 3";
  // Group 2's VM was made and started paused while group 1 came up, then run at its turn;
  // group 3's, made paused too, is gone with its disks and NICs.
  Json vm2 = b_->Call("GET", InProcessRegion::Path("Stratus.Compute/virtualMachines", "db2")).body;
  const std::string dom2 = "stratus-" + vm2["properties"].value("vmId", "");
  std::vector<std::string> calls = b_->hv().Calls();
  auto at = [&](const std::string& call) {
    return std::find(calls.begin(), calls.end(), call) - calls.begin();
  };
  EXPECT_LT(at("StartPaused " + dom2), at("Start " + dom2)) << "paused first, run after";
  EXPECT_LT(at("Start " + dom2), static_cast<long>(calls.size()));
  EXPECT_EQ(b_->hv().Info(dom2)->state, compute::PowerState::kRunning);
  EXPECT_EQ(b_->Call("GET", InProcessRegion::Path("Stratus.Compute/virtualMachines", "db3")).status,
            404);
  EXPECT_EQ(b_->Call("GET", InProcessRegion::Path("Stratus.Storage/disks", "db3-osdisk")).status,
            404);
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(JoinPath(b_->data_dir(), "disks"), ec))
    EXPECT_NE(e.path().filename().string().rfind("failover-", 0), 0u)
        << e.path() << ": a copy no failover took";
  Json own = b_->Finish(b_->Call("POST", items[2] + "/unplannedFailover", Json::object()));
  EXPECT_EQ(own["status"], "Succeeded") << own.dump();
}

}  // namespace
}  // namespace stratus::recovery::site

namespace stratus::recovery::site {
namespace {

// A vault's replication policy (Azure's A2A shape, minutes or Stratus's seconds): items name it
// with policyId; a change reaches every item using it and its source region in one operation;
// a policy in use cannot be deleted; bad policies and references are refused.
TEST_F(ReplicationTest, AReplicationPolicyIsNamedByItemsAndItsChangeReachesTheirSource) {
  const std::string pol = kVault + "/replicationPolicies/fast";
  auto put_policy = [&](const Json& input) {
    return b_->Call("PUT", pol, {{"properties", {{"providerSpecificInput", input}}}});
  };
  auto code = [&](const api::ApiResponse& r) {
    return std::to_string(r.status) + " " + InProcessRegion::Code(r);
  };
  EXPECT_EQ(code(put_policy({{"crashConsistentFrequencyInMinutes", 1},
                             {"crashConsistentFrequencyInSeconds", 30}})),
            "400 InvalidParameter");
  EXPECT_EQ(code(put_policy({{"multiVmSyncStatus", "Disable"}})), "400 InvalidParameter");
  EXPECT_EQ(code(put_policy({{"instanceType", "HyperVReplicaAzure"}})), "400 InvalidParameter");
  EXPECT_EQ(code(put_policy({{"crashConsistentFrequencyInSeconds", 2}})), "400 InvalidParameter");
  EXPECT_EQ(b_->Call("GET", pol).status, 404) << "nothing written by a refused PUT";
  auto made = put_policy({{"instanceType", "A2A"},
                          {"crashConsistentFrequencyInMinutes", 1},
                          {"recoveryPointHistory", 90},
                          {"appConsistentFrequencyInMinutes", 0}});
  ASSERT_EQ(made.status, 201) << made.body.dump();
  Json d = b_->Call("GET", pol).body["properties"]["providerSpecificDetails"];
  EXPECT_EQ(d["instanceType"], "A2A");
  EXPECT_EQ(d["crashConsistentFrequencyInSeconds"], 60);
  EXPECT_EQ(d["crashConsistentFrequencyInMinutes"], 1);
  EXPECT_EQ(d["recoveryPointRetentionInHours"], 2) << "90 minutes of history: 2 hours kept";
  EXPECT_EQ(d["appConsistentFrequencyInMinutes"], 0);
  EXPECT_EQ(b_->Call("GET", kVault + "/replicationPolicies").body["value"].size(), 1u);

  // Items name it (by name or id), not beside a policy of their own.
  const std::string item = kVault + "/replicationProtectedItems/db1";
  Json body = ItemBody(vm_id_);
  body["properties"]["policyId"] = "fast";
  EXPECT_EQ(code(b_->Call("PUT", item, body)), "400 InvalidParameter") << "policy and policyId";
  body["properties"].erase("policy");
  body["properties"]["policyId"] = "nope";
  EXPECT_EQ(code(b_->Call("PUT", item, body)), "400 PolicyNotFound");
  body["properties"]["policyId"] = kVault + "/replicationPolicies/fast/x";
  EXPECT_EQ(code(b_->Call("PUT", item, body)), "400 InvalidPolicyId");
  body["properties"]["policyId"] =
      InProcessRegion::Path("Stratus.RecoveryServices/vaults", "other") +
      "/replicationPolicies/fast";
  EXPECT_EQ(code(b_->Call("PUT", item, body)), "400 InvalidPolicyId") << "another vault's";
  EXPECT_EQ(b_->Call("GET", item).status, 404) << "nothing written by a refused PUT";
  body["properties"]["policyId"] = "fast";
  ASSERT_EQ(b_->Finish(b_->Call("PUT", item, body))["status"], "Succeeded");
  Json ip = b_->Call("GET", item).body["properties"];
  EXPECT_EQ(ip.value("policyId", ""), made.body.value("id", ""));
  EXPECT_EQ(ip["policy"]["crashConsistentFrequencyInSeconds"], 60);
  auto interval_in_a = [&] {
    auto out =
        a_->store()->List("/providers/stratus.recoveryservices/outboundreplications/", "", "", 10);
    return out.ok() && out->records.size() == 1u
               ? out->records[0].body.value("intervalSeconds", int64_t{-1})
               : int64_t{-1};
  };
  EXPECT_EQ(interval_in_a(), 60);
  EXPECT_EQ(code(b_->Call("DELETE", pol)), "409 PolicyInUse");

  // A change: the item and its source take it.
  auto changed = put_policy({{"crashConsistentFrequencyInSeconds", 5}});
  ASSERT_EQ(changed.status, 200) << changed.body.dump();
  Json op = b_->Finish(changed);
  ASSERT_EQ(op["status"], "Succeeded") << op.dump();
  EXPECT_EQ(op["properties"]["items"].size(), 1u) << op.dump();
  ip = b_->Call("GET", item).body["properties"];
  EXPECT_EQ(ip["policy"]["crashConsistentFrequencyInSeconds"], 5);
  EXPECT_EQ(ip["provisioningState"], "Succeeded");
  EXPECT_EQ(interval_in_a(), 5);

  // Back to a policy of its own: the policy is free to go.
  body["properties"].erase("policyId");
  body["properties"]["policy"] = {{"crashConsistentFrequencyInSeconds", 10}};
  ASSERT_EQ(b_->Finish(b_->Call("PUT", item, body))["status"], "Succeeded");
  EXPECT_FALSE(b_->Call("GET", item).body["properties"].contains("policyId"));
  EXPECT_EQ(b_->Call("DELETE", pol).status, 200);
  EXPECT_EQ(b_->Call("GET", pol).status, 404);
}

}  // namespace
}  // namespace stratus::recovery::site
