// ReplicationService after a failover: change of point and commit, reprotect, failback
// (docs/site-recovery.md "Failover", "Reprotect", "Failback").
//
// Reprotect: after a failover, the VM
// that now runs in the target region (B) is replicated back to the source region (A), onto A's
// stale copy of it, sending only the blocks that differ:
//   - what the VM wrote in B since the failover: the failover bitmap its disks got before their
//     first boot (FailoverBitmapName);
//   - what A's VM wrote after the last cycle A shipped: A's replication bitmap of that cycle;
//   - the cycles between A's last shipped one and the failover point: the layers of B's
//     replica between the two (a point older or newer than A's).
// No disk is read whole and nothing is checksummed to find them.
//
// B (the user's call, POST {item}/reprotect) asks A over the peer link (PeerReprotect): A powers
// its VM off and holds it (VmIsReplicaBase: no start, no delete), reads its bitmap's extents,
// makes the new item in its vault — its replicas are built on the VM's disks (ReplicaReceiver
// base_images) — and ends its own outbound replication. B then adds the outbound record of the
// new item, whose first cycle is incremental from the failover bitmap with A's extents and the
// layers' extents added (CycleDisk::extra), and waits for that cycle.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "api/resource_util.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/subprocess.h"
#include "core/uuid.h"
#include "recovery/datapath/image_source.h"
#include "recovery/service/records.h"
#include "recovery/site/replication_internal.h"
#include "recovery/site/replication_service.h"

namespace stratus::recovery::site {

using api::ApiRequest;
using api::ApiResponse;
using namespace repl;  // NOLINT: this module's own helpers

namespace {

constexpr char kReprotectOp[] =
    "Stratus.RecoveryServices/vaults/replicationProtectedItems/reprotect/action";
constexpr char kChangePointOp[] =
    "Stratus.RecoveryServices/vaults/replicationProtectedItems/changeRecoveryPoint/action";
constexpr char kCommitOp[] =
    "Stratus.RecoveryServices/vaults/replicationProtectedItems/commit/action";

Json ExtentsJson(const std::vector<datapath::Extent>& extents) {
  Json out = Json::array();
  for (auto& e : extents) out.push_back(Json::array({e.offset, e.length}));
  return out;
}

std::vector<datapath::Extent> ExtentsFrom(const Json& j) {
  std::vector<datapath::Extent> out;
  if (!j.is_array()) return out;
  for (auto& e : j)
    if (e.is_array() && e.size() == 2 && e[0].is_number_unsigned() && e[1].is_number_unsigned())
      out.push_back({e[0].get<uint64_t>(), e[1].get<uint64_t>(), 0});
  return out;
}


}  // namespace

const api::Shape& ReplicationService::ItemActionShape(const std::string& action) {
  using api::Shape;
  static const Shape reprotect = Shape::Object({{"targetVaultName", Shape::String()},
                                                {"targetResourceGroup", Shape::String()}});
  static const Shape change = Shape::Object({{"recoveryPointName", Shape::String()}});
  static const Shape none = Shape::Object({});
  if (EqualsIgnoreCase(action, "reprotect")) return reprotect;
  if (EqualsIgnoreCase(action, "changeRecoveryPoint")) return change;
  if (EqualsIgnoreCase(action, "commit")) return none;
  return FailoverShape();
}

Result<std::vector<ReplicationService::VmDisk>> ReplicationService::VmDisks(
    const store::Record& vm) const {
  // In the order of the domain's targets (vda = OS disk, vdb = LUN 0, ...).
  std::vector<VmDisk> out;
  const Json& sp = vm.body["properties"]["storageProfile"];
  auto add = [&](const Json& d, int lun) -> Status {
    ASSIGN_OR_RETURN(ResourceId did, ResourceId::Parse(d["managedDisk"].value("id", "")));
    ASSIGN_OR_RETURN(std::string path, d_.disks->PathOf(did));
    out.push_back({service::DiskKeyName(lun), path,
                   std::string("vd") + static_cast<char>('a' + (lun + 1))});
    return Status::Ok();
  };
  RETURN_IF_ERROR(add(sp["osDisk"], -1));
  for (auto& d : sp["dataDisks"]) RETURN_IF_ERROR(add(d, d.value("lun", 0)));
  return out;
}

Result<ApiResponse> ReplicationService::StartItemOperation(
    const ApiRequest& req, const ResourceId& id, const std::string& op_name,
    const std::vector<std::string>& keys, std::function<Status(api::OperationContext&)> fn) {
  ASSIGN_OR_RETURN(auto lock, d_.ctx.ops->TryLock(keys));
  ASSIGN_OR_RETURN(std::string op, d_.ctx.ops->StartLocked(std::move(lock), id, op_name,
                                                           Json::object(), std::move(fn),
                                                           req.caller));
  return api::AcceptedResponse(req, id.subscription(), op);
}

Result<ApiResponse> ReplicationService::StartAfterFailover(const ApiRequest& req,
                                                           const ResourceId& id,
                                                           const std::string& action) {
  Json params = req.body.is_object() ? req.body : Json::object();
  const bool commit = EqualsIgnoreCase(action, "commit");
  RETURN_IF_ERROR(api::RejectUnknownKeys(params, commit ? std::vector<std::string>{}
                                                        : std::vector<std::string>{"recoveryPointName"},
                                         ""));
  ASSIGN_OR_RETURN(store::Record rec, d_.ctx.store->Get(id.Key()));
  const Json& p = rec.body["properties"];
  if (p.value("protectionState", "") != "FailedOver")
    return Conflict("Item '" + id.name() + "' is " + p.value("protectionState", "") + "; " +
                        (commit ? "commit" : "a change of point") + " follows a failover.",
                    id.ToString(), "NotFailedOver");
  if (!commit) {
    if (p.value("failoverCommitted", false))
      return Conflict("Item '" + id.name() + "''s failover is committed: its point is final.",
                      id.ToString(), "FailoverCommitted");
    if (p.value("failback", false) || !p.value("reprotectState", "").empty())
      return Conflict("Item '" + id.name() + "''s point cannot change any more (failed back or "
                      "reprotected).", id.ToString(), "FailoverCommitted");
    std::string point = params.value("recoveryPointName", "");
    if (point.empty())
      return InvalidArgument("'recoveryPointName' is required.", "recoveryPointName",
                             "MissingParameter");
    if (!d_.ctx.store->Get(id.Key() + "/recoverypoints/" + point).ok())
      return NotFound("Item '" + id.name() + "' has no recovery point '" + point + "'.",
                      "recoveryPointName", "RecoveryPointNotFound");
  }
  std::string caller = req.caller;
  return StartItemOperation(req, id, commit ? kCommitOp : kChangePointOp, {id.Key()},
                            [this, id, params, caller, commit](api::OperationContext& octx) {
                              if (commit) return CommitFailover(id);
                              return ChangeRecoveryPoint(id, params.value("recoveryPointName", ""),
                                                         caller, octx);
                            });
}

Status ReplicationService::CommitFailover(const ResourceId& id) {
  return PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
    Json& p = r.body["properties"];
    if (p.value("failoverCommitted", false)) return false;
    p["failoverCommitted"] = true;
    p["failoverCommitTime"] = FormatIso8601(WallMs());
    return true;
  });
}

