// stratus backup vault create|update|show|list|delete|unlock|verify|gc|copy
//                policy create|update|show|list|delete
//                protection enable|disable|show|list
//                now
//                recoverypoint list|show
//                restore
//                files list|extract
//                job list|show
// The Stratus.RecoveryServices API (docs/api.md, "Stratus.RecoveryServices (backup)"). Everything
// but the vault list lives under .../providers/Stratus.RecoveryServices/vaults/{vault}.
#include <cctype>
#include <cstdint>
#include <memory>

#include "cli/commands.h"
#include "cli/resolve.h"
#include "core/base64.h"
#include "core/fs.h"
#include "core/resource_id.h"

namespace stratus::cli {
namespace {

constexpr const char* kVaultsType = "Stratus.RecoveryServices/vaults";
constexpr const char* kPolicyType = "Stratus.RecoveryServices/vaults/backupPolicies";

// The options of every `backup` leaf; each leaf uses a few.
struct BackupArgs {
  std::string group;
  std::string vault;
  std::string name;  // the policy, protected item, recovery point or job a leaf acts on
  std::string location;
  std::vector<std::string> tags;
  bool yes = false;
  // vault create / unlock / verify
  std::string key_source;
  std::string passphrase_file;
  std::vector<std::string> webhooks;
  std::string recovery_point;
  // vault create / update: redundancy
  std::string redundancy;     // "Local" | "Copy"; "" = not given
  std::string copy_location;  // --copy-location DIR (implies Copy)
  // policy create / update. Counts and hours: 0 = not given (CLI11 rejects 0 on the command line).
  std::string policy_json;
  std::vector<std::string> daily;
  int hourly = 0;
  std::string window_start;
  int window_hours = 0;
  std::vector<std::string> weekly;
  std::vector<std::string> at;
  int keep_hourly = 0;
  int keep_daily = 0;
  int keep_weekly = 0;
  int keep_monthly = 0;
  int keep_yearly = 0;
  std::string time_zone;
  int on_demand_days = 0;
  std::string consistency;
  // protection
  std::string vm;
  std::string policy;  // name in --vault, or id
  bool delete_backup_data = false;
  // now
  std::string retain_until;
  // restore
  std::string as_new_vm;
  std::string vm_size;
  std::string target_group;
  std::vector<std::string> disks;
  std::string as_disks;
  bool original = false;
  bool instant = false;  // --as-new-vm: start the VM at once, fill its disks behind it
  // files
  std::string disk;
  std::string dir = "/";           // files list
  std::vector<std::string> paths;  // files extract
  std::string to;
};

// ---- Paths -----------------------------------------------------------------------------------

std::string VaultsPath(const Context& ctx, const BackupArgs& a) {
  return GroupPath(ctx.subscription(), a.group) + "/providers/" + kVaultsType;
}
std::string VaultPath(const Context& ctx, const BackupArgs& a) {
  return VaultsPath(ctx, a) + "/" + a.vault;
}
std::string ItemsPath(const Context& ctx, const BackupArgs& a) {
  return VaultPath(ctx, a) + "/protectedItems";
}

bool ContainsSegment(const std::string& id, const std::string& segment) {
  return ToLower(id).find("/" + ToLower(segment) + "/") != std::string::npos;
}

// `.../{collection}/{name_or_id}` under `parent`: a name is appended; a full id (as printed by
// -o json) is used as is once it is checked to be of the right type.
CliResult<std::string> ChildPath(const std::string& parent, const std::string& collection,
                                 const std::string& name_or_id, const std::string& option) {
  if (name_or_id.empty()) return UsageError(option + " must not be empty.", option);
  if (LooksLikeResourceId(name_or_id)) {
    if (!ContainsSegment(name_or_id, collection))
      return UsageError(option + ": '" + name_or_id + "' is not an id of " + collection + ".",
                        option);
    return name_or_id;
  }
  if (name_or_id.find('/') != std::string::npos)
    return UsageError(option + ": '" + name_or_id + "' is neither a name nor a full id.", option);
  return parent + "/" + collection + "/" + name_or_id;
}

// The protected item `--item` (a.name).
CliResult<std::string> ItemPath(const Context& ctx, const BackupArgs& a) {
  return ChildPath(VaultPath(ctx, a), "protectedItems", a.name, "--item");
}

CliResult<std::string> RecoveryPointPath(const Context& ctx, const BackupArgs& a) {
  CLI_ASSIGN_OR_RETURN(std::string item, ItemPath(ctx, a));
  return ChildPath(item, "recoveryPoints", a.recovery_point, "--recovery-point");
}

// ---- Small helpers ---------------------------------------------------------------------------

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// The values of a list option (`--daily 02:00,14:00` or `--daily 02:00 14:00`), trimmed.
Json StringList(const std::vector<std::string>& values) {
  Json out = Json::array();
  for (const std::string& v : values) {
    std::string t = Trim(v);
    if (!t.empty()) out.push_back(t);
  }
  return out;
}

std::string Str(const Json& row, const std::string& dotted) {
  return FormatCell(JsonPath(row, dotted));
}

// The short name of a resource: `name`, else the last segment of `id`.
std::string ShortName(const Json& row) {
  std::string name = Str(row, "name");
  return name.empty() ? NameFromId(Str(row, "id")) : name;
}

std::string NameOfIdField(const Json& row, const std::string& dotted) {
  const Json* v = JsonPath(row, dotted);
  return v != nullptr && v->is_string() ? NameFromId(v->get<std::string>()) : std::string();
}

// A customer passphrase from `--passphrase-file`: the file's text without its final newline.
CliResult<std::string> ReadPassphrase(const std::string& file) {
  auto text = ReadFile(file);
  if (!text.ok())
    return CliError(ExitCode::kLocalError, "FileNotFound",
                    "Cannot read the --passphrase-file '" + file + "'.", "--passphrase-file");
  std::string passphrase = std::move(text).value();
  if (!passphrase.empty() && passphrase.back() == '\n') passphrase.pop_back();
  if (!passphrase.empty() && passphrase.back() == '\r') passphrase.pop_back();
  if (passphrase.empty())
    return UsageError("The --passphrase-file '" + file + "' is empty.", "--passphrase-file");
  return passphrase;
}

// ---- Tables ----------------------------------------------------------------------------------

Column IdColumn() {
  return {"Id", [](const Json& r) { return ShortName(r); }};
}

const TableSpec& VaultTable() {
  static const TableSpec kSpec = {
      FieldColumn("Name", "name"),
      {"ResourceGroup", [](const Json& r) { return ResourceGroupFromId(Str(r, "id")); }},
      FieldColumn("Location", "location"),
      FieldColumn("KeySource", "properties.encryption.keySource"),
      FieldColumn("State", "properties.state"),
      FieldColumn("ProtectedItems", "properties.protectedItemCount"),
      FieldColumn("RecoveryPoints", "properties.recoveryPointCount"),
      FieldColumn("ProvisioningState", "properties.provisioningState"),
  };
  return kSpec;
}

// "Daily 02:00,14:00", "Hourly every 4h from 08:00 for 12h", "Weekly Sunday,Wednesday 02:00".
std::string ScheduleSummary(const Json& policy) {
  const Json* schedule = JsonPath(policy, "properties.schedule");
  if (schedule == nullptr || !schedule->is_object()) return {};
  auto joined = [&](const char* key) {
    const Json* list = JsonPath(*schedule, key);
    std::string out;
    if (list == nullptr || !list->is_array()) return out;
    for (const Json& v : *list) out += (out.empty() ? "" : ",") + FormatCell(&v);
    return out;
  };
  std::string frequency = Str(*schedule, "frequency");
  if (frequency == "Hourly") {
    std::string out = "Hourly every " + Str(*schedule, "intervalHours") + "h";
    std::string start = Str(*schedule, "windowStartTime");
    std::string hours = Str(*schedule, "windowDurationHours");
    if (!start.empty()) out += " from " + start;
    if (!hours.empty()) out += " for " + hours + "h";
    return out;
  }
  if (frequency == "Weekly") return "Weekly " + joined("days") + " " + joined("times");
  return frequency + " " + joined("times");
}

// "daily 7, weekly 4, monthly 12".
std::string RetentionSummary(const Json& policy) {
  std::string out;
  for (const char* tier : {"hourly", "daily", "weekly", "monthly", "yearly"}) {
    std::string count = Str(policy, std::string("properties.retention.") + tier + ".count");
    if (!count.empty()) out += (out.empty() ? "" : ", ") + std::string(tier) + " " + count;
  }
  return out;
}

const TableSpec& PolicyTable() {
  static const TableSpec kSpec = {
      FieldColumn("Name", "name"),
      {"Schedule", ScheduleSummary},
      FieldColumn("TimeZone", "properties.timeZone"),
      {"Retention", RetentionSummary},
      FieldColumn("OnDemandDays", "properties.onDemandRetentionDays"),
      FieldColumn("ProtectedItems", "properties.protectedItemsCount", /*hide_when_empty=*/true),
  };
  return kSpec;
}

const TableSpec& ProtectedItemTable() {
  static const TableSpec kSpec = {
      FieldColumn("Name", "name"),
      {"Vm", [](const Json& r) { return NameOfIdField(r, "properties.sourceResourceId"); }},
      {"Policy", [](const Json& r) { return NameOfIdField(r, "properties.policyId"); }},
      FieldColumn("State", "properties.protectionState"),
      FieldColumn("LastBackup", "properties.lastBackupTime"),
      FieldColumn("LastStatus", "properties.lastBackupStatus"),
      FieldColumn("RecoveryPoints", "properties.recoveryPointCount"),
      FieldColumn("NextBackup", "properties.nextScheduledBackupTime"),
  };
  return kSpec;
}

const TableSpec& RecoveryPointTable() {
  static const TableSpec kSpec = {
      IdColumn(),
      FieldColumn("Time", "properties.recoveryPointTime"),
      FieldColumn("Type", "properties.recoveryPointType"),
      FieldColumn("Consistency", "properties.consistency"),
  };
  return kSpec;
}

std::string JobItem(const Json& job) {
  std::string item = Str(job, "properties.entityFriendlyName");
  return item.empty() ? NameOfIdField(job, "properties.protectedItemId") : item;
}

// `backup job list`.
const TableSpec& JobListTable() {
  static const TableSpec kSpec = {
      IdColumn(),
      FieldColumn("Operation", "properties.operation"),
      {"Item", JobItem},
      FieldColumn("Status", "properties.status"),
      FieldColumn("Start", "properties.startTime"),
      FieldColumn("Duration", "properties.duration"),
      FieldColumn("BytesAdded", "properties.bytesAdded"),
  };
  return kSpec;
}

// `backup job show`, and the summary printed when `backup now` / `backup restore` end.
const TableSpec& JobTable() {
  static const TableSpec kSpec = {
      IdColumn(),
      FieldColumn("Operation", "properties.operation"),
      {"Item", JobItem},
      FieldColumn("Status", "properties.status"),
      FieldColumn("Type", "properties.backupType", /*hide_when_empty=*/true),
      FieldColumn("BytesRead", "properties.bytesRead"),
      FieldColumn("BytesAdded", "properties.bytesAdded", /*hide_when_empty=*/true),
      FieldColumn("Duration", "properties.duration"),
      FieldColumn("Consistency", "properties.consistency", /*hide_when_empty=*/true),
      {"RecoveryPoint",
       [](const Json& r) { return NameOfIdField(r, "properties.recoveryPointId"); },
       /*hide_when_empty=*/true},
      FieldColumn("Error", "properties.error.message", /*hide_when_empty=*/true),
  };
  return kSpec;
}

const TableSpec& FileEntryTable() {
  static const TableSpec kSpec = {
      FieldColumn("Name", "name"),
      FieldColumn("Type", "type"),
      FieldColumn("Size", "size"),
  };
  return kSpec;
}

const TableSpec& ExtractedFileTable() {
  static const TableSpec kSpec = {
      FieldColumn("Path", "path"),
      FieldColumn("Size", "size"),
      FieldColumn("LocalPath", "localPath"),
  };
  return kSpec;
}

const TableSpec& ProblemTable() {
  static const TableSpec kSpec = {
      FieldColumn("Kind", "kind"),     FieldColumn("RecoveryPoint", "recoveryPointId"),
      FieldColumn("Disk", "disk"),     FieldColumn("Offset", "offset"),
      FieldColumn("Chunk", "chunkId"), FieldColumn("Message", "message"),
  };
  return kSpec;
}

const TableSpec& GcTable() {
  static const TableSpec kSpec = {
      FieldColumn("ChunksDeleted", "chunksDeleted"),
      FieldColumn("BytesFreed", "bytesFreed"),
      FieldColumn("ChunksReferenced", "chunksReferenced"),
  };
  return kSpec;
}

const TableSpec& CopyTable() {
  static const TableSpec kSpec = {
      FieldColumn("PointsCopied", "pointsCopied"),
      FieldColumn("ChunksCopied", "chunksCopied"),
      FieldColumn("BytesCopied", "bytesCopied"),
      FieldColumn("PointsRemoved", "pointsRemoved"),
      FieldColumn("PointsBehind", "pointsBehind"),
  };
  return kSpec;
}

// The `properties` of an action's result: the finished operation's, or (when the action answered
// at once) the response's; the whole document when it has none.
Json ActionResult(const Context::WriteOutcome& outcome) {
  const Json& doc = outcome.operation.has_value() ? *outcome.operation : outcome.response.body;
  const Json* properties = JsonPath(doc, "properties");
  if (properties != nullptr && properties->is_object()) return *properties;
  return doc.is_null() ? Json::object() : doc;
}

// ---- Vaults ----------------------------------------------------------------------------------

// Sets properties.redundancy / copyLocation from --redundancy and --copy-location (which implies
// Copy); leaves them alone when neither is given.
CliStatus ApplyRedundancyArgs(const BackupArgs& a, Json& properties) {
  std::string mode = a.redundancy;
  if (mode.empty() && !a.copy_location.empty()) mode = "Copy";
  if (mode.empty()) return CliStatus::Ok();
  if (mode == "Local" && !a.copy_location.empty())
    return UsageError("--copy-location goes with --redundancy Copy.", "--copy-location");
  properties["redundancy"] = mode;
  if (!a.copy_location.empty()) properties["copyLocation"] = a.copy_location;
  return CliStatus::Ok();
}

CliStatus VaultCreate(Context& ctx, const BackupArgs& a) {
  CLI_ASSIGN_OR_RETURN(Json tags, ParseTags(a.tags));
  std::string key_source = a.key_source;
  if (key_source.empty()) key_source = a.passphrase_file.empty() ? "Platform" : "Customer";
  Json encryption = {{"keySource", key_source}};
  if (key_source == "Customer") {
    if (a.passphrase_file.empty())
      return UsageError("--key-source Customer needs --passphrase-file.", "--passphrase-file");
    CLI_ASSIGN_OR_RETURN(std::string passphrase, ReadPassphrase(a.passphrase_file));
    encryption["passphrase"] = passphrase;
  } else if (!a.passphrase_file.empty()) {
    return UsageError("--passphrase-file is only for --key-source Customer.", "--passphrase-file");
  }
  Json properties = {{"encryption", encryption}, {"redundancy", "Local"}};
  CLI_RETURN_IF_ERROR(ApplyRedundancyArgs(a, properties));
  if (!a.webhooks.empty()) properties["alerts"] = {{"webhooks", StringList(a.webhooks)}};
  Json body = {
      {"location", LocationOr(ctx, a.location)}, {"tags", tags}, {"properties", properties}};
  std::string path = VaultPath(ctx, a);
  return ctx.WriteAndShow("PUT", path, &body, path, VaultTable());
}

// Changes redundancy, webhooks or tags of an existing vault: the current vault, with what is
// given replaced, PUT back (the key source cannot change).
CliStatus VaultUpdate(Context& ctx, const BackupArgs& a) {
  std::string path = VaultPath(ctx, a);
  CLI_ASSIGN_OR_RETURN(Json current, ctx.client().Get(path));
  Json properties = Json::object();
  if (const Json* ks = JsonPath(current, "properties.encryption.keySource"))
    properties["encryption"] = {{"keySource", *ks}};
  if (const Json* alerts = JsonPath(current, "properties.alerts")) properties["alerts"] = *alerts;
  if (!a.webhooks.empty()) properties["alerts"] = {{"webhooks", StringList(a.webhooks)}};
  CLI_RETURN_IF_ERROR(ApplyRedundancyArgs(a, properties));
  Json body = {{"location", Str(current, "location")}, {"properties", properties}};
  if (const Json* tags = JsonPath(current, "tags")) body["tags"] = *tags;
  if (!a.tags.empty()) {
    CLI_ASSIGN_OR_RETURN(Json tags, ParseTags(a.tags));
    body["tags"] = tags;
  }
  return ctx.WriteAndShow("PUT", path, &body, path, VaultTable());
}

// Brings the vault's copy up to date now (a Copy job) and prints what it copied.
CliStatus VaultCopy(Context& ctx, const BackupArgs& a) {
  Json body = Json::object();
  CLI_ASSIGN_OR_RETURN(Context::WriteOutcome outcome,
                       ctx.Write("POST", VaultPath(ctx, a) + "/copy", &body));
  if (outcome.pending) return CliStatus::Ok();
  PrintOne(ctx.out(), ctx.format(), CopyTable(), ActionResult(outcome));
  return CliStatus::Ok();
}

CliStatus VaultUnlock(Context& ctx, const BackupArgs& a) {
  CLI_ASSIGN_OR_RETURN(std::string passphrase, ReadPassphrase(a.passphrase_file));
  Json body = {{"passphrase", passphrase}};
  return ctx.WriteAndShow("POST", VaultPath(ctx, a) + "/unlock", &body, VaultPath(ctx, a),
                          VaultTable());
}

// Prints what verify checked and every problem; exit 7 (VaultCorrupt) when there are problems.
CliStatus VaultVerify(Context& ctx, const BackupArgs& a) {
  Json body = Json::object();
  if (!a.recovery_point.empty()) body["recoveryPointId"] = a.recovery_point;
  CLI_ASSIGN_OR_RETURN(Context::WriteOutcome outcome,
                       ctx.Write("POST", VaultPath(ctx, a) + "/verify", &body,
                                 Context::OnOperationFailure::kReturnResult));
  if (outcome.pending) return CliStatus::Ok();
  const Json* operation = outcome.operation.has_value() ? &*outcome.operation : nullptr;
  std::string status = operation != nullptr ? Str(*operation, "status") : "Succeeded";
  Json result = ActionResult(outcome);
  const Json* problems_json = JsonPath(result, "problems");
  std::vector<Json> problems;
  if (problems_json != nullptr && problems_json->is_array())
    problems.assign(problems_json->begin(), problems_json->end());

  // A verify that failed without reporting problems (e.g. the vault is locked) is a plain
  // operation failure.
  if (status != "Succeeded" && problems.empty()) return OperationFailedError(*operation);

  if (ctx.format() == OutputFormat::kJson) {
    ctx.out() << RenderJson(result);
  } else {
    std::string chunks = Str(result, "chunksChecked");
    std::string bytes = Str(result, "bytesChecked");
    ctx.out() << "Checked " << (chunks.empty() ? "0" : chunks) << " chunks ("
              << (bytes.empty() ? "0" : bytes) << " bytes): ";
    if (problems.empty())
      ctx.out() << "no problems.\n";
    else
      ctx.out() << problems.size() << (problems.size() == 1 ? " problem" : " problems") << ".\n"
                << RenderTable(ProblemTable(), problems);
  }
  ctx.out().flush();
  if (problems.empty()) return CliStatus::Ok();
  if (operation != nullptr && status != "Succeeded") return OperationFailedError(*operation);
  return CliError(ExitCode::kOperationFailed, "VaultCorrupt",
                  "Verify of vault '" + a.vault + "' found " + std::to_string(problems.size()) +
                      " problem(s).");
}

CliStatus VaultGc(Context& ctx, const BackupArgs& a) {
  Json body = Json::object();
  CLI_ASSIGN_OR_RETURN(Context::WriteOutcome outcome,
                       ctx.Write("POST", VaultPath(ctx, a) + "/gc", &body));
  if (outcome.pending) return CliStatus::Ok();
  PrintOne(ctx.out(), ctx.format(), GcTable(), ActionResult(outcome));
  return CliStatus::Ok();
}

// ---- Policies --------------------------------------------------------------------------------

// `--policy @file.json` or `--policy '<json>'`: the policy's `properties`. A whole resource as
// printed by `policy show -o json` is accepted too (its `properties` is used), so that
// show-edit-update works; a policy itself has no `properties` field.
CliResult<Json> ParsePolicyArg(const std::string& arg) {
  std::string text = arg;
  std::string source = "--policy";
  if (!arg.empty() && arg[0] == '@') {
    auto read = ReadFile(arg.substr(1));
    if (!read.ok())
      return CliError(ExitCode::kLocalError, "FileNotFound",
                      "Cannot read the --policy file '" + arg.substr(1) + "'.", "--policy");
    text = std::move(read).value();
    source = "--policy file '" + arg.substr(1) + "'";
  }
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded())
    return UsageError(source + " is not valid JSON (use @FILE for a file).", "--policy");
  if (!doc.is_object()) return UsageError(source + " must be a JSON object.", "--policy");
  const Json* properties = JsonPath(doc, "properties");
  if (properties != nullptr && properties->is_object()) return *properties;
  return doc;
}

bool HasScheduleFlags(const BackupArgs& a) {
  return !a.daily.empty() || a.hourly > 0 || !a.weekly.empty();
}
bool HasRetentionFlags(const BackupArgs& a) {
  return a.keep_hourly > 0 || a.keep_daily > 0 || a.keep_weekly > 0 || a.keep_monthly > 0 ||
         a.keep_yearly > 0;
}
bool HasPolicyFlags(const BackupArgs& a) {
  return HasScheduleFlags(a) || HasRetentionFlags(a) || !a.time_zone.empty() ||
         a.on_demand_days > 0 || !a.consistency.empty();
}

// Sets a retention tier's count, keeping the tier's other fields; `defaults` fill the fields the
// tier does not have yet.
void SetTier(Json& retention, const char* tier, int count, const Json& defaults) {
  if (count <= 0) return;
  Json& t = retention[tier];
  if (!t.is_object()) t = Json::object();
  t["count"] = count;
  for (const auto& [key, value] : defaults.items())
    if (!t.contains(key) || t[key].is_null()) t[key] = value;
}

// Applies the convenience flags (--daily, --keep-weekly, ...) on top of `policy`.
CliStatus ApplyPolicyFlags(const BackupArgs& a, Json& policy) {
  int schedules = (a.daily.empty() ? 0 : 1) + (a.hourly > 0 ? 1 : 0) + (a.weekly.empty() ? 0 : 1);
  if (schedules > 1)
    return UsageError("Give one schedule: --daily, --hourly or --weekly.", "--daily");
  if (a.hourly == 0 && (!a.window_start.empty() || a.window_hours > 0))
    return UsageError("--window-start and --window-hours go with --hourly.", "--window-start");
  if (!a.weekly.empty() && a.at.empty())
    return UsageError("--weekly needs --at: the times of day, e.g. --at 02:00.", "--at");
  if (a.weekly.empty() && !a.at.empty())
    return UsageError("--at goes with --weekly (use --daily TIMES for a daily schedule).", "--at");

  if (!a.daily.empty()) {
    policy["schedule"] = {{"frequency", "Daily"}, {"times", StringList(a.daily)}};
  } else if (a.hourly > 0) {
    Json schedule = {{"frequency", "Hourly"}, {"intervalHours", a.hourly}};
    if (!a.window_start.empty()) schedule["windowStartTime"] = a.window_start;
    if (a.window_hours > 0) schedule["windowDurationHours"] = a.window_hours;
    policy["schedule"] = schedule;
  } else if (!a.weekly.empty()) {
    policy["schedule"] = {
        {"frequency", "Weekly"}, {"days", StringList(a.weekly)}, {"times", StringList(a.at)}};
  }
  if (!a.time_zone.empty()) policy["timeZone"] = a.time_zone;
  if (a.on_demand_days > 0) policy["onDemandRetentionDays"] = a.on_demand_days;
  if (!a.consistency.empty()) policy["consistency"] = a.consistency;

  if (HasRetentionFlags(a)) {
    // The days a weekly/monthly/yearly tier keeps, when the policy does not say: with a Weekly
    // schedule its first day (the server rejects days the schedule never backs up on), otherwise
    // Sunday and the 1st of the month.
    std::string first_day;
    const Json* schedule = JsonPath(policy, "schedule");
    const Json* days = schedule != nullptr ? JsonPath(*schedule, "days") : nullptr;
    if (schedule != nullptr && EqualsIgnoreCase(Str(*schedule, "frequency"), "Weekly") &&
        days != nullptr && days->is_array() && !days->empty() && (*days)[0].is_string())
      first_day = (*days)[0].get<std::string>();
    Json week_days = Json::array({first_day.empty() ? "Sunday" : first_day});
    Json month_days = first_day.empty() ? Json::array({1}) : Json::array({"First " + first_day});

    if (!policy.contains("retention") || !policy["retention"].is_object())
      policy["retention"] = Json::object();
    Json& retention = policy["retention"];
    SetTier(retention, "hourly", a.keep_hourly, Json::object());
    SetTier(retention, "daily", a.keep_daily, Json::object());
    SetTier(retention, "weekly", a.keep_weekly, {{"daysOfWeek", week_days}});
    SetTier(retention, "monthly", a.keep_monthly, {{"daysOfMonth", month_days}});
    SetTier(retention, "yearly", a.keep_yearly,
            {{"monthsOfYear", Json::array({"January"})}, {"daysOfMonth", month_days}});
  }
  return CliStatus::Ok();
}

CliResult<std::string> PolicyPath(const Context& ctx, const BackupArgs& a) {
  return ChildPath(VaultPath(ctx, a), "backupPolicies", a.name, "--name");
}

CliStatus PolicyPut(Context& ctx, const BackupArgs& a, bool update) {
  CLI_ASSIGN_OR_RETURN(std::string path, PolicyPath(ctx, a));
  Json policy = Json::object();
  if (!a.policy_json.empty()) {
    CLI_ASSIGN_OR_RETURN(policy, ParsePolicyArg(a.policy_json));
  } else if (update) {
    if (!HasPolicyFlags(a))
      return UsageError("Nothing to update: give --policy or schedule/retention flags.",
                        "--policy");
    // Edit the current policy: the flags change only what they name.
    CLI_ASSIGN_OR_RETURN(Json current, ctx.client().Get(path));
    const Json* properties = JsonPath(current, "properties");
    if (properties != nullptr && properties->is_object()) policy = *properties;
    for (const char* read_only : {"provisioningState", "protectedItemsCount"})
      policy.erase(read_only);
  } else {
    if (!HasScheduleFlags(a))
      return UsageError("Give --policy JSON, or a schedule: --daily, --hourly or --weekly.",
                        "--policy");
    if (!HasRetentionFlags(a))
      return UsageError(
          "Give at least one of --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, "
          "--keep-yearly (or --policy JSON).",
          "--keep-daily");
  }
  CLI_RETURN_IF_ERROR(ApplyPolicyFlags(a, policy));
  Json body = {{"properties", policy}};
  return ctx.WriteAndShow("PUT", path, &body, path, PolicyTable());
}

CliStatus PolicyCreate(Context& ctx, const BackupArgs& a) { return PolicyPut(ctx, a, false); }
CliStatus PolicyUpdate(Context& ctx, const BackupArgs& a) { return PolicyPut(ctx, a, true); }

// ---- Protection ------------------------------------------------------------------------------

// The policy id for `--policy`: a name in --vault, or a full backup policy id.
CliResult<std::string> PolicyId(const Context& ctx, const BackupArgs& a) {
  if (LooksLikeResourceId(a.policy)) {
    auto id = ResourceId::Parse(a.policy);
    if (!id.ok()) return UsageError("--policy: " + id.status().message(), "--policy");
    if (!EqualsIgnoreCase(id->FullType(), kPolicyType))
      return UsageError("--policy: '" + a.policy + "' is not a backup policy id (" +
                            std::string(kPolicyType) + ").",
                        "--policy");
    return a.policy;
  }
  return ChildPath(VaultPath(ctx, a), "backupPolicies", a.policy, "--policy");
}

// The protected item a protection command acts on: -n, else the name of --vm.
CliResult<std::string> ItemName(const BackupArgs& a) {
  if (!a.name.empty()) return a.name;
  if (!a.vm.empty()) return NameFromId(a.vm);
  return UsageError("Give the protected item: -n/--item NAME or --vm VM.", "--item");
}

// The protected item of a protection command (-n, else the VM's name).
CliResult<std::string> ExistingItemPath(const Context& ctx, const BackupArgs& a) {
  CLI_ASSIGN_OR_RETURN(std::string name, ItemName(a));
  return ChildPath(VaultPath(ctx, a), "protectedItems", name, "--item");
}

CliStatus ProtectionEnable(Context& ctx, const BackupArgs& a) {
  CLI_ASSIGN_OR_RETURN(std::string vm_id, ResolveResourceId(ctx.subscription(), a.group, a.vm,
                                                            ResourceKind::kVirtualMachine, "--vm"));
  CLI_ASSIGN_OR_RETURN(std::string policy_id, PolicyId(ctx, a));
  CLI_ASSIGN_OR_RETURN(std::string path, ExistingItemPath(ctx, a));
  Json body = {{"properties", {{"sourceResourceId", vm_id}, {"policyId", policy_id}}}};
  return ctx.WriteAndShow("PUT", path, &body, path, ProtectedItemTable());
}

CliStatus ProtectionDisable(Context& ctx, const BackupArgs& a) {
  CLI_ASSIGN_OR_RETURN(std::string path, ExistingItemPath(ctx, a));
  if (a.delete_backup_data) path = WithQuery(path, {{"deleteBackupData", "true"}});
  CLI_RETURN_IF_ERROR(ctx.Write("DELETE", path, nullptr));
  return CliStatus::Ok();
}

// ---- Jobs: backup now, restore ---------------------------------------------------------------

// A job reference in `doc`: a backupJobs id, or a `jobId` field.
std::string JobRef(const Json& doc) {
  for (const char* key : {"id", "resourceId"}) {
    std::string id = Str(doc, key);
    if (ContainsSegment(id, "backupJobs")) return id;
  }
  for (const char* key : {"jobId", "properties.jobId"}) {
    std::string id = Str(doc, key);
    if (!id.empty()) return id;
  }
  return {};
}

// The job a finished `backup now` / `restore` ran: GET of the job the response or the operation
// names; otherwise what the operation reported.
CliResult<Json> FinishedJob(Context& ctx, const BackupArgs& a,
                            const Context::WriteOutcome& outcome) {
  std::string ref = JobRef(outcome.response.body);
  if (ref.empty() && outcome.operation.has_value()) ref = JobRef(*outcome.operation);
  if (!ref.empty()) {
    CLI_ASSIGN_OR_RETURN(std::string path,
                         ChildPath(VaultPath(ctx, a), "backupJobs", ref, "job id"));
    auto job = ctx.client().Get(path);
    if (job.ok()) return std::move(job).value();
    if (job.error().exit_code() != ExitCode::kNotFound) return job.error();
  }
  if (outcome.operation.has_value()) {
    const Json& op = *outcome.operation;
    const Json* properties = JsonPath(op, "properties");
    return Json{{"name", Str(op, "name")},
                {"properties", properties != nullptr ? *properties : Json::object()}};
  }
  return outcome.response.body;
}

// POSTs an action that starts a backup job, waits for it unless --no-wait, prints the job.
CliStatus RunJob(Context& ctx, const BackupArgs& a, const std::string& path, const Json& body) {
  CLI_ASSIGN_OR_RETURN(Context::WriteOutcome outcome, ctx.Write("POST", path, &body));
  if (outcome.pending) return CliStatus::Ok();
  CLI_ASSIGN_OR_RETURN(Json job, FinishedJob(ctx, a, outcome));
  PrintOne(ctx.out(), ctx.format(), JobTable(), job);
  return CliStatus::Ok();
}

CliStatus BackupNow(Context& ctx, const BackupArgs& a) {
  Json body = Json::object();
  if (!a.retain_until.empty()) body["retainUntil"] = a.retain_until;
  CLI_ASSIGN_OR_RETURN(std::string item, ItemPath(ctx, a));
  return RunJob(ctx, a, item + "/backup", body);
}

CliResult<Json> BuildRestoreBody(const BackupArgs& a) {
  int modes = (a.as_new_vm.empty() ? 0 : 1) + (a.as_disks.empty() ? 0 : 1) + (a.original ? 1 : 0);
  if (modes != 1)
    return UsageError("Give exactly one of --as-new-vm NAME, --as-disks PREFIX, --original.",
                      "--as-new-vm");
  if (a.as_new_vm.empty() && (!a.vm_size.empty() || !a.disks.empty()))
    return UsageError("--size and --disks go with --as-new-vm.", "--size");
  if (a.as_new_vm.empty() && a.instant)
    return UsageError("--instant goes with --as-new-vm (the new VM starts before its disks are "
                      "filled).",
                      "--instant");
  if (a.original) {
    if (!a.target_group.empty())
      return UsageError("--target-group does not go with --original (the VM stays where it is).",
                        "--target-group");
    return Json{{"restoreType", "OriginalLocation"}};
  }
  Json body;
  if (!a.as_new_vm.empty()) {
    body = {{"restoreType", "AlternateLocation"}, {"vmName", a.as_new_vm}};
    if (!a.vm_size.empty()) body["vmSize"] = a.vm_size;
    if (!a.disks.empty()) body["disks"] = StringList(a.disks);
    if (a.instant) body["instant"] = true;
  } else {
    body = {{"restoreType", "RestoreDisks"}, {"diskNamePrefix", a.as_disks}};
  }
  if (!a.target_group.empty()) body["targetResourceGroup"] = a.target_group;
  return body;
}

CliStatus Restore(Context& ctx, const BackupArgs& a) {
  CLI_ASSIGN_OR_RETURN(Json body, BuildRestoreBody(a));
  CLI_ASSIGN_OR_RETURN(std::string point, RecoveryPointPath(ctx, a));
  return RunJob(ctx, a, point + "/restore", body);
}

// ---- Files -----------------------------------------------------------------------------------

// POSTs a synchronous recovery point action; also follows an operation if the server starts one.
CliResult<Json> PointAction(Context& ctx, const BackupArgs& a, const std::string& action,
                            const Json& body, bool* pending) {
  CLI_ASSIGN_OR_RETURN(std::string point, RecoveryPointPath(ctx, a));
  CLI_ASSIGN_OR_RETURN(Context::WriteOutcome outcome,
                       ctx.Write("POST", point + "/" + action, &body));
  *pending = outcome.pending;
  if (outcome.operation.has_value()) return ActionResult(outcome);
  return outcome.response.body;
}

CliStatus FilesList(Context& ctx, const BackupArgs& a) {
  Json body = {{"disk", a.disk}, {"path", a.dir}};
  bool pending = false;
  CLI_ASSIGN_OR_RETURN(Json result, PointAction(ctx, a, "listFiles", body, &pending));
  if (pending) return CliStatus::Ok();
  const Json* entries = JsonPath(result, "entries");
  std::vector<Json> rows;
  if (entries != nullptr && entries->is_array()) rows.assign(entries->begin(), entries->end());
  PrintMany(ctx.out(), ctx.format(), FileEntryTable(), rows);
  return CliStatus::Ok();
}

// Where the file at `remote` (an absolute path in the guest) goes under `dir`: dir + remote, as
// tar and restic restore do. A path that would leave `dir` ("..") is refused.
CliResult<std::string> LocalPathFor(const std::string& dir, const std::string& remote) {
  std::string out = dir;
  size_t pos = 0;
  int parts = 0;
  while (pos <= remote.size()) {
    size_t end = remote.find('/', pos);
    if (end == std::string::npos) end = remote.size();
    std::string part = remote.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..")
      return CliError(ExitCode::kUnavailable, "InvalidResponse",
                      "extractFiles returned the path '" + remote +
                          "', which would be written outside --to; nothing more was written.");
    out = JoinPath(out, part);
    ++parts;
  }
  if (parts == 0)
    return CliError(ExitCode::kUnavailable, "InvalidResponse",
                    "extractFiles returned a file without a path ('" + remote + "').");
  return out;
}

CliStatus FilesExtract(Context& ctx, const BackupArgs& a) {
  Json body = {{"disk", a.disk}, {"paths", StringList(a.paths)}};
  bool pending = false;
  CLI_ASSIGN_OR_RETURN(Json result, PointAction(ctx, a, "extractFiles", body, &pending));
  if (pending) return CliStatus::Ok();
  const Json* files = JsonPath(result, "files");
  std::vector<Json> written;
  if (files != nullptr && files->is_array()) {
    for (const Json& file : *files) {
      std::string remote = Str(file, "path");
      CLI_ASSIGN_OR_RETURN(std::string local, LocalPathFor(a.to, remote));
      auto data = Base64Decode(Str(file, "contentBase64"));
      if (!data.ok())
        return CliError(ExitCode::kUnavailable, "InvalidResponse",
                        "extractFiles returned contentBase64 that is not base64.");
      size_t slash = local.find_last_of('/');
      if (slash != std::string::npos && slash > 0) {
        Status made = MakeDirs(local.substr(0, slash));
        if (!made.ok()) return LocalError(made);
      }
      // 0600: the guest's permissions are not known; never make a restored file wider.
      Status wrote = WriteFileAtomic(local, *data, 0600);
      if (!wrote.ok()) return LocalError(wrote);
      written.push_back(
          {{"path", remote}, {"size", static_cast<int64_t>(data->size())}, {"localPath", local}});
    }
  }
  PrintMany(ctx.out(), ctx.format(), ExtractedFileTable(), written);
  return CliStatus::Ok();
}

// ---- Registration ----------------------------------------------------------------------------

using Fn = CliStatus (*)(Context&, const BackupArgs&);

// Adds a leaf with -g (required) whose action is `fn(ctx, args)`.
std::shared_ptr<BackupArgs> AddLeaf(CLI::App* noun, Action* selected, const std::string& name,
                                    const std::string& description, Fn fn, CLI::App** out) {
  auto args = std::make_shared<BackupArgs>();
  CLI::App* cmd = noun->add_subcommand(name, description);
  cmd->add_option("-g,--resource-group", args->group, "Resource group")->required();
  SetAction(cmd, selected, [args, fn](Context& ctx) { return fn(ctx, *args); });
  *out = cmd;
  return args;
}

// A leaf acting inside a vault: -g and --vault.
std::shared_ptr<BackupArgs> AddVaultLeaf(CLI::App* noun, Action* selected, const std::string& name,
                                         const std::string& description, Fn fn, CLI::App** out) {
  auto args = AddLeaf(noun, selected, name, description, fn, out);
  (*out)->add_option("--vault", args->vault, "Backup vault name")->required();
  return args;
}

void RegisterVault(CLI::App* backup, Action* selected) {
  CLI::App* vault = AddNoun(*backup, "vault", "Manage backup vaults");
  CLI::App* cmd = nullptr;
  auto vault_name = [](CLI::App* c, BackupArgs& a) {
    c->add_option("-n,--name,--vault", a.vault, "Vault name")->required();
  };

  auto create = AddLeaf(vault, selected, "create", "Create a backup vault", VaultCreate, &cmd);
  vault_name(cmd, *create);
  cmd->add_option("--key-source", create->key_source,
                  "Platform (default) or Customer (master key wrapped under a passphrase)")
      ->transform(CLI::IsMember({"Platform", "Customer"}, CLI::ignore_case));
  cmd->add_option("--passphrase-file", create->passphrase_file,
                  "File holding the customer passphrase (implies --key-source Customer)");
  cmd->add_option("--webhook", create->webhooks, "URL POSTed to when a job fails (repeatable)");
  cmd->add_option("-l,--location", create->location, "Location (default: the region's)");
  cmd->add_option("--tags", create->tags, "Tags: key=value ...");
  auto redundancy_options = [](CLI::App* c, BackupArgs& a) {
    c->add_option("--redundancy", a.redundancy,
                  "Local (default) or Copy (a second, complete vault in --copy-location, kept up "
                  "to date after every backup)")
        ->transform(CLI::IsMember({"Local", "Copy"}, CLI::ignore_case));
    c->add_option("--copy-location", a.copy_location,
                  "Absolute directory of the copy, ideally on another disk (implies Copy)");
  };
  redundancy_options(cmd, *create);

  auto update = AddLeaf(vault, selected, "update",
                        "Change a vault's redundancy, webhooks or tags (switching to Copy copies "
                        "the existing recovery points)",
                        VaultUpdate, &cmd);
  vault_name(cmd, *update);
  redundancy_options(cmd, *update);
  cmd->add_option("--webhook", update->webhooks, "URL POSTed to when a job fails (repeatable)");
  cmd->add_option("--tags", update->tags, "Tags: key=value ... (replace the current ones)");

  auto copy = AddLeaf(vault, selected, "copy",
                      "Bring the copy of a vault with redundancy Copy up to date now", VaultCopy,
                      &cmd);
  vault_name(cmd, *copy);

  auto show = AddLeaf(
      vault, selected, "show", "Show a vault",
      [](Context& ctx, const BackupArgs& a) { return ctx.Show(VaultPath(ctx, a), VaultTable()); },
      &cmd);
  vault_name(cmd, *show);

  AddLeaf(
      vault, selected, "list", "List the vaults of a resource group",
      [](Context& ctx, const BackupArgs& a) { return ctx.List(VaultsPath(ctx, a), VaultTable()); },
      &cmd);

  auto del = AddLeaf(
      vault, selected, "delete", "Delete a vault (it must have no protected items)",
      [](Context& ctx, const BackupArgs& a) -> CliStatus {
        CLI_RETURN_IF_ERROR(ctx.Write("DELETE", VaultPath(ctx, a), nullptr));
        return CliStatus::Ok();
      },
      &cmd);
  vault_name(cmd, *del);
  cmd->add_flag("-y,--yes", del->yes, "Accepted for az compatibility; nothing is asked");

  auto unlock =
      AddLeaf(vault, selected, "unlock", "Unlock a customer-key vault after a restart of stratusd",
              VaultUnlock, &cmd);
  vault_name(cmd, *unlock);
  cmd->add_option("--passphrase-file", unlock->passphrase_file,
                  "File holding the customer passphrase")
      ->required();

  auto verify = AddLeaf(vault, selected, "verify",
                        "Check every chunk of a vault (or of one recovery point); exit 7 when "
                        "problems are found",
                        VaultVerify, &cmd);
  vault_name(cmd, *verify);
  cmd->add_option("--recovery-point", verify->recovery_point, "Only this recovery point");

  auto gc = AddLeaf(vault, selected, "gc", "Delete the chunks no recovery point references",
                    VaultGc, &cmd);
  vault_name(cmd, *gc);
}

void RegisterPolicy(CLI::App* backup, Action* selected) {
  CLI::App* policy = AddNoun(*backup, "policy", "Manage backup policies (schedule, retention)");
  CLI::App* cmd = nullptr;

  for (bool update : {false, true}) {
    auto a =
        AddVaultLeaf(policy, selected, update ? "update" : "create",
                     update ? "Change a policy: --policy replaces it, flags change what they name"
                            : "Create (or replace) a policy",
                     update ? PolicyUpdate : PolicyCreate, &cmd);
    cmd->add_option("-n,--name", a->name, "Policy name")->required();
    cmd->add_option("--policy", a->policy_json,
                    "The policy's properties: @FILE.json or inline JSON "
                    "(format: src/recovery/policy/backup_policy.h)");
    cmd->add_option("--daily", a->daily, "Daily schedule: local times, e.g. 02:00,14:00")
        ->delimiter(',');
    cmd->add_option("--hourly", a->hourly, "Hourly schedule: hours between backups (divides 24)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--window-start", a->window_start, "Hourly: window start, HH:MM");
    cmd->add_option("--window-hours", a->window_hours, "Hourly: window length in hours")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--weekly", a->weekly, "Weekly schedule: days, e.g. Sunday,Wednesday")
        ->delimiter(',');
    cmd->add_option("--at", a->at, "Weekly: local times, e.g. 02:00")->delimiter(',');
    cmd->add_option("--keep-hourly", a->keep_hourly, "Keep the last N hourly points")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--keep-daily", a->keep_daily, "Keep the last N daily points")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--keep-weekly", a->keep_weekly,
                    "Keep N weekly points (default day: Sunday, or the first --weekly day)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--keep-monthly", a->keep_monthly,
                    "Keep N monthly points (default day: the 1st, or the first --weekly day)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--keep-yearly", a->keep_yearly, "Keep N yearly points (January)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--time-zone", a->time_zone, "UTC or a fixed offset such as +02:00");
    cmd->add_option("--on-demand-days", a->on_demand_days,
                    "Days an on-demand (backup now) point is kept")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--consistency", a->consistency, "Consistency each backup asks for")
        ->transform(
            CLI::IsMember({"ApplicationConsistent", "FileSystemConsistent", "CrashConsistent"},
                          CLI::ignore_case));
  }

