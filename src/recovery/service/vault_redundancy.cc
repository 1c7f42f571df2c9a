#include "recovery/service/vault_redundancy.h"

#include <dirent.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "api/http_types.h"
#include "api/resource_util.h"
#include "core/clock.h"
#include "core/fs.h"
#include "recovery/service/records.h"
#include "recovery/service/vault_registry.h"
#include "recovery/vault/vault_copy.h"

namespace stratus::recovery::service {

using api::OperationContext;

namespace {

constexpr char kField[] = "properties.copyLocation";

const Json& PropsOf(const store::Record& rec) {
  static const Json empty = Json::object();
  if (!rec.body.is_object() || !rec.body.contains("properties") ||
      !rec.body.at("properties").is_object())
    return empty;
  return rec.body.at("properties");
}

// `b` is `a` or below it.
bool Inside(const std::string& a, const std::string& b) {
  return b == a || (b.size() > a.size() && b.compare(0, a.size(), a) == 0 &&
                    (a == "/" || b[a.size()] == '/'));
}

std::string Canonical(const std::string& p) {
  std::error_code ec;
  auto c = std::filesystem::weakly_canonical(p, ec);
  return ec ? p : c.string();
}

Status Bad(const std::string& msg, const std::string& code = "InvalidParameter") {
  return InvalidArgument(msg, kField, code);
}

// The location may hold nothing, or (part of) a copy of this vault.
Status CheckLocationContent(const std::string& dir, const std::string& vault_id) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return Status::Ok();
  if (!std::filesystem::is_directory(dir, ec))
    return Bad("copyLocation '" + dir + "' exists and is not a directory.", "CopyLocationInUse");
  std::string vault_json = dir + "/vault.json";
  if (PathExists(vault_json)) {
    auto text = ReadFile(vault_json);
    Json doc = text.ok() ? Json::parse(*text, nullptr, false) : Json();
    std::string other = doc.is_object() ? doc.value("vault_id", "") : "";
    if (vault_id.empty() || other != vault_id)
      return Bad("copyLocation '" + dir + "' already holds " +
                     (other.empty() ? std::string("something that is not a vault")
                                    : "vault " + other) +
                     "; choose an empty or new directory.",
                 "CopyLocationInUse");
    return Status::Ok();
  }
  static const std::set<std::string> kOurs = {"state", "tmp", "chunks", "points"};
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (!kOurs.count(e.path().filename().string()))
      return Bad("copyLocation '" + dir + "' is not empty (it holds '" +
                     e.path().filename().string() + "'); choose an empty or new directory.",
                 "CopyLocationInUse");
  }
  return Status::Ok();
}

Result<std::string> ValidateLocation(const Json& value, const std::string& data_dir,
                                     const std::string& primary_dir, const std::string& vault_id) {
  if (!value.is_string()) return Bad("copyLocation must be a string (an absolute directory path).");
  std::string loc = value.get<std::string>();
  if (loc.empty() || loc[0] != '/')
    return Bad("copyLocation '" + loc + "' must be an absolute directory path.");
  if (loc.size() > 1024) return Bad("copyLocation is longer than 1024 characters.");
  for (char c : loc)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return Bad("copyLocation must not contain control characters.");
  while (loc.size() > 1 && loc.back() == '/') loc.pop_back();
  std::string normal = std::filesystem::path(loc).lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  if (normal != loc)
    return Bad("copyLocation '" + loc + "' must be a normalised path (no '.', '..' or '//'), "
               "e.g. '" + normal + "'.");
  if (loc == "/") return Bad("copyLocation must not be the root directory.");
  std::string real = Canonical(loc);
  std::string data = Canonical(data_dir);
  std::string vaults = Canonical(JoinPath(data_dir, "vaults"));
  if (!primary_dir.empty()) {
    std::string primary = Canonical(primary_dir);
    if (Inside(primary, real) || Inside(real, primary))
      return Bad("copyLocation '" + loc + "' must not be inside the vault's own directory (or "
                 "contain it): the copy must survive the loss of the primary.");
  }
  if (Inside(vaults, real))
    return Bad("copyLocation '" + loc + "' must not be inside the vaults directory '" + vaults +
               "'.");
  if (Inside(real, data))
    return Bad("copyLocation '" + loc + "' must not contain the data directory '" + data + "'.");
  std::string parent = std::filesystem::path(real).parent_path().string();
  std::error_code ec;
  if (!std::filesystem::is_directory(parent, ec))
    return Bad("The parent directory '" + parent + "' of copyLocation does not exist (is the "
               "disk mounted?); create it first.");
  RETURN_IF_ERROR(CheckLocationContent(real, vault_id));
  return loc;
}

}  // namespace