Status ReplicationService::ChangeRecoveryPoint(const ResourceId& id, const std::string& point,
                                               const std::string& caller,
                                               api::OperationContext& octx) {
  ASSIGN_OR_RETURN(store::Record rec, d_.ctx.store->Get(id.Key()));
  ASSIGN_OR_RETURN(store::Record pt, d_.ctx.store->Get(id.Key() + "/recoverypoints/" + point));
  const std::string item_id = rec.internal.value("itemId", "");
  const uint64_t seq = pt.internal.value("seq", uint64_t{0});
  ASSIGN_OR_RETURN(ResourceId vm_id,
                   ResourceId::Parse(rec.body["properties"].value("failedOverVmId", "")));
  ASSIGN_OR_RETURN(store::Record vm, d_.ctx.store->Get(vm_id.Key()));
  ASSIGN_OR_RETURN(std::vector<VmDisk> disks, VmDisks(vm));
  // Every disk must have the point before anything changes (a disk attached after the failover
  // has no replica: the change is refused as a whole).
  std::vector<std::string> images;
  for (auto& d : disks) {
    auto chain = receiver_->Chain(item_id, d.name);
    if (!chain.ok())
      return Conflict("Disk " + d.name + " of VM '" + vm_id.name() + "' has no replica to take "
                      "point " + point + " from.", d.name, "RecoveryPointNotFound");
    ASSIGN_OR_RETURN(std::string image, (*chain)->PointImage(seq));
    images.push_back(image);
  }
  // The VM stops (hard: what it wrote since the failover is what the change throws away).
  octx.SetProgress(10, "stopping VM " + vm_id.name());
  ASSIGN_OR_RETURN(std::string off,
                   d_.vms->StartAction(vm_id, "poweroff", {{"skipShutdown", true}}, caller));
  RETURN_IF_ERROR(WaitOperation(off, "VM '" + vm_id.ToString() + "' did not stop"));
  // Each disk is copied out of its replica at the other point beside the old file, which the
  // copy then replaces (a rename: the VM's disk is one or the other, never half of each).
  int done = 0;
  for (auto& d : disks) {
    octx.SetProgress(20 + 60 * done++ / std::max<size_t>(1, disks.size()),
                     "copying disk " + d.name + " at point " + point);
    const std::string& image = images[done - 1];
    const std::string tmp = d.path + ".changing";
    RemoveFile(tmp);
    auto conv = RunChecked({"qemu-img", "convert", "-q", "-O", "qcow2", "-o", "lazy_refcounts=on",
                            image, tmp});
    Status s = conv.ok() ? d_.engine->AddBitmap(tmp, FailoverBitmapName(item_id)) : conv.status();
    if (s.ok() && ::rename(tmp.c_str(), d.path.c_str()) != 0)
      s = Internal("cannot replace " + d.path + " with the copy at point " + point);
    if (!s.ok()) {
      RemoveFile(tmp);
      return Internal("disk " + d.name + " at point " + point + ": " + s.message());
    }
    RETURN_IF_ERROR(FsyncDir(std::filesystem::path(d.path).parent_path().string()));
  }
  RETURN_IF_ERROR(PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
    Json& p = r.body["properties"];
    p["failoverRecoveryPoint"] = pt.body.value("id", "");
    p["failoverRecoveryPointTime"] = pt.body["properties"].value("recoveryPointTime", "");
    r.internal["failoverSeq"] = seq;
    return true;
  }));
  octx.SetProgress(85, "starting VM " + vm_id.name());
  ASSIGN_OR_RETURN(std::string on, d_.vms->Act(vm_id, "start", caller));
  RETURN_IF_ERROR(WaitOperation(on, "VM '" + vm_id.ToString() + "' did not start"));
  octx.result()["recoveryPoint"] = pt.body.value("id", "");
  octx.result()["recoveryPointTime"] = pt.body["properties"].value("recoveryPointTime", "");
  return Status::Ok();
}

