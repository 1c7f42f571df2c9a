// stratus backup policy create|update|show|list|delete
#include "cli/backup_common.h"
#include "core/fs.h"
#include "core/resource_id.h"

namespace stratus::cli::backup {
namespace {

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

}  // namespace

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

}  // namespace stratus::cli::backup