Result<RedundancySetting> ParseRedundancy(const Json& props, const RedundancySetting& fallback,
                                          const std::string& data_dir,
                                          const std::string& primary_dir,
                                          const std::string& vault_id) {
  RedundancySetting out = fallback;
  if (props.contains("redundancy")) {
    ASSIGN_OR_RETURN(std::string mode, api::GetString(props, "redundancy"));
    if (EqualsIgnoreCase(mode, "Local")) {
      out.mode = "Local";
    } else if (EqualsIgnoreCase(mode, "Copy")) {
      out.mode = "Copy";
    } else {
      return InvalidArgument("redundancy must be Local or Copy, not '" + mode + "'.",
                             "properties.redundancy");
    }
  }
  if (!out.copy()) {
    if (props.contains("copyLocation") && !props["copyLocation"].is_null())
      return Bad("copyLocation is only used with redundancy Copy.");
    out.copy_location.clear();
    return out;
  }
  if (props.contains("copyLocation")) {
    ASSIGN_OR_RETURN(out.copy_location,
                     ValidateLocation(props["copyLocation"], data_dir, primary_dir, vault_id));
  } else if (!fallback.copy() || fallback.copy_location.empty()) {
    return Bad("redundancy Copy needs properties.copyLocation: an absolute directory on the host, "
               "ideally on another disk than the vault's.");
  }
  return out;
}

RedundancySetting RedundancyOf(const store::Record& vault_rec) {
  const Json& props = PropsOf(vault_rec);
  RedundancySetting s;
  if (props.value("redundancy", "Local") == "Copy") {
    s.mode = "Copy";
    s.copy_location = props.value("copyLocation", "");
  }
  return s;
}

Result<RedundancySetting> ParseRedundancy(const Json& props, const store::Record* existing,
                                          const std::string& data_dir) {
  if (!existing) return ParseRedundancy(props, RedundancySetting{}, data_dir, "", "");
  return ParseRedundancy(props, RedundancyOf(*existing), data_dir,
                         existing->internal.is_object() ? existing->internal.value("dir", "") : "",
                         PropsOf(*existing).value("vaultId", ""));
}

bool ApplyRedundancy(const RedundancySetting& setting, Json& props) {
  const bool was_copy = props.value("redundancy", "Local") == "Copy";
  const std::string old_location = props.value("copyLocation", "");
  props["redundancy"] = setting.mode;
  if (!setting.copy()) {
    props.erase("copyLocation");
    props.erase("copyStatus");
    return false;
  }
  props["copyLocation"] = setting.copy_location;
  const bool start = !was_copy || old_location != setting.copy_location;
  if (start) props["copyStatus"] = {{"state", "Pending"}, {"copyLocation", setting.copy_location}};
  return start;
}

Result<std::string> VaultRedundancy::RequestCopy(const ResourceId& vault,
                                                 const std::string& caller,
                                                 const std::string& reason) {
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(vault.Key()));
  const Json& props = PropsOf(rec);
  if (props.value("redundancy", "Local") != "Copy") return std::string();
  {
    std::lock_guard<std::mutex> lock(mu_);
    VaultState& s = state_[vault.Key()];
    if (s.running) {
      s.again = true;  // the running job makes one more pass
      return s.operation;
    }
    s.running = true;
    s.again = false;
    s.operation.clear();
  }
  auto started = [&]() -> Result<std::string> {
    Json job_props = {{"entityFriendlyName", vault.name()},
                      {"copyLocation", props.value("copyLocation", "")},
                      {"reason", reason}};
    ASSIGN_OR_RETURN(store::Record job, jobs_->Create(vault, "Copy", job_props, caller));
    ASSIGN_OR_RETURN(ResourceId job_id, ResourceId::Parse(job.body.value("id", "")));
    // Before the job can run: a GET right after a backup does not show the last UpToDate.
    SetCopyStatus(vault, [](Json& s) { s["state"] = "Pending"; });
    return jobs_->Run(job_id, kCopyOperation, caller,
                      [this, vault, job_id](OperationContext& octx) {
                        return RunJob(vault, job_id, octx);
                      });
  }();
  {
    std::lock_guard<std::mutex> lock(mu_);
    VaultState& s = state_[vault.Key()];
    if (!started.ok()) {
      s.running = false;
      return started.status();
    }
    s.operation = *started;
  }
  return started;
}