Result<ApiResponse> ReplicationService::StartReprotect(const ApiRequest& req, const ResourceId& id) {
  Json params = req.body.is_object() ? req.body : Json::object();
  RETURN_IF_ERROR(api::RejectUnknownKeys(params, {"targetVaultName", "targetResourceGroup"}, ""));
  ASSIGN_OR_RETURN(store::Record rec, d_.ctx.store->Get(id.Key()));
  const Json& p = rec.body["properties"];
  if (p.value("protectionState", "") != "FailedOver")
    return Conflict("Item '" + id.name() + "' is " + p.value("protectionState", "") +
                        "; reprotect follows a failover.",
                    id.ToString(), "NotFailedOver");
  std::string state = p.value("reprotectState", "");
  // Reprotecting with no operation running (the item's lock below is free) is a run a restart
  // cut: it may run again (the reverse item's id is kept).
  if (state == "Reprotected")
    return Conflict("Item '" + id.name() + "' is " + state + " already (item '" +
                        p.value("reverseItemId", "") + "' in region '" +
                        p.value("sourceRegion", "") + "').",
                    id.ToString(), "AlreadyReprotected");
  auto vm_id = ResourceId::Parse(p.value("failedOverVmId", ""));
  if (!vm_id.ok() || !d_.ctx.store->Get(vm_id->Key()).ok())
    return Conflict("The failed-over VM '" + p.value("failedOverVmId", "") +
                        "' is gone: there is nothing to reprotect.",
                    id.ToString(), "FailedOverVmNotFound");
  if (!params.value("targetVaultName", "").empty())
    RETURN_IF_ERROR(ValidateResourceName(params.value("targetVaultName", ""), "vaults", 50));
  if (!params.value("targetResourceGroup", "").empty())
    RETURN_IF_ERROR(ValidateResourceGroupName(params.value("targetResourceGroup", "")));
  if (!d_.pairing || !d_.pairing->ClientFor(p.value("sourceRegion", "")).ok())
    return Status(StatusCode::kUnavailable, "PeerRegionUnreachable",
                  "Reprotect replicates back to region '" + p.value("sourceRegion", "") +
                      "', which is not paired (or not reachable) now.");
  std::string caller = req.caller;
  return StartItemOperation(req, id, kReprotectOp, {id.Key()},
                            [this, id, params, caller](api::OperationContext& octx) {
                              return Reprotect(id, params, caller, octx);
                            });
}

