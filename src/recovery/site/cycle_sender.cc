#include "recovery/site/cycle_sender.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "recovery/site/block_stream.h"
#include "recovery/site/peer_server.h"

namespace stratus::recovery::site {

namespace {

constexpr uint64_t kPiece = 1 << 20;
constexpr size_t kBatchTarget = 8 << 20;

using Clock = std::chrono::steady_clock;

uint64_t ZeroBlockHash() {
  static const uint64_t h = [] {
    std::string z(BlockHashes::kBlock, '\0');
    return BlockHashes::Hash(z.data());
  }();
  return h;
}

bool AllZero(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

Status Call(const PeerClient& peer, const std::string& method, const std::string& target,
            const std::string& body, const std::string& type = "application/json") {
  auto r = peer.Call(method, target, body, type);
  if (!r.ok()) return r.status();
  if (r->status != 200) return PeerError("the target region", r->status, r->body);
  return Status::Ok();
}

// The extents to send of one disk.
Result<std::vector<datapath::Extent>> ToSend(const CycleDisk& d, uint64_t* zero_bytes) {
  std::vector<datapath::Extent> out;
  if (!d.changed_context.empty()) {
    ASSIGN_OR_RETURN(auto extents, d.source->Extents(d.changed_context));
    for (auto& e : extents)
      if (e.flags & datapath::kStateDirty) out.push_back(e);
    if (d.extra.empty()) return out;
    // Clipped to the disk: the target may describe a larger disk than the source has now.
    for (auto e : d.extra) {
      if (e.offset >= d.source->size()) continue;
      e.length = std::min(e.length, d.source->size() - e.offset);
      out.push_back(e);
    }
    return datapath::MergeExtents(std::move(out));
  }
  ASSIGN_OR_RETURN(auto extents, d.source->Extents(datapath::kBaseAllocation));
  for (auto& e : extents) {
    bool hole = (e.flags & datapath::kStateZero) != 0;
    if (!hole) {
      out.push_back(e);
    } else if (d.zero_holes) {
      datapath::Extent z = e;
      z.flags = datapath::kStateZero;  // marks "send as zeros without reading"
      out.push_back(z);
      *zero_bytes += e.length;
    }
  }
  return out;
}

// `extents` (merged, in order) from `from` on.
std::vector<datapath::Extent> Above(const std::vector<datapath::Extent>& extents, uint64_t from) {
  std::vector<datapath::Extent> out;
  for (auto e : extents) {
    if (e.offset + e.length <= from) continue;
    if (e.offset < from) {
      e.length -= from - e.offset;
      e.offset = from;
    }
    out.push_back(e);
  }
  return out;
}

// Whether [offset, offset + length) meets one of `sorted` (merged, in order).
bool Meets(const std::vector<datapath::Extent>& sorted, uint64_t offset, uint64_t length) {
  auto it = std::upper_bound(sorted.begin(), sorted.end(), offset,
                             [](uint64_t o, const datapath::Extent& e) { return o < e.offset; });
  if (it != sorted.end() && it->offset < offset + length) return true;
  return it != sorted.begin() && std::prev(it)->offset + std::prev(it)->length > offset;
}

// Fills the unknown entries of `d.hashes` for the blocks of `extents` from `d.reference`.
Status HashesFromReference(const CycleDisk& d, const std::vector<datapath::Extent>& extents) {
  const auto excluded = datapath::MergeExtents(d.extra);
  std::string buf;
  for (auto& e : extents) {
    for (uint64_t off = e.offset; off < e.offset + e.length; off += kPiece) {
      uint64_t len = std::min(kPiece, e.offset + e.length - off);
      if (off % BlockHashes::kBlock != 0 || len % BlockHashes::kBlock != 0 ||
          off + len > d.reference->size())
        continue;
      buf.resize(len);
      RETURN_IF_ERROR(d.reference->Read(0, off, buf.data(), len));
      for (uint64_t at = 0; at < len; at += BlockHashes::kBlock) {
        uint64_t index = (off + at) / BlockHashes::kBlock;
        if (d.hashes->Get(index) != 0 || Meets(excluded, off + at, BlockHashes::kBlock)) continue;
        d.hashes->Set(index, BlockHashes::Hash(buf.data() + at));
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Json CycleStats::ToJson() const {
  return {{"bytesChanged", bytes_changed},
          {"bytesUnchanged", bytes_unchanged},
          {"bytesSent", bytes_sent},
          {"zeroBytes", zero_bytes},
          {"frames", frames},
          {"resumedFrom", resumed_from},
          {"bytesResumed", bytes_resumed},
          {"durationMs", duration_ms},
          {"disks", disks}};
}

Result<CycleStats> SendCycle(const PeerClient& peer, const CycleRequest& req) {
  auto start = Clock::now();
  CycleStats st;
  Json disks = Json::array();
  for (auto& d : req.disks) disks.push_back({{"name", d.name}, {"sizeBytes", d.source->size()}});
  // Every disk's extents first: the target shows how far the cycle is (its backlog). A resumed
  // cycle's are known once the target says how far it holds the cut cycle.
  std::vector<std::vector<datapath::Extent>> own, all_extents;
  std::vector<uint64_t> all_zeros;
  std::vector<std::vector<datapath::Extent>> resume;
  for (auto& d : req.disks) {
    uint64_t zeros = 0;
    ASSIGN_OR_RETURN(auto extents, ToSend(d, &zeros));
    own.push_back(std::move(extents));
    all_zeros.push_back(zeros);
    resume.push_back(datapath::MergeExtents(d.resume));
  }
  auto plan = [&](const Json& held) {
    all_extents.clear();
    st.bytes_resumed = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < req.disks.size(); ++i) {
      const std::string& name = req.disks[i].name;
      std::vector<datapath::Extent> rest = resume[i];
      if (held.is_object() && held.contains(name) && held[name].is_number_unsigned())
        rest = Above(rest, held[name].get<uint64_t>());
      st.bytes_resumed += datapath::TotalBytes(resume[i]) - datapath::TotalBytes(rest);
      std::vector<datapath::Extent> all = own[i];
      if (!rest.empty()) {
        all.insert(all.end(), rest.begin(), rest.end());
        all = datapath::MergeExtents(std::move(all));
      }
      total += datapath::TotalBytes(all);
      all_extents.push_back(std::move(all));
    }
    return total;
  };
  uint64_t to_go = plan(Json());
  Json begin = {{"item", req.item}, {"seq", req.seq}, {"disks", disks},
                {"meta", req.meta}, {"changedBytes", to_go}};
  if (req.resume_of != 0) begin["resumeOf"] = req.resume_of;
  auto began = peer.Call("POST", "/peer/v1/replication/cycle/begin", begin.dump());
  if (!began.ok()) return began.status();
  if (began->status != 200) return PeerError("the target region", began->status, began->body);
  if (req.resume_of != 0) {
    Json answer = Json::parse(began->body, nullptr, false);
    if (answer.is_object() && answer.contains("resumed")) {
      st.resumed_from = req.resume_of;
      to_go = plan(answer["resumed"]);
    }
  }
  // Known to the target from here: a cut from now on can be resumed. (A begin that failed leaves
  // the caller's earlier resume, if any, as it was.)
  if (req.planned) *req.planned = all_extents;
  if (req.after_begin) req.after_begin();
  // The map's blocks of the cut cycle are unknown: the target may hold its bytes there.
  for (size_t i = 0; i < req.disks.size(); ++i)
    if (req.disks[i].hashes)
      for (auto& e : resume[i])
        for (uint64_t b = e.offset / BlockHashes::kBlock;
             b * BlockHashes::kBlock < e.offset + e.length; ++b)
          req.disks[i].hashes->Set(b, 0);
  // Under a cap, about a second of the link per batch: a cut loses little.
  const size_t batch_target =
      req.bandwidth_bytes_per_s == 0
          ? kBatchTarget
          : static_cast<size_t>(std::clamp<uint64_t>(req.bandwidth_bytes_per_s, 256 << 10,
                                                     kBatchTarget));
  auto abort = [&](const Status& why) -> Status {
    (void)Call(peer, "POST", "/peer/v1/replication/cycle/abort",
               Json{{"item", req.item}, {"seq", req.seq}, {"error", why.message()}}.dump());
    return why;
  };
  uint64_t done = 0;  // of to_go, gone through
  uint64_t sent_for_cap = 0;
  // `through`: the offset of the disk below which all of its extents were gone through.
  auto send = [&](const CycleDisk& d, BlockBatchWriter& w, uint64_t through) -> Status {
    if (w.frames() == 0) return Status::Ok();
    st.frames += w.frames();
    std::string batch = w.Take();
    st.bytes_sent += batch.size();
    RETURN_IF_ERROR(Call(peer, "POST",
                         "/peer/v1/replication/cycle/blocks?item=" + req.item +
                             "&seq=" + std::to_string(req.seq) + "&disk=" + d.name +
                             "&done=" + std::to_string(done) + "&changed=" +
                             std::to_string(to_go) + "&through=" + std::to_string(through),
                         batch, "application/octet-stream"));
    if (req.bandwidth_bytes_per_s > 0) {
      sent_for_cap += batch.size();
      auto due = start + std::chrono::microseconds(sent_for_cap * 1000000 /
                                                   req.bandwidth_bytes_per_s);
      std::this_thread::sleep_until(due);
    }
    return Status::Ok();
  };
  for (size_t di = 0; di < req.disks.size(); ++di) {
    const CycleDisk& d = req.disks[di];
    // A full cycle leaves every block it does not send reading as zeros at the target (an empty
    // base, or holes sent as zeros): that is what the map says until data overwrites it.
    if (d.hashes && d.changed_context.empty())
      for (uint64_t i = 0; i < d.hashes->blocks(); ++i) d.hashes->Set(i, ZeroBlockHash());
    const uint64_t zeros = all_zeros[di];
    const std::vector<datapath::Extent>* extents = &all_extents[di];
    if (d.reference && d.hashes && !d.changed_context.empty() && resume[di].empty()) {
      Status ref = HashesFromReference(d, *extents);
      if (!ref.ok()) return abort(ref);
    }
    BlockBatchWriter w;
    std::string buf;
    const uint64_t changed_before = st.bytes_changed, sent_before = st.bytes_sent;
    for (auto& e : *extents) {
      st.bytes_changed += e.length;
      for (uint64_t off = e.offset; off < e.offset + e.length; off += kPiece) {
        uint64_t len = std::min(kPiece, e.offset + e.length - off);
        done += len;
        if (d.changed_context.empty() && (e.flags & datapath::kStateZero)) {
          Status s = w.AddZero(off, static_cast<uint32_t>(len));
          if (!s.ok()) return abort(s);
        } else {
          buf.resize(len);
          Status s = d.source->Read(0, off, buf.data(), len);
          if (!s.ok()) return abort(s);
          if (AllZero(buf)) {
            st.zero_bytes += len;
            s = w.AddZero(off, static_cast<uint32_t>(len));
            if (d.hashes && off % BlockHashes::kBlock == 0)
              for (uint64_t b = 0; b < len / BlockHashes::kBlock; ++b)
                d.hashes->Set(off / BlockHashes::kBlock + b, ZeroBlockHash());
          } else if (d.hashes && off % BlockHashes::kBlock == 0 &&
                     len % BlockHashes::kBlock == 0) {
            // Only the 4 KiB blocks the target does not hold, in runs.
            uint64_t run = 0, run_len = 0;
            auto flush = [&]() -> Status {
              if (run_len == 0) return Status::Ok();
              Status r = w.AddData(off + run, std::string_view(buf).substr(run, run_len));
              run_len = 0;
              return r;
            };
            for (uint64_t at = 0; at < len && s.ok(); at += BlockHashes::kBlock) {
              uint64_t index = (off + at) / BlockHashes::kBlock;
              uint64_t h = BlockHashes::Hash(buf.data() + at);
              if (d.hashes->Get(index) == h) {
                st.bytes_unchanged += BlockHashes::kBlock;
                s = flush();
                continue;
              }
              d.hashes->Set(index, h);
              if (run_len == 0) run = at;
              run_len += BlockHashes::kBlock;
            }
            if (s.ok()) s = flush();
          } else {
            s = w.AddData(off, buf);
          }
          if (!s.ok()) return abort(s);
        }
        if (w.stored_bytes() >= batch_target) {
          Status s = send(d, w, off + len);
          if (!s.ok()) return abort(s);
        }
      }
    }
    st.zero_bytes += zeros;
    Status s = send(d, w, d.source->size());
    if (!s.ok()) return abort(s);
    st.disks[d.name] = {{"bytesChanged", st.bytes_changed - changed_before},
                        {"bytesSent", st.bytes_sent - sent_before}};
  }
  if (req.before_commit) {
    Status ok = req.before_commit();
    if (!ok.ok()) return abort(ok);
  }
  Status c = Call(peer, "POST", "/peer/v1/replication/cycle/commit",
                  Json{{"item", req.item}, {"seq", req.seq}}.dump());
  if (!c.ok()) return abort(c);
  st.duration_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  return st;
}

}  // namespace stratus::recovery::site