  auto show = AddVaultLeaf(
      policy, selected, "show", "Show a policy",
      [](Context& ctx, const BackupArgs& a) -> CliStatus {
        CLI_ASSIGN_OR_RETURN(std::string path, PolicyPath(ctx, a));
        return ctx.Show(path, PolicyTable());
      },
      &cmd);
  cmd->add_option("-n,--name", show->name, "Policy name")->required();

  AddVaultLeaf(
      policy, selected, "list", "List the policies of a vault",
      [](Context& ctx, const BackupArgs& a) {
        return ctx.List(VaultPath(ctx, a) + "/backupPolicies", PolicyTable());
      },
      &cmd);

  auto del = AddVaultLeaf(
      policy, selected, "delete", "Delete a policy (no item may use it)",
      [](Context& ctx, const BackupArgs& a) -> CliStatus {
        CLI_ASSIGN_OR_RETURN(std::string path, PolicyPath(ctx, a));
        CLI_RETURN_IF_ERROR(ctx.Write("DELETE", path, nullptr));
        return CliStatus::Ok();
      },
      &cmd);
  cmd->add_option("-n,--name", del->name, "Policy name")->required();
  cmd->add_flag("-y,--yes", del->yes, "Accepted for az compatibility; nothing is asked");
}

void RegisterProtection(CLI::App* backup, Action* selected) {
  CLI::App* protection = AddNoun(*backup, "protection", "Protect VMs with a backup policy");
  CLI::App* cmd = nullptr;

  auto enable =
      AddVaultLeaf(protection, selected, "enable", "Start backing up a VM", ProtectionEnable, &cmd);
  cmd->add_option("--vm", enable->vm, "VM name (in -g) or id")->required();
  cmd->add_option("--policy", enable->policy, "Backup policy name (in --vault) or id")->required();
  cmd->add_option("-n,--name,--item", enable->name, "Protected item name (default: the VM name)");

  auto item_options = [](CLI::App* c, BackupArgs& a) {
    c->add_option("-n,--name,--item", a.name, "Protected item name");
    c->add_option("--vm", a.vm, "The VM (its name is the item name)");
  };
  auto disable = AddVaultLeaf(protection, selected, "disable",
                              "Stop backing up a VM (its points are kept unless "
                              "--delete-backup-data)",
                              ProtectionDisable, &cmd);
  item_options(cmd, *disable);
  cmd->add_flag("--delete-backup-data", disable->delete_backup_data,
                "Also delete the item's recovery points");

  auto show = AddVaultLeaf(
      protection, selected, "show", "Show a protected item",
      [](Context& ctx, const BackupArgs& a) -> CliStatus {
        CLI_ASSIGN_OR_RETURN(std::string path, ExistingItemPath(ctx, a));
        return ctx.Show(path, ProtectedItemTable());
      },
      &cmd);
  item_options(cmd, *show);

  AddVaultLeaf(
      protection, selected, "list", "List the protected items of a vault",
      [](Context& ctx, const BackupArgs& a) {
        return ctx.List(ItemsPath(ctx, a), ProtectedItemTable());
      },
      &cmd);
}

