#include "recovery/site/replica_receiver.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "core/clock.h"
#include "core/fs.h"
#include "core/resource_id.h"
#include "recovery/site/block_stream.h"
#include "recovery/site/replication_internal.h"

namespace stratus::recovery::site {

namespace {

bool SafeName(const std::string& s) {
  if (s.empty() || s.size() > 80 || s[0] == '.') return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return false;
  return true;
}

// A JSON cycle number (parsed bodies hold it unsigned; built ones may hold it signed).
bool IsSeq(const Json& body) {
  return body.is_object() && body.contains("seq") && body["seq"].is_number_integer() &&
         body["seq"].get<int64_t>() >= 0;
}

Status BadRequest(const std::string& why) {
  return InvalidArgument(why, "", "InvalidRequestContent");
}

}  // namespace

ReplicaReceiver::ReplicaReceiver(Lookup lookup, OnPoint on_point)
    : lookup_(std::move(lookup)), on_point_(std::move(on_point)) {}

void ReplicaReceiver::RegisterRoutes(PeerServer& server) {
  server.Route("POST", "/peer/v1/replication/cycle/begin",
               [this](const PeerCaller& c, const Json& b) { return Begin(c, b); });
  server.Route("POST", "/peer/v1/replication/cycle/commit",
               [this](const PeerCaller& c, const Json& b) { return Commit(c, b); });
  server.Route("POST", "/peer/v1/replication/cycle/abort",
               [this](const PeerCaller& c, const Json& b) { return Abort(c, b); });
  server.RouteRaw(
      "POST", "/peer/v1/replication/cycle/blocks",
      [this](const PeerCaller& c, const api::HttpRequest& req) -> Result<Json> {
        auto q = [&](const char* k) {
          auto it = req.query.find(k);
          return it == req.query.end() ? std::string() : it->second;
        };
        std::string seq = q("seq");
        if (seq.empty() || seq.size() > 19 || seq.find_first_not_of("0123456789") != std::string::npos)
          return BadRequest("'seq' must be a cycle number");
        // How far the source is through the cycle (health's backlog; a resume's start).
        auto number = [&](const char* k) -> uint64_t {
          std::string v = q(k);
          if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos)
            return 0;
          return std::stoull(v);
        };
        BatchPosition at{number("done"), number("changed"), number("through")};
        return Blocks(c, q("item"), std::stoull(seq), q("disk"), req.body, at);
      },
      2 * kMaxBatchBytes);
}

Result<ReplicaReceiver::Item> ReplicaReceiver::Authorize(const PeerCaller& caller,
                                                         const std::string& item) {
  if (!SafeName(item)) return BadRequest("'item' is not an item id");
  ASSIGN_OR_RETURN(Item info, lookup_(item));
  if (!info.accepts_cycles)
    return Conflict("Item '" + item + "' was failed over here; it takes no more cycles.", "",
                    "ItemFailedOver");
  if (!EqualsIgnoreCase(info.source_region, caller.region))
    return Status(StatusCode::kForbidden, "ReplicationNotFromSource",
                  "Item '" + item + "' is replicated from region '" + info.source_region +
                      "', not from '" + caller.region + "'.");
  return info;
}

Result<ReplicaChain*> ReplicaReceiver::ChainLocked(const std::string& item, const Item& info,
                                                   const std::string& disk, uint64_t size) {
  std::string key = item + "/" + disk;
  auto it = chains_.find(key);
  if (it != chains_.end()) {
    if (size != 0 && it->second->size() != size)
      return Conflict("disk '" + disk + "' is " + std::to_string(it->second->size()) +
                          " bytes in the replica, " + std::to_string(size) + " at the source",
                      disk, "ReplicaSizeMismatch");
    return it->second.get();
  }
  auto base = info.base_images.find(disk);
  ASSIGN_OR_RETURN(auto chain,
                   ReplicaChain::Open(JoinPath(info.dir, disk), size,
                                      base == info.base_images.end() ? "" : base->second));
  if (size != 0 && chain->size() != size)
    return Conflict("disk '" + disk + "' is " + std::to_string(chain->size()) +
                        " bytes in the replica, " + std::to_string(size) + " at the source",
                    disk, "ReplicaSizeMismatch");
  ReplicaChain* p = chain.get();
  chains_[key] = std::move(chain);
  return p;
}

Result<ReplicaChain*> ReplicaReceiver::Chain(const std::string& item, const std::string& disk,
                                             uint64_t size) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(Item info, lookup_(item));
  return ChainLocked(item, info, disk, size);
}

void ReplicaReceiver::DiscardLocked(const std::string& item) {
  auto it = open_.find(item);
  if (it == open_.end()) return;
  for (auto& [disk, w] : it->second.writers) {
    (void)w->Finish();
    auto c = chains_.find(item + "/" + disk);
    if (c != chains_.end()) {
      Status s = c->second->Discard(it->second.seq);
      if (!s.ok()) spdlog::warn("replica {}/{}: discarding cycle {}: {}", item, disk,
                                it->second.seq, s.ToString());
    }
  }
  open_.erase(it);
}

