// stratus backup now, stratus backup restore, stratus backup job list|show: the leaves that run
// a backup or restore job, and the jobs they leave.
#include "cli/backup_common.h"
#include "cli/resolve.h"

namespace stratus::cli::backup {
namespace {

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

// The restored VM's networkProfile from --nics / --vnet --subnet ... / --no-nics; null when none
// of them is given (the server makes NICs like the point's).
CliResult<Json> RestoreNetworkProfile(Context& ctx, const BackupArgs& a) {
  const bool new_nic = !a.vnet.empty() || !a.subnet.empty();
  if (!new_nic && (!a.private_ip.empty() || !a.public_ip.empty() || !a.nsg.empty()))
    return UsageError("--private-ip-address, --public-ip-address and --nsg need --vnet and --subnet.",
                      "--vnet");
  if (a.no_nics && (new_nic || !a.nics.empty()))
    return UsageError("--no-nics does not go with --nics or --vnet.", "--no-nics");
  if (a.no_nics) return Json::object();
  if (!new_nic && a.nics.empty()) return Json(nullptr);
  if (new_nic && (a.vnet.empty() || a.subnet.empty()))
    return UsageError("--vnet and --subnet go together.", a.vnet.empty() ? "--vnet" : "--subnet");
  const std::string group = a.target_group.empty() ? a.group : a.target_group;
  const std::string net = GroupPath(ctx.subscription(), group) + "/providers/Stratus.Network/";
  Json profile = Json::object();
  if (new_nic) {
    Json ipc = {{"subnet", {{"id", net + "virtualNetworks/" + a.vnet + "/subnets/" + a.subnet}}}};
    if (!a.private_ip.empty()) ipc["privateIPAddress"] = a.private_ip;
    if (!a.public_ip.empty()) {
      // An existing public IP (by id, or by name in the group), else a new Static one.
      std::string pip =
          LooksLikeResourceId(a.public_ip) ? a.public_ip : net + "publicIPAddresses/" + a.public_ip;
      auto have = ctx.client().Get(pip);
      if (have.ok()) {
        ipc["publicIPAddress"] = {{"id", pip}};
      } else if (have.error().exit_code() == ExitCode::kNotFound && !LooksLikeResourceId(a.public_ip)) {
        ipc["publicIPAddressConfiguration"] = {{"name", a.public_ip},
                                               {"sku", {{"name", "Standard"}}}};
      } else {
        return have.error();
      }
    }
    Json props = {{"primary", true},
                  {"ipConfigurations", {{{"name", "ipconfig1"}, {"properties", ipc}}}}};
    if (!a.nsg.empty())
      props["networkSecurityGroup"] = {
          {"id", LooksLikeResourceId(a.nsg) ? a.nsg : net + "networkSecurityGroups/" + a.nsg}};
    profile["networkInterfaceConfigurations"] = {
        {{"name", a.as_new_vm + "-nic0"}, {"properties", props}}};
  }
  Json existing = Json::array();
  for (auto& n : a.nics)
    existing.push_back({{"id", LooksLikeResourceId(n) ? n : net + "networkInterfaces/" + n},
                        {"properties", {{"primary", !new_nic && existing.empty()}}}});
  if (!existing.empty()) profile["networkInterfaces"] = existing;
  return profile;
}

CliResult<Json> BuildRestoreBody(Context& ctx, const BackupArgs& a) {
  int modes = (a.as_new_vm.empty() ? 0 : 1) + (a.as_disks.empty() ? 0 : 1) + (a.original ? 1 : 0);
  if (modes != 1)
    return UsageError("Give exactly one of --as-new-vm NAME, --as-disks PREFIX, --original.",
                      "--as-new-vm");
  if (a.as_new_vm.empty() && (!a.vm_size.empty() || !a.disks.empty()))
    return UsageError("--size and --disks go with --as-new-vm.", "--size");
  if (a.as_new_vm.empty() && (!a.nics.empty() || !a.vnet.empty() || !a.subnet.empty() ||
                              !a.private_ip.empty() || !a.public_ip.empty() || !a.nsg.empty() ||
                              a.no_nics))
    return UsageError("--nics, --vnet, --subnet, --private-ip-address, --public-ip-address, --nsg "
                      "and --no-nics go with --as-new-vm.",
                      "--as-new-vm");
  if (a.as_new_vm.empty() && a.instant)
    return UsageError(
        "--instant goes with --as-new-vm (the new VM starts before its disks are "
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
    CLI_ASSIGN_OR_RETURN(Json profile, RestoreNetworkProfile(ctx, a));
    if (!profile.is_null()) body["networkProfile"] = profile;
  } else {
    body = {{"restoreType", "RestoreDisks"}, {"diskNamePrefix", a.as_disks}};
  }
  if (!a.target_group.empty()) body["targetResourceGroup"] = a.target_group;
  return body;
}

CliStatus Restore(Context& ctx, const BackupArgs& a) {
  CLI_ASSIGN_OR_RETURN(Json body, BuildRestoreBody(ctx, a));
  CLI_ASSIGN_OR_RETURN(std::string point, RecoveryPointPath(ctx, a));
  return RunJob(ctx, a, point + "/restore", body);
}

}  // namespace

void RegisterNow(CLI::App* backup, Action* selected) {
  CLI::App* cmd = nullptr;
  auto now = AddVaultLeaf(backup, selected, "now",
                          "Back up a protected item now; waits for the job unless --no-wait",
                          BackupNow, &cmd);
  cmd->add_option("--item", now->name, "Protected item name")->required();
  cmd->add_option("--retain-until", now->retain_until,
                  "Keep this point until (ISO time; default: the policy's on-demand days)");
}

void RegisterRestore(CLI::App* backup, Action* selected) {
  CLI::App* cmd = nullptr;
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
  cmd->add_option("--nics", restore->nics,
                  "--as-new-vm: existing NICs (names or ids; the first is primary unless --vnet)")
      ->delimiter(',');
  cmd->add_option("--vnet", restore->vnet, "--as-new-vm: a new NIC in this VNET (with --subnet)");
  cmd->add_option("--subnet", restore->subnet, "--as-new-vm: the new NIC's subnet");
  cmd->add_option("--private-ip-address", restore->private_ip,
                  "--vnet: the new NIC's static address (default: the next free one)");
  cmd->add_option("--public-ip-address", restore->public_ip,
                  "--vnet: a public IP for the new NIC (made Static if it does not exist)");
  cmd->add_option("--nsg", restore->nsg, "--vnet: the new NIC's security group");
  cmd->add_flag("--no-nics", restore->no_nics,
                "--as-new-vm: no NIC (default without --nics/--vnet: NICs like the point's)");
  cmd->add_option("--target-group", restore->target_group,
                  "Resource group of the new VM or disks (default: the server's choice)");
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

}  // namespace stratus::cli::backup