void RegisterRecoveryPoints(CLI::App* backup, Action* selected) {
  CLI::App* rp = AddNoun(*backup, "recoverypoint", "List and inspect recovery points");
  CLI::App* cmd = nullptr;

  auto list = AddVaultLeaf(
      rp, selected, "list", "List the recovery points of a protected item",
      [](Context& ctx, const BackupArgs& a) -> CliStatus {
        CLI_ASSIGN_OR_RETURN(std::string item, ItemPath(ctx, a));
        return ctx.List(item + "/recoveryPoints", RecoveryPointTable());
      },
      &cmd);
  cmd->add_option("--item", list->name, "Protected item name")->required();

  auto show = AddVaultLeaf(
      rp, selected, "show", "Show a recovery point",
      [](Context& ctx, const BackupArgs& a) -> CliStatus {
        CLI_ASSIGN_OR_RETURN(std::string path, RecoveryPointPath(ctx, a));
        return ctx.Show(path, RecoveryPointTable());
      },
      &cmd);
  cmd->add_option("--item", show->name, "Protected item name")->required();
  cmd->add_option("-n,--name,--recovery-point", show->recovery_point, "Recovery point id")
      ->required();
}

void RegisterFiles(CLI::App* backup, Action* selected) {
  CLI::App* files = AddNoun(*backup, "files", "Browse and extract files of a recovery point");
  CLI::App* cmd = nullptr;
  auto common = [](CLI::App* c, BackupArgs& a) {
    c->add_option("--item", a.name, "Protected item name")->required();
    c->add_option("--recovery-point", a.recovery_point, "Recovery point id")->required();
    c->add_option("--disk", a.disk, "Disk of the point: osdisk, lun0, ...")->required();
  };

  auto list = AddVaultLeaf(files, selected, "list", "List a directory", FilesList, &cmd);
  common(cmd, *list);
  cmd->add_option("--path", list->dir, "Directory")->capture_default_str();

  auto extract =
      AddVaultLeaf(files, selected, "extract", "Copy files out of a recovery point (to DIR/<path>)",
                   FilesExtract, &cmd);
  common(cmd, *extract);
  cmd->add_option("--path", extract->paths, "File or directory to extract (repeatable)")
      ->required();
  cmd->add_option("--to", extract->to, "Local directory to write into")->required();
}