void VaultRedundancy::CopySoon(const ResourceId& vault, const std::string& reason) {
  auto r = RequestCopy(vault, "system", reason);
  if (!r.ok())
    spdlog::warn("copy of vault {} after {}: {}", vault.ToString(), reason, r.status().ToString());
}

void VaultRedundancy::Changed(const store::Record& vault_rec, const std::string& caller,
                              bool start_copy) {
  auto id = ResourceId::Parse(vault_rec.body.value("id", ""));
  if (!id.ok()) return;
  // A platform-key vault opens here; a locked customer-key one gets its fallback when unlocked.
  auto v = vaults_->Open(*id);
  if (v.ok()) AttachCopyFallback(vault_rec, **v);
  if (!start_copy) return;
  auto r = RequestCopy(*id, caller, "redundancyChanged");
  if (!r.ok())
    spdlog::warn("copy of vault {}: {}", id->ToString(), r.status().ToString());
}

void AttachCopyFallback(const store::Record& vault_rec, vault::Vault& v) {
  const Json& props = PropsOf(vault_rec);
  std::string location = props.value("copyLocation", "");
  if (props.value("redundancy", "Local") != "Copy" || location.empty()) {
    v.SetFallback(nullptr);
    return;
  }
  auto current = v.fallback();
  if (current && current->backend().Describe() == "local:" + location) return;
  auto copy = vault::OpenLocalCopy(v, location);
  if (!copy.ok()) {
    if (copy.status().code() != StatusCode::kNotFound)
      spdlog::warn("vault {}: its copy cannot serve reads: {}", v.id(),
                   copy.status().ToString());
    v.SetFallback(nullptr);
    return;
  }
  v.SetFallback(std::shared_ptr<vault::Vault>(std::move(copy).value()));
}

void VaultRedundancy::SetCopyStatus(const ResourceId& vault,
                                    const std::function<void(Json& status)>& fn) {
  UpdateProperties(ctx_.store, vault, [&](Json& props) {
    if (!props.contains("copyStatus") || !props["copyStatus"].is_object())
      props["copyStatus"] = Json::object();
    fn(props["copyStatus"]);
  });
}