void ReplicaReceiver::SuspendLocked(const std::string& item) {
  auto it = open_.find(item);
  if (it == open_.end()) return;
  for (auto& [disk, w] : it->second.writers) {
    auto c = chains_.find(item + "/" + disk);
    if (c == chains_.end()) continue;
    auto t = it->second.through.find(disk);
    Status s = w->Finish();
    if (s.ok())
      s = c->second->MarkResumable(it->second.seq, t == it->second.through.end() ? 0 : t->second);
    if (!s.ok()) {
      spdlog::warn("replica {}/{}: keeping cycle {} to resume: {}", item, disk, it->second.seq,
                   s.ToString());
      (void)c->second->Discard(it->second.seq);
    }
  }
  open_.erase(it);
}

void ReplicaReceiver::DiscardKeptLocked(const std::string& item, const Item& info,
                                        const std::map<std::string, uint64_t>& keep) {
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(info.dir, ec)) {
    const std::string disk = e.path().filename().string();
    if (keep.count(disk) || !PathExists(JoinPath(e.path().string(), "chain.json"))) continue;
    auto chain = ChainLocked(item, info, disk, 0);
    if (!chain.ok() || (*chain)->OpenSeq() == 0) continue;
    Status s = (*chain)->Discard((*chain)->OpenSeq());
    if (!s.ok()) spdlog::warn("replica {}/{}: discarding a kept cycle: {}", item, disk, s.ToString());
  }
}

void ReplicaReceiver::Forget(const std::string& item) {
  std::lock_guard<std::mutex> l(mu_);
  DiscardLocked(item);
  if (auto info = lookup_(item); info.ok()) DiscardKeptLocked(item, *info, {});
  for (auto it = chains_.begin(); it != chains_.end();)
    it = it->first.rfind(item + "/", 0) == 0 ? chains_.erase(it) : std::next(it);
}

Result<Json> ReplicaReceiver::Begin(const PeerCaller& caller, const Json& body) {
  if (!IsSeq(body) || !body.contains("disks") || !body["disks"].is_array() || body["disks"].empty())
    return BadRequest("a cycle needs 'item', 'seq' and 'disks'");
  std::string item = body.value("item", "");
  uint64_t seq = body["seq"].get<uint64_t>();
  const uint64_t resume_of = body.contains("resumeOf") && body["resumeOf"].is_number_unsigned()
                                 ? body["resumeOf"].get<uint64_t>()
                                 : 0;
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(Item info, Authorize(caller, item));
  // A cycle the source did not finish (the link dropped before its abort): kept like an aborted
  // one, then resumed below or discarded.
  SuspendLocked(item);
  OpenCycle cycle;
  cycle.seq = seq;
  cycle.meta = body.value("meta", Json::object());
  cycle.changed = body.contains("changedBytes") && body["changedBytes"].is_number_unsigned()
                      ? body["changedBytes"].get<uint64_t>()
                      : 0;
  cycle.started_ms = repl::WallMs();
  Json resumed = Json::object();
  for (auto& d : body["disks"]) {
    std::string name = d.value("name", "");
    uint64_t size = d.value("sizeBytes", uint64_t{0});
    if (!SafeName(name) || size == 0) return BadRequest("a disk needs 'name' and 'sizeBytes'");
    cycle.sizes[name] = size;
  }
  DiscardKeptLocked(item, info, cycle.sizes);
  for (auto& [name, size] : cycle.sizes) {
    auto chain = ChainLocked(item, info, name, size);
    Result<std::unique_ptr<CycleWriter>> w = Internal("no layer");
    if (chain.ok()) {
      const uint64_t kept = (*chain)->OpenSeq();
      uint64_t through = 0;
      if (kept != 0 && kept == resume_of && seq > kept) {
        w = (*chain)->ResumeCycle(kept, seq, &through);
        if (w.ok()) resumed[name] = through;
      } else {
        Status s = kept == 0 ? Status::Ok() : (*chain)->Discard(kept);
        w = s.ok() ? (*chain)->BeginCycle(seq) : Result<std::unique_ptr<CycleWriter>>(s);
      }
    }
    if (!chain.ok() || !w.ok()) {
      open_[item] = std::move(cycle);  // what was opened is discarded below
      DiscardLocked(item);
      return chain.ok() ? w.status() : chain.status();
    }
    cycle.writers[name] = std::move(w).value();
  }
  if (!resumed.empty()) cycle.resumed_from = resume_of;
  open_[item] = std::move(cycle);
  Json out = {{"item", item}, {"seq", seq}};
  if (!resumed.empty()) out["resumed"] = resumed;
  return out;
}

Result<std::map<std::string, ReplicaReceiver::OpenCycle>::iterator> ReplicaReceiver::OpenCycleOf(
    const PeerCaller& caller, const std::string& item, uint64_t seq) {
  ASSIGN_OR_RETURN(Item info, Authorize(caller, item));
  auto it = open_.find(item);
  if (it == open_.end() || it->second.seq != seq)
    return Conflict("cycle " + std::to_string(seq) + " of item '" + item + "' is not open here",
                    "", "ReplicationCycleNotOpen");
  return it;
}