void RegisterJobs(CLI::App* backup, Action* selected) {
  CLI::App* job = AddNoun(*backup, "job", "Inspect backup and restore jobs");
  CLI::App* cmd = nullptr;
  AddVaultLeaf(
      job, selected, "list", "List the jobs of a vault, newest first",
      [](Context& ctx, const BackupArgs& a) {
        return ctx.List(VaultPath(ctx, a) + "/backupJobs", JobListTable());
      },
      &cmd);
  auto show = AddVaultLeaf(
      job, selected, "show", "Show a job",
      [](Context& ctx, const BackupArgs& a) -> CliStatus {
        CLI_ASSIGN_OR_RETURN(std::string path,
                             ChildPath(VaultPath(ctx, a), "backupJobs", a.name, "--name"));
        return ctx.Show(path, JobTable());
      },
      &cmd);
  cmd->add_option("-n,--name,--id", show->name, "Job id")->required();
}

}  // namespace

void RegisterBackupCommands(CLI::App& root, Action* selected) {
  CLI::App* backup = AddNoun(root, "backup", "Back up and restore VMs (Stratus.RecoveryServices)");
  CLI::App* cmd = nullptr;
  RegisterVault(backup, selected);
  RegisterPolicy(backup, selected);
  RegisterProtection(backup, selected);

  auto now = AddVaultLeaf(backup, selected, "now",
                          "Back up a protected item now; waits for the job unless --no-wait",
                          BackupNow, &cmd);
  cmd->add_option("--item", now->name, "Protected item name")->required();
  cmd->add_option("--retain-until", now->retain_until,
                  "Keep this point until (ISO time; default: the policy's on-demand days)");

  auto restore =
      AddVaultLeaf(backup, selected, "restore",
                   "Restore a recovery point as a new VM, as disks, or over the VM", Restore, &cmd);
  cmd->add_option("--item", restore->name, "Protected item name")->required();
  cmd->add_option("--recovery-point", restore->recovery_point, "Recovery point id")->required();
  cmd->add_option("--as-new-vm", restore->as_new_vm, "Restore as a new VM with this name");
  cmd->add_option("--size", restore->vm_size, "--as-new-vm: VM size (default: the source's)");
  cmd->add_option("--disks", restore->disks, "--as-new-vm: only these disks, e.g. osdisk,lun0")
      ->delimiter(',');
  cmd->add_option("--as-disks", restore->as_disks,
                  "Restore as managed disks whose names start with PREFIX");
  cmd->add_flag("--original", restore->original,
                "Replace the disks of the original VM with the point's");
  cmd->add_flag("--instant", restore->instant,
                "--as-new-vm: start the VM at once from the vault and fill its disks behind it");
  cmd->add_option("--target-group", restore->target_group,
                  "Resource group of the new VM or disks (default: the server's choice)");

  RegisterRecoveryPoints(backup, selected);
  RegisterFiles(backup, selected);
  RegisterJobs(backup, selected);
}

}  // namespace stratus::cli