Status VaultRedundancy::RunJob(const ResourceId& vault_id, const ResourceId& job_id,
                               OperationContext& octx) {
  const int64_t started = ctx_.clock->NowMs();
  vault::CopyStats total;
  int passes = 0;
  Status st = [&]() -> Status {
    // A verify or GC action, or the vault's deletion, holds the vault: wait (Queued).
    octx.SetProgress(0, "queued");
    auto lock = jobs_->WaitForLock({vault_id.Key()});
    if (!lock.ok()) return Unavailable("stratusd is stopping; the copy will run again later.");
    jobs_->Update(job_id, [&](Json& p) { p["status"] = "InProgress"; });
    for (;;) {
      {
        std::lock_guard<std::mutex> g(mu_);
        state_[vault_id.Key()].again = false;
      }
      ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(vault_id.Key()));
      const Json& props = PropsOf(rec);
      if (props.value("redundancy", "Local") != "Copy") break;  // switched to Local meanwhile
      std::string location = props.value("copyLocation", "");
      ASSIGN_OR_RETURN(vault::Vault * v, vaults_->Open(vault_id));
      ASSIGN_OR_RETURN(auto copier, vault::VaultCopier::OpenLocal(*v, location));
      auto behind = copier->PointsBehind();
      SetCopyStatus(vault_id, [&](Json& s) {
        s["state"] = "Copying";
        s["copyLocation"] = location;
        s["lastJobId"] = job_id.ToString();
        if (behind.ok()) s["pointsBehind"] = *behind;
      });
      // Points the service still indexes stay in the copy even when the primary lost them (by
      // damage: a deliberate deletion removes the index record too).
      std::set<std::string> indexed;
      std::string after;
      for (;;) {
        ASSIGN_OR_RETURN(store::Page page, ctx_.store->List(vault_id.Key() + "/", kPointType,
                                                            after, 500));
        for (auto& r : page.records) indexed.insert(r.body.value("name", ""));
        if (page.next_key.empty()) break;
        after = page.next_key;
      }
      vault::CopyOptions o;
      o.keep_in_copy = [&](const std::string& id) { return indexed.count(id) > 0; };
      std::atomic<int64_t> last{0};
      o.progress = [&](uint64_t done, uint64_t all) {
        int64_t now = ctx_.clock->MonotonicMs();
        int64_t prev = last.load();
        if (now - prev < 1000 || !last.compare_exchange_strong(prev, now)) return;
        octx.SetProgress(all ? static_cast<int>(done * 100 / all) : 0, "copying chunks");
      };
      ASSIGN_OR_RETURN(vault::CopyStats s, copier->CatchUp(o));
      ++passes;
      total.points_in_primary = s.points_in_primary;
      total.points_copied += s.points_copied;
      total.points_skipped += s.points_skipped;
      total.points_removed += s.points_removed;
      total.points_failed += s.points_failed;
      total.points_behind = s.points_behind;
      total.chunks_checked += s.chunks_checked;
      total.chunks_copied += s.chunks_copied;
      total.bytes_copied += s.bytes_copied;
      total.chunks_gc_deleted += s.chunks_gc_deleted;
      total.config_copied = total.config_copied || s.config_copied;
      total.errors = s.errors;  // the last pass's: earlier failures may have been fixed since
      AttachCopyFallback(rec, *v);
      std::lock_guard<std::mutex> g(mu_);
      if (!state_[vault_id.Key()].again) break;
    }
    if (!total.ok())
      return Status(StatusCode::kInternal, "CopyIncomplete",
                    "The copy of vault '" + vault_id.name() + "' is incomplete: " +
                        total.Summary());
    return Status::Ok();
  }();
  {
    std::lock_guard<std::mutex> g(mu_);
    state_[vault_id.Key()].running = false;
  }
  const int64_t now = ctx_.clock->NowMs();
  Json stats = {{"pointsCopied", total.points_copied},
                {"pointsRemoved", total.points_removed},
                {"pointsFailed", total.points_failed},
                {"pointsBehind", total.points_behind},
                {"chunksCopied", total.chunks_copied},
                {"bytesCopied", total.bytes_copied},
                {"chunksFreedInCopy", total.chunks_gc_deleted},
                {"passes", passes},
                {"durationMs", now - started}};
  jobs_->Update(job_id, [&](Json& p) {
    p["copy"] = stats;
    StampJobEnd(p, started, now);
    p["progress"]["bytesDone"] = total.bytes_copied;
    p["progress"]["bytesTotal"] = total.bytes_copied;
    p["progress"]["percent"] = 100;
    if (st.ok()) p["status"] = "Completed";
  });
  octx.result() = stats;
  SetCopyStatus(vault_id, [&](Json& s) {
    s["lastJobId"] = job_id.ToString();
    if (passes > 0) s["pointsBehind"] = total.points_behind;
    if (st.ok()) {
      s["state"] = total.points_behind == 0 ? "UpToDate" : "Behind";
      s["lastCopyTime"] = FormatIso8601(now);
      s.erase("error");
    } else {
      s["state"] = "Failed";
      s["error"] = api::ErrorBody(st)["error"];
    }
  });
  if (!st.ok()) {
    jobs_->Fail(job_id, st);  // and alerts: the backup that asked for the copy stays good
    spdlog::warn("copy of vault {}: {}", vault_id.ToString(), st.ToString());
  }
  return st;
}

void VaultRedundancy::RegisterRecovery() {
  ctx_.ops->RegisterRecovery(
      kCopyOperation, [this](const store::OperationRecord& op, OperationContext&) -> Status {
        Status st = Internal("The copy job was interrupted by a restart of stratusd; a new copy "
                             "job catches up.");
        auto id = ResourceId::Parse(op.body.value("resourceId", ""));
        if (!id.ok()) return st;
        jobs_->Update(*id, [&](Json& p) {
          p["status"] = "Failed";
          p["endTime"] = FormatIso8601(ctx_.clock->NowMs());
          p["error"] = api::ErrorBody(st)["error"];
        });
        // The copy is consistent whatever instant it was cut at: copy again from where it is.
        auto again = RequestCopy(id->Parent(), "system", "restart");
        if (!again.ok())
          spdlog::warn("copy of vault {} after restart: {}", id->Parent().ToString(),
                       again.status().ToString());
        return st;
      });
}

}  // namespace stratus::recovery::service
