#include "recovery/vault/vault.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "core/fs.h"
#include "core/uuid.h"
#include "recovery/vault/parallel.h"

namespace stratus::recovery::vault {
namespace {

constexpr char kVaultFormat[] = "stratus-vault";
constexpr int kVaultVersion = 1;

Status MetadataCorrupt(const std::string& what) {
  return Status(StatusCode::kInternal, "VaultMetadataCorrupt", "vault.json " + what);
}

// The fields of vault.json covered by config_mac.
Json ConfigPart(const Json& doc) {
  Json c = Json::object();
  for (const char* f : {"format", "version", "vault_id", "created_ms", "chunk_size", "compression"})
    if (doc.contains(f)) c[f] = doc[f];
  return c;
}

std::string MacHex(const SecretKey& key, const Json& j) {
  std::string mac = HmacSha256(key, j.dump());
  return ToHex(reinterpret_cast<const uint8_t*>(mac.data()), mac.size());
}

const Clock* ClockOr(const Clock* c) { return c ? c : SystemClock::Default(); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Vault: create / open

std::string Vault::ChunkKey(const ChunkId& id) {
  std::string hex = id.Hex();
  return "chunks/" + hex.substr(0, 2) + "/" + hex.substr(2);
}

Result<Json> Vault::VaultDocument(const Json& key_object) const {
  Json doc = {{"format", kVaultFormat},
              {"version", kVaultVersion},
              {"vault_id", vault_id_},
              {"created_ms", created_ms_},
              {"chunk_size", chunk_size_},
              {"compression", {{"algorithm", "zstd"}, {"level", zstd_level_}}}};
  doc["config_mac"] = MacHex(keys_.manifest_key, ConfigPart(doc));
  doc["key"] = key_object;
  return doc;
}

Result<std::unique_ptr<Vault>> Vault::Create(std::unique_ptr<ObjectBackend> backend,
                                             const std::string& state_dir,
                                             const KeySource& key_source,
                                             const VaultCreateOptions& options,
                                             const VaultOpenOptions& open_options) {
  RETURN_IF_ERROR(ValidateChunkSize(options.chunk_size));
  if (options.zstd_level < -7 || options.zstd_level > 19 || options.zstd_level == 0)
    return InvalidArgument("zstd level " + std::to_string(options.zstd_level) +
                           " must be between -7 and 19 (not 0)");
  ASSIGN_OR_RETURN(bool exists, backend->Exists(kVaultKey));
  if (exists)
    return Conflict("a vault already exists in " + backend->Describe(), backend->Describe(),
                    "VaultAlreadyExists");
  ASSIGN_OR_RETURN(SecretKey master, RandomKey());
  std::unique_ptr<Vault> v(new Vault());
  v->vault_id_ = NewUuid();
  v->created_ms_ = ClockOr(open_options.clock)->NowMs();
  v->chunk_size_ = options.chunk_size;
  v->zstd_level_ = options.zstd_level;
  ASSIGN_OR_RETURN(v->keys_, DeriveVaultKeys(master, v->vault_id_));
  ASSIGN_OR_RETURN(Json key_object, WrapMasterKey(master, v->vault_id_, key_source));
  ASSIGN_OR_RETURN(Json doc, v->VaultDocument(key_object));
  RETURN_IF_ERROR(backend->Put(kVaultKey, doc.dump(2), Durability::kImmediate));
  return Load(std::move(backend), state_dir, doc, key_source, open_options);
}

Result<std::unique_ptr<Vault>> Vault::Open(std::unique_ptr<ObjectBackend> backend,
                                           const std::string& state_dir,
                                           const KeySource& key_source,
                                           const VaultOpenOptions& options) {
  std::string text;
  Status st = backend->Get(kVaultKey, &text);
  if (st.code() == StatusCode::kNotFound)
    return NotFound("there is no vault in " + backend->Describe(), backend->Describe(),
                    "VaultNotFound");
  RETURN_IF_ERROR(st);
  Json doc = Json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return MetadataCorrupt("is not a JSON object");
  return Load(std::move(backend), state_dir, doc, key_source, options);
}

namespace {

// The settings of vault.json (not yet authenticated: see ConfigMacMatches).
struct VaultSettings {
  std::string vault_id;
  int64_t created_ms = 0;
  uint32_t chunk_size = 0;
  int zstd_level = 1;
};

Result<VaultSettings> ParseSettings(const Json& doc) {
  if (doc.value("format", "") != kVaultFormat) return MetadataCorrupt("is not a vault descriptor");
  if (!doc.contains("version") || !doc["version"].is_number_integer() ||
      doc["version"].get<int>() != kVaultVersion) {
    return Status(StatusCode::kInternal, "UnsupportedFormatVersion",
                  "vault format version " + doc.value("version", Json()).dump() +
                      " is not supported (this Stratus reads version 1)");
  }
  VaultSettings s;
  try {
    s.vault_id = doc.at("vault_id").get<std::string>();
    s.created_ms = doc.at("created_ms").get<int64_t>();
    s.chunk_size = doc.at("chunk_size").get<uint32_t>();
    s.zstd_level = doc.at("compression").at("level").get<int>();
    if (doc.at("compression").at("algorithm") != "zstd")
      return MetadataCorrupt("names an unknown compression");
  } catch (const Json::exception& e) {
    return MetadataCorrupt(std::string("is malformed: ") + e.what());
  }
  if (!doc.contains("key")) return MetadataCorrupt("has no key section");
  return s;
}

bool ConfigMacMatches(const Json& doc, const SecretKey& manifest_key) {
  std::string mac = doc.value("config_mac", "");
  std::string want = MacHex(manifest_key, ConfigPart(doc));
  return mac.size() == want.size() && ConstantTimeEqual(mac.data(), want.data(), want.size());
}

}  // namespace

Result<std::unique_ptr<Vault>> Vault::Load(std::unique_ptr<ObjectBackend> backend,
                                           const std::string& state_dir, const Json& doc,
                                           const KeySource& key_source,
                                           const VaultOpenOptions& options) {
  ASSIGN_OR_RETURN(VaultSettings settings, ParseSettings(doc));
  std::unique_ptr<Vault> v(new Vault());
  v->vault_id_ = settings.vault_id;
  v->created_ms_ = settings.created_ms;
  v->chunk_size_ = settings.chunk_size;
  v->zstd_level_ = settings.zstd_level;
  // A wrong key fails here, before anything is decrypted.
  ASSIGN_OR_RETURN(SecretKey master, UnwrapMasterKey(doc["key"], v->vault_id_, key_source));
  ASSIGN_OR_RETURN(v->keys_, DeriveVaultKeys(master, v->vault_id_));
  if (!ConfigMacMatches(doc, v->keys_.manifest_key))
    return MetadataCorrupt("settings failed authentication (modified)");
  RETURN_IF_ERROR(ValidateChunkSize(v->chunk_size_));
  v->protection_ = doc["key"].value("protection", "");
  v->backend_ = std::move(backend);
  v->state_dir_ = state_dir;
  v->clock_ = ClockOr(options.clock);
  v->threads_ = options.threads > 0 ? options.threads : DefaultThreads();
  RETURN_IF_ERROR(MakeDirs(state_dir, 0700));
  return v;
}

Result<std::unique_ptr<Vault>> Vault::CreateLocal(const std::string& dir,
                                                  const KeySource& key_source,
                                                  const VaultCreateOptions& options,
                                                  const VaultOpenOptions& open_options) {
  ASSIGN_OR_RETURN(auto backend, LocalDirBackend::Open(dir));
  return Create(std::move(backend), dir + "/state", key_source, options, open_options);
}

Result<std::unique_ptr<Vault>> Vault::OpenLocal(const std::string& dir,
                                                const KeySource& key_source,
                                                const VaultOpenOptions& options) {
  if (!PathExists(dir + "/" + kVaultKey))
    return NotFound("there is no vault in '" + dir + "'", dir, "VaultNotFound");
  ASSIGN_OR_RETURN(auto backend, LocalDirBackend::Open(dir));
  return Open(std::move(backend), dir + "/state", key_source, options);
}

Result<std::unique_ptr<Vault>> Vault::OpenCopy(std::unique_ptr<ObjectBackend> backend,
                                               const std::string& state_dir) const {
  std::string text;
  Status st = backend->Get(kVaultKey, &text);
  if (st.code() == StatusCode::kNotFound)
    return NotFound("there is no copy of vault " + vault_id_ + " in " + backend->Describe(),
                    backend->Describe(), "VaultNotFound");
  RETURN_IF_ERROR(st);
  auto mismatch = [&](const std::string& why) {
    return Conflict(backend->Describe() + " does not hold a copy of vault " + vault_id_ + ": " +
                        why,
                    backend->Describe(), "VaultCopyMismatch");
  };
  Json doc = Json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return mismatch("vault.json is not a JSON object");
  auto settings = ParseSettings(doc);
  if (!settings.ok()) return mismatch(settings.status().message());
  if (settings->vault_id != vault_id_)
    return mismatch("it holds vault " + settings->vault_id);
  if (!ConfigMacMatches(doc, keys_.manifest_key))
    return mismatch("its settings fail authentication under this vault's keys");
  std::unique_ptr<Vault> v(new Vault());
  v->vault_id_ = vault_id_;
  v->created_ms_ = settings->created_ms;
  v->chunk_size_ = settings->chunk_size;
  v->zstd_level_ = settings->zstd_level;
  v->keys_ = keys_;
  v->protection_ = doc["key"].is_object() ? doc["key"].value("protection", "") : "";
  v->backend_ = std::move(backend);
  v->state_dir_ = state_dir;
  v->clock_ = clock_;
  v->threads_ = threads_;
  RETURN_IF_ERROR(MakeDirs(state_dir, 0700));
  return v;
}

void Vault::SetFallback(std::shared_ptr<Vault> copy) {
  std::lock_guard<std::mutex> lock(fallback_mu_);
  fallback_ = std::move(copy);
}

std::shared_ptr<Vault> Vault::fallback() const {
  std::lock_guard<std::mutex> lock(fallback_mu_);
  return fallback_;
}

Status Vault::ChangeKey(const KeySource& current, const KeySource& next) {
  // The master key is not kept in memory: unwrap it again with the current key.
  std::string text;
  RETURN_IF_ERROR(backend_->Get(kVaultKey, &text));
  Json doc = Json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("key"))
    return MetadataCorrupt("is not a vault descriptor");
  ASSIGN_OR_RETURN(SecretKey master, UnwrapMasterKey(doc["key"], vault_id_, current));
  ASSIGN_OR_RETURN(Json key_object, WrapMasterKey(master, vault_id_, next));
  ASSIGN_OR_RETURN(Json fresh, VaultDocument(key_object));
  RETURN_IF_ERROR(backend_->Put(kVaultKey, fresh.dump(2), Durability::kImmediate));
  protection_ = next.protection_name();
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Chunks and points

Status Vault::ReadStoredChunk(const ChunkId& id, std::string* stored, ByteBuffer* plain,
                              IdCheck check) {
  Status st = backend_->Get(ChunkKey(id), stored);
  if (st.code() == StatusCode::kNotFound) {
    return Status(StatusCode::kNotFound, "ChunkMissing",
                  "chunk " + id.Hex() + " is missing from " + backend_->Describe(), id.Hex());
  }
  RETURN_IF_ERROR(st);
  return DecodeChunk(keys_, id, *stored, plain, check);
}

Status Vault::ReadChunk(const ChunkId& id, ByteBuffer* plain, IdCheck check) {
  thread_local std::string stored;
  Status st = ReadStoredChunk(id, &stored, plain, check);
  if (st.ok()) return st;
  std::shared_ptr<Vault> copy = fallback();
  if (!copy) return st;
  // The copy holds the very same object (same key, same encrypted bytes): read it there and, when
  // it decodes, put it back here.
  Status cst = copy->ReadStoredChunk(id, &stored, plain, check);
  if (!cst.ok()) {
    return Status(st.code(), st.arm_code(),
                  st.message() + "; the copy of the vault cannot serve it either: " +
                      cst.message(),
                  id.Hex());
  }
  if (backend_->Put(ChunkKey(id), stored, Durability::kImmediate).ok()) ++chunks_repaired_;
  return Status::Ok();
}

Result<std::vector<std::string>> Vault::ListPoints() { return ListPointIds(*backend_); }

Result<std::vector<std::string>> ListPointIds(ObjectBackend& backend) {
  std::vector<std::string> ids;
  RETURN_IF_ERROR(backend.List("points/", [&](std::string_view key, uint64_t) {
    std::string_view name = key.substr(key.rfind('/') + 1);
    if (name.size() > 5 && name.substr(name.size() - 5) == ".json")
      ids.emplace_back(name.substr(0, name.size() - 5));
    return Status::Ok();
  }));
  std::sort(ids.begin(), ids.end());
  return ids;
}

Result<RecoveryPoint> Vault::ReadPoint(const std::string& point_id, std::string* manifest_text) {
  RETURN_IF_ERROR(ValidatePointId(point_id));
  std::string local;
  std::string& text = manifest_text ? *manifest_text : local;
  Status st = backend_->Get(PointKey(point_id), &text);
  if (st.code() == StatusCode::kNotFound) {
    return NotFound("recovery point '" + point_id + "' does not exist in vault " + vault_id_,
                    point_id, "RecoveryPointNotFound");
  }
  RETURN_IF_ERROR(st);
  return ParseManifest(text, keys_.manifest_key, vault_id_, point_id);
}

Status Vault::DeletePoint(const std::string& point_id) {
  RETURN_IF_ERROR(ValidatePointId(point_id));
  ASSIGN_OR_RETURN(bool exists, backend_->Exists(PointKey(point_id)));
  if (!exists) {
    return NotFound("recovery point '" + point_id + "' does not exist in vault " + vault_id_,
                    point_id, "RecoveryPointNotFound");
  }
  // Durable removal: a manifest resurrected by a power cut after GC freed its chunks would be a
  // point with missing data.
  return backend_->Delete(PointKey(point_id), Durability::kImmediate);
}

// ---------------------------------------------------------------------------------------------
// Sessions

Result<std::unique_ptr<BackupSession>> Vault::BeginBackup() {
  RETURN_IF_ERROR(RecoverStaleSessions(nullptr));
  int64_t now = clock_->NowMs();
  std::string session_id = NewUuid();
  std::string point_id = NewPointId(now);
  Json header = {{"format", "stratus-vault-lease"}, {"version", 1},
                 {"session_id", session_id},        {"point_id", point_id},
                 {"pid", static_cast<int64_t>(::getpid())},
                 {"boot_id", BootId()},             {"started_ms", now}};
  ASSIGN_OR_RETURN(auto lease, SessionLease::Create(state_dir_, session_id, header));
  return std::unique_ptr<BackupSession>(
      new BackupSession(this, session_id, point_id, now, std::move(lease)));
}

BackupSession::BackupSession(Vault* vault, std::string session_id, std::string point_id,
                             int64_t begun_ms, std::unique_ptr<SessionLease> lease)
    : vault_(vault),
      session_id_(std::move(session_id)),
      point_id_(std::move(point_id)),
      begun_ms_(begun_ms),
      lease_(std::move(lease)) {}

BackupSession::~BackupSession() { Abort(); }

Status BackupSession::Abort() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return Status::Ok();
  finished_ = true;
  return lease_->Release();
}

Result<StoreResult> BackupSession::Store(const uint8_t* data, size_t n) {
  if (n == 0 || n > kMaxChunkSize)
    return InvalidArgument("chunk of " + std::to_string(n) + " bytes is out of range");
  StoreResult r;
  if (IsAllZero(data, n)) return r;  // a hole
  r.id = ComputeChunkId(vault_->keys_, data, n);
  std::string key = Vault::ChunkKey(r.id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return Internal("backup session " + session_id_ + " is finished");
    if (known_.count(r.id)) return r;
    bool exists = false;
    RETURN_IF_ERROR(lease_->ProtectAndCheck({r.id}, [&]() -> Status {
      ASSIGN_OR_RETURN(exists, vault_->backend_->Exists(key));
      return Status::Ok();
    }));
    if (exists) {
      known_.insert(r.id);
      return r;
    }
  }
  thread_local ByteBuffer encoded;
  RETURN_IF_ERROR(EncodeChunk(vault_->keys_, r.id, data, n, vault_->zstd_level_, &encoded));
  RETURN_IF_ERROR(vault_->backend_->Put(key, encoded.view(), Durability::kDeferred));
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return Internal("backup session " + session_id_ + " is finished");
  RETURN_IF_ERROR(lease_->RecordWritten(r.id));
  known_.insert(r.id);
  r.written = true;
  r.stored_bytes = encoded.size();
  return r;
}

Result<std::vector<bool>> BackupSession::Retain(const std::vector<ChunkId>& ids) {
  std::vector<bool> present(ids.size(), true);
  std::vector<ChunkId> todo;
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return Internal("backup session " + session_id_ + " is finished");
  for (const auto& id : ids)
    if (!id.is_hole() && !known_.count(id)) todo.push_back(id);
  if (todo.empty()) return present;
  std::sort(todo.begin(), todo.end());
  todo.erase(std::unique(todo.begin(), todo.end()), todo.end());
  std::vector<bool> exists(todo.size(), false);
  RETURN_IF_ERROR(lease_->ProtectAndCheck(todo, [&]() -> Status {
    for (size_t i = 0; i < todo.size(); ++i) {
      ASSIGN_OR_RETURN(bool e, vault_->backend_->Exists(Vault::ChunkKey(todo[i])));
      exists[i] = e;
    }
    return Status::Ok();
  }));
  for (size_t i = 0; i < todo.size(); ++i)
    if (exists[i]) known_.insert(todo[i]);
  for (size_t i = 0; i < ids.size(); ++i)
    if (!ids[i].is_hole()) present[i] = known_.count(ids[i]) > 0;
  return present;
}

Result<RecoveryPoint> BackupSession::Commit(PointSpec spec) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return Internal("backup session " + session_id_ + " is finished");
  for (const auto& d : spec.disks) {
    RETURN_IF_ERROR(d.Validate());
    for (size_t i = 0; i < d.chunks.size(); ++i) {
      if (!d.chunks[i].is_hole() && !known_.count(d.chunks[i])) {
        return InvalidArgument("disk '" + d.name + "' at offset " +
                               std::to_string(d.SlotOffset(i)) + " references chunk " +
                               d.chunks[i].Hex() +
                               ", which this session neither stored nor retained");
      }
    }
  }
  RecoveryPoint p;
  p.point_id = point_id_;
  p.vault_id = vault_->vault_id_;
  p.created_ms = spec.created_ms != 0 ? spec.created_ms : begun_ms_;
  p.parent_point_id = std::move(spec.parent_point_id);
  p.consistency = std::move(spec.consistency);
  p.vm_config = std::move(spec.vm_config);
  p.metadata = std::move(spec.metadata);
  p.disks = std::move(spec.disks);
  auto text = SerializeManifest(p, vault_->keys_.manifest_key);
  finished_ = true;
  Status st = text.status();
  // Chunks first (one sync for all of them), then the manifest: a visible point never refers to
  // a chunk that a power cut could take away.
  if (st.ok()) st = vault_->backend_->Sync();
  if (st.ok()) st = vault_->backend_->Put(PointKey(point_id_), *text, Durability::kImmediate);
  Status released = lease_->Release();
  RETURN_IF_ERROR(st);
  RETURN_IF_ERROR(released);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Recovery of dead sessions

Status Vault::RecoverStaleSessions(GcStats* stats) {
  ASSIGN_OR_RETURN(std::vector<StaleLease> stale, FindStaleLeases(state_dir_));
  for (auto& s : stale) {
    std::string boot = s.header.is_object() ? s.header.value("boot_id", "") : "";
    if (boot != BootId() && !s.written.empty()) {
      // The host went down while this session wrote: chunks it renamed into place but that were
      // never synced may be empty or torn. Only this session's unpublished point used them
      // (a commit syncs before publishing), so damaged ones are simply removed, under the
      // exclusive GC lock so that no session is between its existence check and its lease.
      ASSIGN_OR_RETURN(auto lock, FileLock::Acquire(state_dir_ + "/gc.lock",
                                                    FileLock::Mode::kExclusive, true));
      ByteBuffer plain;
      for (const auto& id : s.written) {
        Status st = ReadChunk(id, &plain);
        if (st.ok() || st.code() == StatusCode::kNotFound) continue;
        RETURN_IF_ERROR(backend_->Delete(ChunkKey(id), Durability::kDeferred));
        if (stats) ++stats->torn_chunks_removed;
      }
    }
    if (::unlink(s.path.c_str()) != 0 && errno != ENOENT)
      return Internal("cannot remove stale lease '" + s.path + "'");
    if (stats) ++stats->stale_sessions;
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Verify

std::string ChunkProblem::ToString() const {
  const char* k = kind == Kind::kMissing ? "missing" : kind == Kind::kCorrupt ? "corrupt" : "manifest";
  if (kind == Kind::kManifest) return "point " + point_id + ": " + message;
  return "point " + point_id + " disk " + disk + " offset " + std::to_string(offset) + ": chunk " +
         chunk_id + " " + k + " (" + message + ")";
}

std::string VerifyReport::Summary() const {
  std::ostringstream out;
  out << points << " point(s), " << disks << " disk(s), " << chunks_checked << " chunk(s) ("
      << bytes_checked << " bytes) checked: "
      << (problems.empty() ? "OK" : std::to_string(problems.size()) + " problem(s)");
  size_t shown = 0;
  for (const auto& p : problems) {
    if (++shown > 50) {
      out << "\n  ...";
      break;
    }
    out << "\n  " << p.ToString();
  }
  return out.str();
}

Result<VerifyReport> Vault::Verify(const std::string& point_id, const VerifyOptions& options) {
  RETURN_IF_ERROR(ValidatePointId(point_id));
  ASSIGN_OR_RETURN(bool exists, backend_->Exists(PointKey(point_id)));
  if (!exists) {
    return NotFound("recovery point '" + point_id + "' does not exist in vault " + vault_id_,
                    point_id, "RecoveryPointNotFound");
  }
  return VerifyPoints({point_id}, options);
}

Result<VerifyReport> Vault::VerifyAll(const VerifyOptions& options) {
  ASSIGN_OR_RETURN(auto ids, ListPoints());
  return VerifyPoints(ids, options);
}

Result<VerifyReport> Vault::VerifyPoints(const std::vector<std::string>& point_ids,
                                         const VerifyOptions& options) {
  VerifyReport report;
  std::vector<RecoveryPoint> points;
  for (const auto& id : point_ids) {
    auto p = ReadPoint(id);
    ++report.points;
    if (!p.ok()) {
      if (p.status().code() == StatusCode::kNotFound) {
        --report.points;  // deleted meanwhile
        continue;
      }
      report.problems.push_back({ChunkProblem::Kind::kManifest, id, "", 0, "",
                                 p.status().message()});
      continue;
    }
    report.disks += p->disks.size();
    points.push_back(std::move(p).value());
  }
  std::vector<ChunkId> unique;
  for (const auto& p : points)
    for (const auto& d : p.disks)
      for (const auto& c : d.chunks)
        if (!c.is_hole()) unique.push_back(c);
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());

  // Per unique chunk: 0 = OK, 1 = missing, 2 = corrupt; its plaintext length; failure messages.
  std::vector<uint8_t> state(unique.size(), 0);
  std::vector<uint32_t> lengths(unique.size(), 0);
  std::vector<std::string> messages(unique.size());
  std::atomic<uint64_t> done{0}, bytes{0};
  RETURN_IF_ERROR(ParallelFor(unique.size(), threads_, [&](size_t i, int) -> Status {
    thread_local ByteBuffer plain;
    Status st = ReadChunk(unique[i], &plain);
    if (st.ok()) {
      lengths[i] = static_cast<uint32_t>(plain.size());
      bytes += plain.size();
    } else {
      state[i] = st.code() == StatusCode::kNotFound ? 1 : 2;
      messages[i] = st.message();
    }
    uint64_t d = ++done;
    if (options.progress) options.progress(d, unique.size());
    return Status::Ok();
  }));
  report.chunks_checked = unique.size();
  report.bytes_checked = bytes.load();

  for (const auto& p : points) {
    for (const auto& d : p.disks) {
      for (size_t i = 0; i < d.chunks.size(); ++i) {
        if (d.chunks[i].is_hole()) continue;
        size_t u = static_cast<size_t>(
            std::lower_bound(unique.begin(), unique.end(), d.chunks[i]) - unique.begin());
        ChunkProblem::Kind kind;
        std::string msg;
        if (state[u] == 1) {
          kind = ChunkProblem::Kind::kMissing;
          msg = messages[u];
        } else if (state[u] == 2) {
          kind = ChunkProblem::Kind::kCorrupt;
          msg = messages[u];
        } else if (lengths[u] != d.SlotLength(i)) {
          kind = ChunkProblem::Kind::kCorrupt;
          msg = "chunk holds " + std::to_string(lengths[u]) + " bytes, the slot needs " +
                std::to_string(d.SlotLength(i));
        } else {
          continue;
        }
        report.problems.push_back({kind, p.point_id, d.name, d.SlotOffset(i), d.chunks[i].Hex(),
                                   msg});
      }
    }
  }
  std::sort(report.problems.begin(), report.problems.end(),
            [](const ChunkProblem& a, const ChunkProblem& b) {
              return std::tie(a.point_id, a.disk, a.offset) < std::tie(b.point_id, b.disk, b.offset);
            });
  return report;
}

// ---------------------------------------------------------------------------------------------
// Garbage collection

Result<GcStats> Vault::Gc(const GcOptions& options) {
  int64_t t0 = clock_->MonotonicMs();
  GcStats stats;
  auto run_lock = FileLock::Acquire(state_dir_ + "/gc.run.lock", FileLock::Mode::kExclusive,
                                    /*wait=*/false);
  if (!run_lock.ok()) {
    if (run_lock.status().code() == StatusCode::kConflict)
      return Conflict("a garbage collection is already running on vault " + vault_id_, vault_id_,
                      "GarbageCollectionRunning");
    return run_lock.status();
  }
  RETURN_IF_ERROR(RecoverStaleSessions(&stats));
  ASSIGN_OR_RETURN(stats.temp_files_removed, backend_->CleanupIncompletePuts());

  // 1. Everything stored. Listed before the manifests are read: a chunk written after this
  //    listing is never a candidate.
  std::vector<std::pair<ChunkId, uint64_t>> listed;
  RETURN_IF_ERROR(backend_->List("chunks/", [&](std::string_view key, uint64_t size) {
    // "chunks/ab/cdef..." -> id; anything else is not ours to delete.
    if (key.size() != 7 + 2 + 1 + 62 || key[9] != '/') return Status::Ok();
    std::string hex = std::string(key.substr(7, 2)) + std::string(key.substr(10));
    auto id = ChunkId::FromHex(hex);
    if (id.ok() && !id->is_hole()) listed.emplace_back(*id, size);
    return Status::Ok();
  }));
  stats.chunks_listed = listed.size();

  // 2. Mark: every chunk of every manifest. An unreadable manifest stops GC before any deletion.
  std::vector<ChunkId> referenced;
  std::set<std::string> seen_points;
  auto mark_new_points = [&](std::unordered_set<ChunkId, ChunkIdHash>* extra) -> Status {
    ASSIGN_OR_RETURN(auto ids, ListPoints());
    for (const auto& id : ids) {
      if (seen_points.count(id)) continue;
      auto p = ReadPoint(id);
      if (!p.ok()) {
        if (p.status().code() == StatusCode::kNotFound) continue;  // deleted meanwhile
        return Status(p.status().code(), p.status().arm_code(),
                      "garbage collection stopped, nothing more deleted: " + p.status().message(),
                      id);
      }
      seen_points.insert(id);
      for (const auto& d : p->disks)
        for (const auto& c : d.chunks) {
          if (c.is_hole()) continue;
          if (extra)
            extra->insert(c);
          else
            referenced.push_back(c);
        }
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(mark_new_points(nullptr));
  std::sort(referenced.begin(), referenced.end());
  referenced.erase(std::unique(referenced.begin(), referenced.end()), referenced.end());
  stats.chunks_referenced = referenced.size();

  std::vector<std::pair<ChunkId, uint64_t>> candidates;
  for (auto& c : listed)
    if (!std::binary_search(referenced.begin(), referenced.end(), c.first))
      candidates.push_back(c);
  listed.clear();
  listed.shrink_to_fit();

  // 3. Sweep in batches. Before each batch, under the exclusive lock: re-read the leases of
  //    running sessions and any manifest published since; never delete what they name.
  std::unordered_set<ChunkId, ChunkIdHash> protected_ids, late_referenced;
  LeaseScanner scanner(state_dir_);
  size_t batch = std::max<size_t>(options.batch, 1);
  for (size_t start = 0; start < candidates.size(); start += batch) {
    {
      ASSIGN_OR_RETURN(auto lock, FileLock::Acquire(state_dir_ + "/gc.lock",
                                                    FileLock::Mode::kExclusive, true));
      RETURN_IF_ERROR(scanner.Refresh(&protected_ids));
      RETURN_IF_ERROR(mark_new_points(&late_referenced));
      size_t end = std::min(candidates.size(), start + batch);
      for (size_t i = start; i < end; ++i) {
        const auto& [id, size] = candidates[i];
        if (protected_ids.count(id) || late_referenced.count(id)) {
          ++stats.chunks_protected;
          continue;
        }
        RETURN_IF_ERROR(backend_->Delete(ChunkKey(id), Durability::kDeferred));
        ++stats.chunks_deleted;
        stats.bytes_freed += size;
      }
    }
    if (options.progress) options.progress(stats.chunks_deleted, candidates.size());
  }
  stats.points = seen_points.size();
  stats.duration_ms = clock_->MonotonicMs() - t0;
  return stats;
}

}  // namespace stratus::recovery::vault
