#include "recovery/vault/manifest.h"

#include <ctime>
#include <set>

#include "core/base64.h"
#include "core/clock.h"
#include "core/uuid.h"

namespace stratus::recovery::vault {
namespace {

constexpr char kFormat[] = "stratus-recovery-point";

Status Corrupt(const std::string& point_id, const std::string& why) {
  return Status(StatusCode::kInternal, "ManifestCorrupt",
                "manifest of recovery point '" + point_id + "' is malformed: " + why, point_id);
}

Status Tampered(const std::string& point_id, const std::string& why) {
  return Status(StatusCode::kInternal, "ManifestTampered",
                "manifest of recovery point '" + point_id + "' failed authentication: " + why,
                point_id);
}

std::string SignatureOf(const Json& unsigned_doc, const SecretKey& key) {
  std::string canonical = unsigned_doc.dump();
  std::string mac = HmacSha256(key, canonical);
  return ToHex(reinterpret_cast<const uint8_t*>(mac.data()), mac.size());
}

}  // namespace

const DiskIndex* RecoveryPoint::FindDisk(const std::string& name) const {
  for (const auto& d : disks)
    if (d.name == name) return &d;
  return nullptr;
}

Status ValidatePointId(const std::string& id) {
  bool ok = !id.empty() && id.size() <= 128 && id[0] != '.';
  for (char c : id) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-');
  }
  if (!ok) {
    return InvalidArgument("recovery point id '" + id +
                               "' must be 1 to 128 characters of letters, digits, '.', '_', '-'",
                           "recoveryPointId", "InvalidRecoveryPointId");
  }
  return Status::Ok();
}

std::string NewPointId(int64_t now_ms) {
  time_t secs = static_cast<time_t>(now_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return std::string(buf) + "-" + RandomHex(4);
}

Result<std::string> SerializeManifest(const RecoveryPoint& p, const SecretKey& key) {
  RETURN_IF_ERROR(ValidatePointId(p.point_id));
  Json disks = Json::array();
  std::set<std::string> names;
  for (const auto& d : p.disks) {
    if (d.name.empty()) return InvalidArgument("a disk of the recovery point has no name");
    if (!names.insert(d.name).second)
      return InvalidArgument("disk name '" + d.name + "' appears twice in the recovery point");
    RETURN_IF_ERROR(d.Validate());
    disks.push_back({{"name", d.name},
                     {"size", d.size},
                     {"chunk_size", d.chunk_size},
                     {"slots", d.slot_count()},
                     {"allocated_slots", d.allocated_slots()},
                     {"index", Base64Encode(EncodeIndex(d))}});
  }
  Json doc = {{"format", kFormat},
              {"version", kManifestVersion},
              {"vault_id", p.vault_id},
              {"point_id", p.point_id},
              {"created_ms", p.created_ms},
              {"created", FormatIso8601(p.created_ms)},
              {"parent_point_id", p.parent_point_id},
              {"consistency", p.consistency},
              {"vm_config", p.vm_config},
              {"metadata", p.metadata},
              {"disks", disks}};
  doc["signature"] = {{"alg", "hmac-sha256"}, {"value", SignatureOf(doc, key)}};
  return doc.dump();
}

Result<RecoveryPoint> ParseManifest(const std::string& text, const SecretKey& key,
                                    const std::string& expected_vault_id,
                                    const std::string& expected_point_id) {
  const std::string& pid = expected_point_id;
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Corrupt(pid, "not a JSON object");
  if (doc.value("format", "") != kFormat) return Corrupt(pid, "not a recovery point manifest");
  if (!doc.contains("version") || !doc["version"].is_number_integer())
    return Corrupt(pid, "no format version");
  if (doc["version"].get<int>() != kManifestVersion) {
    return Status(StatusCode::kInternal, "UnsupportedFormatVersion",
                  "manifest of recovery point '" + pid + "' has format version " +
                      doc["version"].dump() + "; this Stratus reads version " +
                      std::to_string(kManifestVersion),
                  pid);
  }
  if (!doc.contains("signature") || !doc["signature"].is_object() ||
      doc["signature"].value("alg", "") != "hmac-sha256" ||
      !doc["signature"].contains("value") || !doc["signature"]["value"].is_string())
    return Tampered(pid, "signature missing");
  std::string sig = doc["signature"]["value"].get<std::string>();
  doc.erase("signature");
  std::string want = SignatureOf(doc, key);
  if (sig.size() != want.size() || !ConstantTimeEqual(sig.data(), want.data(), want.size()))
    return Tampered(pid, "signature does not match the content");
  // Authentic from here on: remaining checks catch a manifest copied under another name and
  // programming errors, not forgeries.
  RecoveryPoint p;
  try {
    p.vault_id = doc.at("vault_id").get<std::string>();
    p.point_id = doc.at("point_id").get<std::string>();
    p.created_ms = doc.at("created_ms").get<int64_t>();
    p.parent_point_id = doc.at("parent_point_id").get<std::string>();
    p.consistency = doc.at("consistency").get<std::string>();
    p.vm_config = doc.at("vm_config");
    p.metadata = doc.at("metadata");
    for (const auto& d : doc.at("disks")) {
      DiskIndex idx;
      idx.name = d.at("name").get<std::string>();
      idx.size = d.at("size").get<uint64_t>();
      idx.chunk_size = d.at("chunk_size").get<uint32_t>();
      auto raw = Base64Decode(d.at("index").get<std::string>());
      if (!raw.ok()) return Corrupt(pid, "index of disk '" + idx.name + "': " + raw.status().message());
      Status st = DecodeIndex(*raw, &idx);
      if (!st.ok()) return Corrupt(pid, st.message());
      p.disks.push_back(std::move(idx));
    }
  } catch (const Json::exception& e) {
    return Corrupt(pid, e.what());
  }
  if (p.vault_id != expected_vault_id)
    return Tampered(pid, "it belongs to vault '" + p.vault_id + "'");
  if (p.point_id != expected_point_id)
    return Tampered(pid, "it is the manifest of point '" + p.point_id + "'");
  return p;
}

}  // namespace stratus::recovery::vault
