#include "recovery/vault/disk_index.h"

#include <algorithm>

#include "recovery/vault/crypto.h"

namespace stratus::recovery::vault {
namespace {

constexpr uint8_t kIndexVersion = 1;

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view& in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in.empty(); shift += 7) {
    uint8_t b = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    result |= uint64_t{b & 0x7fu} << shift;
    if (!(b & 0x80)) {
      *v = result;
      return true;
    }
  }
  return false;
}

}  // namespace

std::string ChunkId::Hex() const { return ToHex(bytes.data(), bytes.size()); }

Result<ChunkId> ChunkId::FromHex(std::string_view hex) {
  ChunkId id;
  if (!vault::FromHex(hex, id.bytes.data(), id.bytes.size()))
    return InvalidArgument("'" + std::string(hex) + "' is not a chunk id (64 hex digits)");
  return id;
}

Status ValidateChunkSize(uint64_t chunk_size) {
  if (chunk_size < kMinChunkSize || chunk_size > kMaxChunkSize ||
      (chunk_size & (chunk_size - 1)) != 0) {
    return InvalidArgument("chunk size " + std::to_string(chunk_size) +
                           " must be a power of two between 64 KiB and 16 MiB");
  }
  return Status::Ok();
}

uint64_t DiskIndex::allocated_slots() const {
  return static_cast<uint64_t>(
      std::count_if(chunks.begin(), chunks.end(), [](const ChunkId& c) { return !c.is_hole(); }));
}

Status DiskIndex::Validate() const {
  RETURN_IF_ERROR(ValidateChunkSize(chunk_size));
  if (chunks.size() != slot_count()) {
    return InvalidArgument("disk '" + name + "' index has " + std::to_string(chunks.size()) +
                           " entries; size " + std::to_string(size) + " needs " +
                           std::to_string(slot_count()));
  }
  return Status::Ok();
}

// Layout: u8 version, varint slot_count, then runs until slot_count slots are covered. A run is a
// varint h = (length << 1) | is_data, followed for a data run by `length` 32-byte chunk ids.
std::string EncodeIndex(const DiskIndex& index) {
  std::string out;
  out.reserve(16 + index.allocated_slots() * 32 + index.chunks.size() / 64);
  out.push_back(static_cast<char>(kIndexVersion));
  PutVarint(out, index.chunks.size());
  size_t i = 0;
  while (i < index.chunks.size()) {
    bool data = !index.chunks[i].is_hole();
    size_t j = i;
    while (j < index.chunks.size() && !index.chunks[j].is_hole() == data) ++j;
    PutVarint(out, (uint64_t{j - i} << 1) | (data ? 1 : 0));
    if (data) {
      for (size_t k = i; k < j; ++k)
        out.append(reinterpret_cast<const char*>(index.chunks[k].bytes.data()), 32);
    }
    i = j;
  }
  return out;
}

Status DecodeIndex(std::string_view in, DiskIndex* index) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("index of disk '" + index->name + "' is malformed: " + why);
  };
  RETURN_IF_ERROR(ValidateChunkSize(index->chunk_size));
  if (in.empty()) return bad("empty");
  if (static_cast<uint8_t>(in.front()) != kIndexVersion)
    return bad("unknown index version " + std::to_string(static_cast<uint8_t>(in.front())));
  in.remove_prefix(1);
  uint64_t count = 0;
  if (!GetVarint(in, &count)) return bad("truncated slot count");
  if (count != index->slot_count())
    return bad("slot count " + std::to_string(count) + " does not match the disk size");
  index->chunks.assign(count, ChunkId::Hole());
  uint64_t pos = 0;
  while (pos < count) {
    uint64_t h = 0;
    if (!GetVarint(in, &h)) return bad("truncated run header");
    uint64_t len = h >> 1;
    if (len == 0 || len > count - pos) return bad("run length out of range");
    if (h & 1) {
      if (in.size() < len * 32) return bad("truncated chunk ids");
      for (uint64_t k = 0; k < len; ++k) {
        std::memcpy(index->chunks[pos + k].bytes.data(), in.data(), 32);
        in.remove_prefix(32);
        if (index->chunks[pos + k].is_hole()) return bad("data run holds a hole id");
      }
    }
    pos += len;
  }
  if (!in.empty()) return bad("trailing bytes");
  return Status::Ok();
}

}  // namespace stratus::recovery::vault