Result<Json> ReplicaReceiver::Blocks(const PeerCaller& caller, const std::string& item,
                                     uint64_t seq, const std::string& disk,
                                     std::string_view batch, const BatchPosition& at) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(auto it, OpenCycleOf(caller, item, seq));
  OpenCycle& cycle = it->second;
  auto w = cycle.writers.find(disk);
  if (w == cycle.writers.end()) return BadRequest("no disk '" + disk + "' in this cycle");
  const uint64_t size = cycle.sizes[disk];
  if (at.through > size) return BadRequest("'through' is past the end of disk '" + disk + "'");
  ASSIGN_OR_RETURN(auto frames, DecodeBlockBatch(batch, size));
  uint64_t end = 0;
  for (auto& f : frames) {
    Status s = f.zero ? w->second->Zero(f.offset, f.length)
                      : w->second->Write(f.offset, f.data.data(), f.data.size());
    if (!s.ok()) return s;
    (f.zero ? cycle.zero_bytes : cycle.bytes) += f.length;
    end = std::max(end, f.offset + f.length);
  }
  // Durable, then recorded: a cut from here on resumes above `through`.
  RETURN_IF_ERROR(w->second->Flush());
  uint64_t through = std::max(cycle.through[disk], at.through != 0 ? at.through : end);
  if (through != cycle.through[disk]) {
    RETURN_IF_ERROR(chains_[item + "/" + disk]->MarkResumable(seq, through));
    cycle.through[disk] = through;
  }
  cycle.frames += frames.size();
  cycle.wire += batch.size();
  if (at.changed != 0) cycle.changed = at.changed;
  cycle.done = std::max(cycle.done, std::min(at.done, cycle.changed));
  return Json{{"frames", frames.size()}};
}

Result<Json> ReplicaReceiver::Commit(const PeerCaller& caller, const Json& body) {
  if (!IsSeq(body)) return BadRequest("a commit needs 'item' and 'seq'");
  std::string item = body.value("item", "");
  uint64_t seq = body["seq"].get<uint64_t>();
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(auto it, OpenCycleOf(caller, item, seq));
  // Every disk's data durable first, then the layers sealed, then the point recorded. A cut
  // between two seals leaves some disks with a sealed layer of a cycle that is no point: it is
  // harmless (the source's next cycle sends a superset of its blocks on top, since the last
  // point it saw confirmed) and thinning merges it away.
  for (auto& [disk, w] : it->second.writers) {
    Status s = w->Finish();
    if (!s.ok()) {
      DiscardLocked(item);
      return s;
    }
  }
  for (auto& [disk, w] : it->second.writers) {
    Status s = chains_[item + "/" + disk]->Seal(seq);
    if (!s.ok()) {
      DiscardLocked(item);
      return s;
    }
  }
  const int64_t took = std::max<int64_t>(1, repl::WallMs() - it->second.started_ms);
  Json stats = {{"bytes", it->second.bytes},
                {"zeroBytes", it->second.zero_bytes},
                {"frames", it->second.frames},
                {"wireBytes", it->second.wire},
                {"durationMs", took},
                {"bytesPerSecond", it->second.wire * 1000 / static_cast<uint64_t>(took)}};
  if (it->second.resumed_from != 0) stats["resumedFrom"] = it->second.resumed_from;
  last_error_.erase(item);
  Json meta = it->second.meta;
  open_.erase(it);
  RETURN_IF_ERROR(on_point_(item, seq, meta, stats));
  return Json{{"item", item}, {"seq", seq}, {"point", true}};
}

Result<Json> ReplicaReceiver::Abort(const PeerCaller& caller, const Json& body) {
  std::string item = body.is_object() ? body.value("item", "") : "";
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(Item info, Authorize(caller, item));
  SuspendLocked(item);  // kept: the source's next cycle may resume it
  // Why the source gave the cycle up (health's lastError), until a cycle commits.
  std::string why = body.is_object() && body.contains("error") && body["error"].is_string()
                        ? body["error"].get<std::string>().substr(0, 1000)
                        : "the source aborted the cycle";
  last_error_[item] = {{"message", why}, {"time", FormatIso8601(repl::WallMs())}};
  return Json{{"item", item}};
}

Json ReplicaReceiver::Progress(const std::string& item) {
  std::lock_guard<std::mutex> l(mu_);
  Json out = Json::object();
  if (auto it = open_.find(item); it != open_.end()) {
    const OpenCycle& c = it->second;
    const int64_t took = std::max<int64_t>(1, repl::WallMs() - c.started_ms);
    out["cycle"] = {{"sequence", c.seq},
                    {"startTime", FormatIso8601(c.started_ms)},
                    {"changedBytes", c.changed},
                    {"doneBytes", c.done},
                    {"bytesReceived", c.bytes},
                    {"wireBytes", c.wire},
                    {"bytesPerSecond", c.wire * 1000 / static_cast<uint64_t>(took)}};
  }
  if (auto e = last_error_.find(item); e != last_error_.end()) out["lastError"] = e->second;
  return out;
}

}  // namespace stratus::recovery::site
