// RecoveryPoint and its manifest: the one object that makes a point exist.
//
// A manifest is versioned JSON (format "stratus-recovery-point", version 1) holding the caller's
// opaque VM configuration and metadata, the consistency level, and one entry per disk with the
// disk's run-length index (base64). It is signed with HMAC-SHA256 under the vault's manifest key
// over its canonical serialisation (nlohmann dump of the object without "signature": sorted keys,
// no spaces). Reading a manifest checks the signature, the vault id and the point id (so a
// manifest renamed to another point's name is detected). Layout: docs/vault-format.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "recovery/vault/crypto.h"
#include "recovery/vault/disk_index.h"

namespace stratus::recovery::vault {

inline constexpr int kManifestVersion = 1;

struct RecoveryPoint {
  std::string point_id;         // e.g. "20261122T040506Z-1a2b3c4d": sorts by creation time
  std::string vault_id;
  int64_t created_ms = 0;       // when the data was captured (ms since the epoch)
  std::string parent_point_id;  // the point this one was built from incrementally; "" if none
  std::string consistency;      // "ApplicationConsistent" | "FileSystemConsistent" | "CrashConsistent"
  Json vm_config = Json::object();  // opaque: the VM's configuration at capture time
  Json metadata = Json::object();   // opaque: policy, job id, per-disk statistics, ...
  std::vector<DiskIndex> disks;

  // The disk called `name`, or nullptr.
  const DiskIndex* FindDisk(const std::string& name) const;
};

// A point id is 1..128 characters of [A-Za-z0-9._-]; InvalidArgument otherwise.
Status ValidatePointId(const std::string& point_id);
// A fresh, time-sortable point id: "<UTC yyyymmddThhmmssZ>-<8 random hex>".
std::string NewPointId(int64_t now_ms);

// The signed manifest text of `point`.
Result<std::string> SerializeManifest(const RecoveryPoint& point, const SecretKey& manifest_key);
// Parses and authenticates a manifest read from key "points/<expected_point_id>.json". Errors:
// Internal with ARM code "ManifestTampered" when the signature, vault id or point id do not match,
// "ManifestCorrupt" when the text is not a valid manifest, "UnsupportedFormatVersion" for a
// newer version.
Result<RecoveryPoint> ParseManifest(const std::string& text, const SecretKey& manifest_key,
                                    const std::string& expected_vault_id,
                                    const std::string& expected_point_id);

}  // namespace stratus::recovery::vault