Status ReplicationService::Reprotect(const ResourceId& id, const Json& params,
                                     const std::string& caller, api::OperationContext& octx) {
  (void)caller;
  int64_t t0 = WallMs();
  ASSIGN_OR_RETURN(store::Record rec, d_.ctx.store->Get(id.Key()));
  const Json p = rec.body["properties"];
  const std::string item_id = rec.internal.value("itemId", "");
  const std::string source = p.value("sourceRegion", "");
  const uint64_t failover_seq = rec.internal.value("failoverSeq", uint64_t{0});
  ASSIGN_OR_RETURN(ResourceId vm_id, ResourceId::Parse(p.value("failedOverVmId", "")));
  ASSIGN_OR_RETURN(store::Record vm, d_.ctx.store->Get(vm_id.Key()));
  ASSIGN_OR_RETURN(std::vector<VmDisk> disks, VmDisks(vm));
  const std::string domain = vm.internal.value("domain", "");
  // The reverse item's id is kept: a reprotect run again (after a failure) asks for the same.
  std::string reverse = rec.internal.value("reverseItemId", "");
  if (reverse.empty()) reverse = NewUuid();
  RETURN_IF_ERROR(CommitFailover(id));  // the point is final from here on
  RETURN_IF_ERROR(PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
    r.internal["reverseItemId"] = reverse;
    r.body["properties"]["reprotectState"] = "Reprotecting";
    r.body["properties"].erase("reprotect");
    return true;
  }));
  auto fail = [&](const Status& why) {
    (void)PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
      r.body["properties"]["reprotectState"] = "Failed";
      r.body["properties"]["reprotectError"] = why.message();
      return true;
    });
    return why;
  };
  // Every error below marks the item Failed (a reprotect may then run again).
  Status done = [&]() -> Status {
  // 1. The source region holds its VM still and says what it wrote after its last cycle.
  octx.SetProgress(10, "asking region " + source + " to hold its copy of the VM");
  ASSIGN_OR_RETURN(PeerClient client, d_.pairing->ClientFor(source));
  Json ask = {{"item", item_id},
              {"reverseItem", reverse},
              {"itemName", id.name()},
              {"vaultName", params.value("targetVaultName", id.Parent().name())},
              {"resourceGroup", params.value("targetResourceGroup", "")},
              {"vmId", vm_id.ToString()},
              {"vmConfig", SourceConfig(vm)},
              {"policy", p.value("policy", Json::object())}};
  Result<PeerReply> reply = Internal("not asked");
  for (int attempt = 0; attempt < 3; ++attempt) {  // the source answers a repeated ask the same
    reply = client.Call("POST", "/peer/v1/replication/reprotect", ask.dump());
    if (reply.ok()) break;
  }
  if (!reply.ok() || reply->status != 200)
    return fail(NotFromPeer("Region '" + source + "'", reply));
  auto answer = ParseJson(reply->body);
  if (!answer.ok() || !answer->is_object())
    return fail(Internal("region '" + source + "' answered no reprotect details"));
  const uint64_t base_seq = answer->value("baseSeq", uint64_t{0});
  bool full = answer->value("full", false);

  // 2. What to send besides the failover bitmap: the source's own writes, and the cycles between
  // its last shipped one and the failover point (B's replica layers).
  octx.SetProgress(30, "finding the blocks that differ");
  Json seed = Json::object();
  uint64_t source_bytes = 0, layer_bytes = 0;
  if (!full) {
    const Json& divergence = (*answer)["divergence"];
    for (auto& d : disks) {
      std::vector<datapath::Extent> extents = ExtentsFrom(divergence.value(d.name, Json::array()));
      source_bytes += datapath::TotalBytes(extents);
      if (base_seq != failover_seq) {
        auto chain = receiver_->Chain(item_id, d.name);
        if (!chain.ok()) {
          full = true;  // the points between are gone: send the disks whole
          break;
        }
        ASSIGN_OR_RETURN(auto layers,
                         (*chain)->ChangedBetween(std::min(base_seq, failover_seq),
                                                  std::max(base_seq, failover_seq)));
        layer_bytes += datapath::TotalBytes(layers);
        extents.insert(extents.end(), layers.begin(), layers.end());
      }
      seed[d.name] = ExtentsJson(datapath::MergeExtents(std::move(extents)));
    }
  }
  // The failover bitmap on every disk (a running VM's as a checkpoint libvirt knows).
  std::string base_checkpoint = full ? "" : FailoverBitmapName(item_id);
  if (!base_checkpoint.empty()) {
    auto info = d_.hv->Info(domain);
    bool running = info.ok() && info->state == compute::PowerState::kRunning;
    if (running) {
      std::vector<std::string> devs;
      for (auto& d : disks) devs.push_back(d.dev);
      Status r = d_.hv->RedefineCheckpoint(domain, base_checkpoint, devs);
      if (!r.ok()) {
        spdlog::warn("reprotect of {}: the failover bitmap cannot be used ({}): sending the disks "
                     "whole", id.ToString(), r.ToString());
        base_checkpoint.clear();
      }
    } else {
      for (auto& d : disks) {
        bool have = false;
        if (auto list = d_.engine->ListBitmaps(d.path); list.ok())
          for (auto& b : *list)
            have = have || (b.name == base_checkpoint && b.enabled && !b.in_use);
        if (!have) base_checkpoint.clear();
      }
    }
  }

  // 3. This region replicates the VM from here on, to the source.
  octx.SetProgress(40, "replicating the VM back to region " + source);
  store::Record out;
  out.key = kOutboundPrefix + ToLower(reverse);
  out.type = kOutboundType;
  out.body = {{"item", reverse},
              {"targetRegion", source},
              {"vmId", vm_id.ToString()},
              {"vmKey", vm.key},
              {"intervalSeconds", p["policy"].value("crashConsistentFrequencyInSeconds", 30)},
              {"seq", 0},
              {"checkpoint", base_checkpoint},
              {"nextDueMs", 0},
              {"state", "Enabled"},
              // The target's replica stands on its old disk: a full cycle writes holes as zeros.
              {"baseNotEmpty", true},
              {"seedExtents", seed},
              {"reprotectOf", id.Key()}};
  // Where A's copy reads as the failover point (everywhere but the seed extents), this region's
  // replica of that point tells which 4 KiB blocks of a changed cluster A has already.
  if (!base_checkpoint.empty() && failover_seq > 0) {
    out.body["referenceItem"] = item_id;
    out.body["referenceSeq"] = failover_seq;
  }
  if (auto existing = d_.ctx.store->Get(out.key); existing.ok()) out.etag = existing->etag;
  RETURN_IF_ERROR(d_.ctx.store->Put(out).status());
  cv_.notify_all();
  spdlog::info("reprotect: replicating VM {} back to region '{}' as item {} ({})",
               vm_id.ToString(), source, reverse,
               base_checkpoint.empty() ? "whole disks" : "only the blocks that differ");

  // 4. Done when the first cycle is in the source.
  for (;;) {
    {
      std::unique_lock<std::mutex> l(mu_);
      if (stopping_) return fail(Internal("the region is shutting down"));
    }
    auto now = d_.ctx.store->Get(out.key);
    if (!now.ok()) return fail(Internal("the reverse replication was removed"));
    if (now->body.value("seq", uint64_t{0}) > 0) {
      Json cycle = now->body.value("lastCycle", Json::object());
      Json summary = {{"reverseItemId", answer->value("itemId", "")},
                      {"reverseReplicatedItemId", reverse},
                      {"incremental", !cycle.value("full", true)},
                      {"bytesChanged", cycle.value("bytesChanged", uint64_t{0})},
                      {"bytesSent", cycle.value("bytesSent", uint64_t{0})},
                      {"sourceWrittenBytes", source_bytes},
                      {"pointsBetweenBytes", layer_bytes},
                      {"disks", cycle.value("disks", Json::object())},
                      {"durationMs", WallMs() - t0}};
      RETURN_IF_ERROR(PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
        Json& rp = r.body["properties"];
        rp["reprotectState"] = "Reprotected";
        rp["reverseItemId"] = answer->value("itemId", "");
        rp["reprotect"] = summary;
        rp.erase("reprotectError");
        return true;
      }));
      octx.result() = summary;
      return Status::Ok();
    }
    octx.SetProgress(50, "first cycle to region " + source +
                             (now->body.contains("lastError")
                                  ? " (retrying: " + now->body.value("lastError", "") + ")"
                                  : ""));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  }();
  if (!done.ok()) (void)fail(done);
  return done;
}

