#include "recovery/datapath/backup_disk.h"

#include <atomic>
#include <chrono>

#include "core/clock.h"
#include "recovery/vault/parallel.h"

namespace stratus::recovery::datapath {
namespace {

using vault::ChunkId;
using vault::DiskIndex;

// Marks slots [first, last] touched by [offset, offset+length).
void MarkSlots(std::vector<uint8_t>& slots, uint64_t offset, uint64_t length, uint32_t chunk) {
  if (length == 0) return;
  uint64_t first = offset / chunk;
  uint64_t last = (offset + length - 1) / chunk;
  for (uint64_t i = first; i <= last && i < slots.size(); ++i) slots[i] = 1;
}

}  // namespace

Result<BackupDiskResult> BackupDisk(vault::BackupSession& session, NbdSource& source,
                                    const BackupDiskOptions& o) {
  int64_t t0 = SystemClock::Default()->MonotonicMs();
  if (o.disk_name.empty()) return InvalidArgument("backup of a disk without a name");
  BackupDiskResult result;
  BackupDiskStats& stats = result.stats;
  DiskIndex& index = result.index;
  index.name = o.disk_name;
  index.size = source.size();
  index.chunk_size = session.vault().chunk_size();
  stats.disk_size = index.size;

  const DiskIndex* prev = o.previous;
  if (prev != nullptr) {
    RETURN_IF_ERROR(prev->Validate());
    index.chunk_size = prev->chunk_size;  // reuse needs the same slots
  }
  const uint32_t chunk = index.chunk_size;
  const uint64_t slots = index.slot_count();
  index.chunks.assign(slots, ChunkId::Hole());

  // Which slots hold data at all (base:allocation); without it, assume all do.
  std::vector<uint8_t> has_data(slots, 1);
  if (source.HasMetaContext(kBaseAllocation)) {
    ASSIGN_OR_RETURN(auto extents, source.Extents(kBaseAllocation));
    has_data.assign(slots, 0);
    for (const auto& e : extents)
      if (!(e.flags & kStateZero)) MarkSlots(has_data, e.offset, e.length, chunk);
  }

  // Which slots must be read: all (full), or those the changed-block context marks.
  std::vector<uint8_t> dirty(slots, 1);
  if (prev == nullptr) {
    stats.mode = "full";
  } else if (o.changed_context.empty()) {
    stats.mode = "full-dedup";
    stats.fallback_reason = "no changed-block information was given";
  } else if (!source.HasMetaContext(o.changed_context)) {
    stats.mode = "full-dedup";
    stats.fallback_reason = "the export does not offer '" + o.changed_context +
                            "' (checkpoint or bitmap lost)";
  } else {
    ASSIGN_OR_RETURN(auto extents, source.Extents(o.changed_context));
    dirty.assign(slots, 0);
    for (const auto& e : extents)
      if (e.flags & kStateDirty) MarkSlots(dirty, e.offset, e.length, chunk);
    // Slots the previous point did not cover completely (the disk grew) are new.
    uint64_t prev_slots = prev->slot_count();
    for (uint64_t i = 0; i < slots; ++i) {
      if (i >= prev_slots || (i == prev_slots - 1 && prev->SlotLength(i) != index.SlotLength(i)))
        dirty[i] = 1;
    }
    stats.mode = "incremental";
  }

  // Reuse the previous ids of clean slots, after protecting them; gone ones are read again.
  if (stats.mode == "incremental") {
    std::vector<uint64_t> reuse_slots;
    std::vector<ChunkId> reuse_ids;
    for (uint64_t i = 0; i < slots; ++i) {
      if (dirty[i]) continue;
      const ChunkId& id = prev->chunks[i];
      if (id.is_hole()) continue;  // hole then and unchanged since: still a hole
      if (!has_data[i]) {
        dirty[i] = 1;  // zeroed since, without the bitmap noticing: trust the allocation map
        continue;
      }
      reuse_slots.push_back(i);
      reuse_ids.push_back(id);
    }
    ASSIGN_OR_RETURN(std::vector<bool> present, session.Retain(reuse_ids));
    for (size_t k = 0; k < reuse_slots.size(); ++k) {
      if (present[k]) {
        index.chunks[reuse_slots[k]] = reuse_ids[k];
        ++stats.chunks_reused;
      } else {
        dirty[reuse_slots[k]] = 1;
        ++stats.chunks_reread_missing;
      }
    }
    if (stats.chunks_reread_missing > 0) {
      stats.fallback_reason = std::to_string(stats.chunks_reread_missing) +
                              " chunk(s) of the previous point were missing and were read again";
    }
  }

  std::vector<uint64_t> work;
  for (uint64_t i = 0; i < slots; ++i) {
    if (!dirty[i]) continue;
    if (has_data[i]) {
      work.push_back(i);
      stats.bytes_to_read += index.SlotLength(i);
    }
  }

  int threads = o.threads > 0 ? o.threads : vault::DefaultThreads() + 1;
  threads = std::min(threads, source.connections());
  std::atomic<uint64_t> bytes_read{0}, bytes_new{0}, bytes_stored{0}, chunks_new{0}, dedup{0};
  RETURN_IF_ERROR(vault::ParallelFor(work.size(), threads, [&](size_t k, int worker) -> Status {
    thread_local vault::ByteBuffer buf;
    uint64_t slot = work[k];
    uint32_t len = index.SlotLength(slot);
    buf.Resize(len);
    RETURN_IF_ERROR(source.Read(worker, index.SlotOffset(slot), buf.data(), len));
    ASSIGN_OR_RETURN(vault::StoreResult r, session.Store(buf.data(), len));
    index.chunks[slot] = r.id;
    if (r.written) {
      ++chunks_new;
      bytes_new += len;
      bytes_stored += r.stored_bytes;
    } else if (!r.id.is_hole()) {
      ++dedup;
    }
    uint64_t done = bytes_read += len;
    if (o.progress) o.progress({done, stats.bytes_to_read});
    return Status::Ok();
  }));
  stats.bytes_read = bytes_read;
  stats.bytes_new = bytes_new;
  stats.bytes_stored = bytes_stored;
  stats.chunks_new = chunks_new;
  stats.chunks_deduplicated = dedup;
  for (const auto& c : index.chunks)
    if (c.is_hole()) ++stats.hole_slots;
  stats.duration_ms = SystemClock::Default()->MonotonicMs() - t0;
  return result;
}

}  // namespace stratus::recovery::datapath