Result<ResourceId> ReplicationService::FailbackInto(const store::Record& rec,
                                                    const store::Record& pt,
                                                    const std::string& caller,
                                                    api::OperationContext& octx) {
  const std::string item_id = rec.internal.value("itemId", "");
  const uint64_t seq = pt.internal.value("seq", uint64_t{0});
  ASSIGN_OR_RETURN(store::Record vm, d_.ctx.store->Get(rec.internal.value("baseVmKey", "")));
  ASSIGN_OR_RETURN(ResourceId vm_id, ResourceId::Parse(vm.body.value("id", "")));
  if (auto info = d_.hv->Info(vm.internal.value("domain", ""));
      info.ok() && info->state != compute::PowerState::kStopped)
    return Conflict("VM '" + vm_id.ToString() + "' runs: it was started outside Stratus while its "
                    "disks were the replica's base.", vm_id.ToString(), "VmIsReplicaBase");
  ASSIGN_OR_RETURN(std::vector<VmDisk> disks, VmDisks(vm));
  // The disks the replicas stand on, and no other (a disk swapped meanwhile is not written).
  const Json bases = rec.internal.value("baseImages", Json::object());
  for (auto& d : disks)
    if (bases.value(d.name, "") != d.path)
      return Conflict("VM '" + vm_id.ToString() + "': disk " + d.name + " is not the one the "
                      "replica was built on.", vm_id.ToString(), "VmIsReplicaBase");
  if (bases.size() != disks.size())
    return Conflict("VM '" + vm_id.ToString() + "' has other disks than the replica was built on.",
                    vm_id.ToString(), "VmIsReplicaBase");
  // Each disk takes the point: the chain's layers are committed into it (they hold exactly
  // the blocks that differ), then it tracks what the VM writes from its start on (the next
  // reprotect's base).
  int done = 0;
  for (auto& d : disks) {
    octx.SetProgress(10 + 60 * done++ / std::max<size_t>(1, disks.size()),
                     "writing the point into disk " + d.name);
    ASSIGN_OR_RETURN(ReplicaChain * chain, receiver_->Chain(item_id, d.name));
    ASSIGN_OR_RETURN(std::string image, chain->PointImage(seq));
    auto commit = RunChecked({"qemu-img", "commit", "-q", "-b", d.path, image});
    if (!commit.ok())
      return Internal("writing point " + pt.body.value("name", "") + " into disk " + d.path +
                      ": " + commit.status().message());
    auto bitmaps = d_.engine->ListBitmaps(d.path);
    bool have = false;
    if (bitmaps.ok())
      for (auto& b : *bitmaps) have = have || b.name == FailoverBitmapName(item_id);
    if (!have) RETURN_IF_ERROR(d_.engine->AddBitmap(d.path, FailoverBitmapName(item_id)));
  }
  // The replicas stood on those disks: they are spent.
  receiver_->Forget(item_id);
  if (std::string dir = rec.internal.value("dir", ""); !dir.empty()) (void)RemoveTree(dir);
  RETURN_IF_ERROR(PutWithRetry(d_.ctx.store, vm.key, [&](store::Record& r) {
    r.internal.erase("replicaBaseOf");
    return true;
  }));
  octx.SetProgress(80, "starting VM " + vm_id.name());
  ASSIGN_OR_RETURN(std::string op, d_.vms->Act(vm_id, "start", caller));
  RETURN_IF_ERROR(WaitOperation(op, "VM '" + vm_id.ToString() + "' did not start"));
  return vm_id;
}

Result<Json> ReplicationService::PeerReprotect(const PeerCaller& caller, const Json& body) {
  const std::string item = body.value("item", ""), reverse = body.value("reverseItem", "");
  const std::string item_name = body.value("itemName", ""), vault_name = body.value("vaultName", "");
  auto b_vm = ResourceId::Parse(body.value("vmId", ""));
  if (item.empty() || reverse.empty() || reverse.size() > 64 || !b_vm.ok() ||
      !ValidateResourceName(item_name, "replicationProtectedItems", 260).ok() ||
      !ValidateResourceName(vault_name, "vaults", 50).ok())
    return InvalidArgument("reprotect needs 'item', 'reverseItem', 'itemName', 'vaultName' and "
                           "'vmId'", "", "InvalidRequestContent");
  // Asked again (the answer was lost): the same answer.
  ASSIGN_OR_RETURN(auto items, service::ListAll(d_.ctx.store, "/subscriptions/", kReplItemType));
  for (auto& r : items)
    if (r.internal.value("itemId", "") == reverse) return r.internal.value("reprotectReply", Json());
  ASSIGN_OR_RETURN(store::Record out, OutboundFor(caller, item));
  ASSIGN_OR_RETURN(store::Record vm, d_.ctx.store->Get(out.body.value("vmKey", "")));
  ASSIGN_OR_RETURN(ResourceId vm_id, ResourceId::Parse(vm.body.value("id", "")));
  std::string rg = body.value("resourceGroup", "");
  if (rg.empty()) rg = vm_id.resource_group();
  ResourceId vault =
      ResourceId::Resource(vm_id.subscription(), rg, "Stratus.RecoveryServices", "vaults", vault_name);
  if (!d_.ctx.store->Get(vault.Key()).ok())
    return NotFound("Region '" + d_.ctx.region + "' has no vault '" + vault.ToString() +
                        "' to keep the reprotected item in: create it (or name another).",
                    vault.ToString(), "VaultNotFound");
  ResourceId item_id = vault.Child("replicationProtectedItems", item_name);
  auto existing = d_.ctx.store->Get(item_id.Key());
  // The item this region reprotected from (its reverse is the one failing back now) starts over
  // as the replica of the VM's way back; any other item of that name is in the way.
  if (existing.ok() && existing->internal.value("reverseItemId", "") != item)
    return Conflict("Region '" + d_.ctx.region + "' has an item '" + item_id.ToString() +
                        "' already.", item_id.ToString(), "ResourceExists");

  // The VM stops for good here (a hard stop: its disks are the stale copy the replica is built
  // on; the VM runs in the caller's region now). No cycle of it runs meanwhile.
  RETURN_IF_ERROR(PutWithRetry(d_.ctx.store, out.key, [&](store::Record& r) {
    r.body["state"] = "Reprotecting";
    return true;
  }));
  // Held before it stops: no start may slip in between the stop and the item that builds on its
  // disks (released again if anything below fails).
  RETURN_IF_ERROR(PutWithRetry(d_.ctx.store, vm.key, [&](store::Record& r) {
    r.internal["replicaBaseOf"] = item_id.ToString();
    r.internal["desiredPower"] = "stopped";
    return true;
  }));
  auto release = [&](const Status& why) -> Status {
    (void)PutWithRetry(d_.ctx.store, vm.key, [&](store::Record& r) {
      if (r.internal.value("replicaBaseOf", "") != item_id.ToString()) return false;
      r.internal.erase("replicaBaseOf");
      return true;
    });
    return why;
  };
  const std::string domain = vm.internal.value("domain", "");
  Result<Json> held = [&]() -> Result<Json> {
  if (auto info = d_.hv->Info(domain); info.ok() && info->state != compute::PowerState::kStopped) {
    ASSIGN_OR_RETURN(std::string op, d_.vms->StartAction(vm_id, "poweroff", {{"skipShutdown", true}},
                                                         "peer:" + caller.region));
    RETURN_IF_ERROR(WaitOperation(op, "VM '" + vm_id.ToString() + "' did not stop"));
  }
  std::optional<api::ResourceLock> lock;
  for (int i = 0; i < 100 && !lock; ++i) {  // a cycle that was running ends first
    auto l = d_.ctx.ops->TryLock({vm.key + "/datapath"});
    if (l.ok()) lock.emplace(std::move(l).value());
    else std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!lock) return Conflict("a backup of VM '" + vm_id.ToString() + "' is running", "", "Busy");
  ASSIGN_OR_RETURN(std::vector<VmDisk> disks, VmDisks(vm));

  // What the VM wrote after its last shipped cycle: that cycle's bitmap (every bitmap records
  // every write since it was taken). Without one on every disk, the caller sends whole disks.
  const std::string prev = out.body.value("checkpoint", "");
  const uint64_t base_seq = out.body.value("seq", uint64_t{0});
  bool full = prev.empty();
  Json divergence = Json::object();
  uint64_t divergent_bytes = 0;
  const std::string scratch = JoinPath(d_.ctx.data_dir, "scratch/srep-" + reverse.substr(0, 8));
  RETURN_IF_ERROR(MakeDirs(scratch, 0711));
  for (auto& d : disks) {
    if (full) break;
    bool have = false;
    if (auto list = d_.engine->ListBitmaps(d.path); list.ok())
      for (auto& b : *list) have = have || (b.name == prev && b.enabled && !b.in_use);
    if (!have) {
      full = true;
      break;
    }
    datapath::ImageSourceOptions io;
    io.image = d.path;
    io.bitmap = prev;
    io.socket_dir = scratch;
    io.connections = 1;
    ASSIGN_OR_RETURN(auto img, datapath::OpenImageSource(io));
    auto extents = img.source->Extents(datapath::DirtyBitmapContext(prev));
    (void)img.Close();
    if (!extents.ok()) {
      (void)RemoveTree(scratch);
      return extents.status();
    }
    std::vector<datapath::Extent> dirty;
    for (auto& e : *extents)
      if (e.flags & datapath::kStateDirty) dirty.push_back(e);
    divergent_bytes += datapath::TotalBytes(dirty);
    divergence[d.name] = ExtentsJson(dirty);
  }
  (void)RemoveTree(scratch);
  // Still stopped after the read (a start that was under way before the hold would show here).
  if (auto info = d_.hv->Info(domain); info.ok() && info->state != compute::PowerState::kStopped)
    return Conflict("VM '" + vm_id.ToString() + "' was started during the reprotect.",
                    vm_id.ToString(), "VmIsReplicaBase");
  return Json{{"itemId", item_id.ToString()},
              {"baseSeq", base_seq},
              {"full", full},
              {"divergentBytes", divergent_bytes},
              {"divergence", full ? Json::object() : divergence}};
  }();
  if (!held.ok()) return release(held.status());
  const Json reply = *held;
  const bool full = reply.value("full", true);
  const uint64_t divergent_bytes = reply.value("divergentBytes", uint64_t{0});
  auto disks = VmDisks(vm);
  if (!disks.ok()) return release(disks.status());

  // The item in this region's vault: its replicas stand on the VM's disks.
  int64_t now = d_.ctx.clock->NowMs();
  store::Record rec;
  rec.key = item_id.Key();
  rec.type = kReplItemType;
  rec.body = api::NewResourceBody(item_id, d_.ctx.region, Json::object(), "peer:" + caller.region,
                                  now);
  rec.body["properties"] = {{"provisioningState", "Succeeded"},
                            {"sourceRegion", caller.region},
                            {"sourceVmId", b_vm->ToString()},
                            {"targetRegion", d_.ctx.region},
                            {"policy", body.value("policy", Json::object())},
                            {"replicatedItemId", reverse},
                            {"protectionState", "InitialReplication"},
                            {"replicationHealth", "Normal"},
                            {"vmConfig", body.value("vmConfig", Json::object())},
                            {"reprotectedFrom",
                             {{"originalVmId", vm_id.ToString()},
                              {"divergentBytes", divergent_bytes},
                              {"wholeDisks", full}}}};
  Json bases = Json::object();
  for (auto& d : *disks) bases[d.name] = d.path;
  rec.internal = {{"itemId", reverse},
                  {"dir", JoinPath(d_.ctx.data_dir, "replicas/" + reverse)},
                  {"baseImages", bases},
                  {"baseVmKey", vm.key},
                  {"reprotectReply", reply}};
  if (existing.ok()) {
    // Its old replicas and points were of the VM before the failover: they go.
    const std::string old_item = existing->internal.value("itemId", "");
    receiver_->Forget(old_item);
    if (std::string dir = existing->internal.value("dir", ""); !dir.empty()) (void)RemoveTree(dir);
    if (auto pts = service::ListAll(d_.ctx.store, item_id.Key() + "/recoverypoints/",
                                    kReplPointType);
        pts.ok())
      for (auto& pt : *pts) (void)d_.ctx.store->Delete(pt.key);
    rec.etag = existing->etag;
  }
  if (Status put = d_.ctx.store->Put(rec).status(); !put.ok()) return release(put);
  // This region no longer replicates the VM: its record and bitmaps go (read above).
  for (auto& d : *disks)
    if (auto list = d_.engine->ListBitmaps(d.path); list.ok())
      for (auto& b : *list)
        if (b.name.rfind("srep-" + item.substr(0, 8) + "-", 0) == 0)
          (void)d_.engine->RemoveBitmap(d.path, b.name);
  if (auto cps = d_.hv->ListCheckpoints(domain); cps.ok())
    for (auto& c : *cps)
      if (c.rfind("srep-" + item.substr(0, 8) + "-", 0) == 0) (void)d_.hv->DeleteCheckpoint(domain, c);
  (void)d_.ctx.store->Delete(out.key);
  (void)RemoveTree(JoinPath(d_.ctx.data_dir, "replication/" + item));
  spdlog::info("reprotect: VM {} is held as the base of item {} from region '{}' ({} bytes written "
               "here after the last cycle{})",
               vm_id.ToString(), item_id.ToString(), caller.region, divergent_bytes,
               full ? ", no bitmap: whole disks" : "");
  return reply;
}

}  // namespace stratus::recovery::site
