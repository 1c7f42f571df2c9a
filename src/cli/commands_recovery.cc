// stratus recovery pair token|create|list|show|check|delete (region pairing),
// stratus recovery replication enable|show|list|disable|failover|test-failover|test-cleanup|
// change-point|commit|reprotect|nic-show|nic-set, recovery network-mapping
// create|list|show|delete, recovery group list|show|delete|failover and recovery point
// list (replication into a vault of this region), and recovery plan create|list|show|
// test-failover|cleanup|failover|commit|reprotect|ack|delete — site recovery,
// docs/site-recovery.md.
#include <memory>

#include "cli/commands.h"
#include "cli/resolve.h"
#include "core/base64.h"
#include "core/fs.h"

namespace stratus::cli {
namespace {

struct PairArgs {
  std::string token;
  std::string peer;
  int expires_in_minutes = 60;
  int bandwidth_mbps = -1;
};

std::string ProviderPath(const Context& ctx) {
  return SubscriptionPath(ctx.subscription()) + "/providers/Stratus.RecoveryServices";
}
std::string PairingPath(const Context& ctx, const std::string& peer) {
  return ProviderPath(ctx) + "/regionPairings/" + peer;
}

const TableSpec& PairingTable() {
  static const TableSpec spec = {
      FieldColumn("PeerRegion", "name"),
      FieldColumn("Endpoint", "properties.peerEndpoint"),
      FieldColumn("InitiatedBy", "properties.initiatedBy"),
      FieldColumn("PairedOn", "properties.pairedOn"),
      FieldColumn("SendCapMbps", "properties.replicationBandwidthMbps"),
      {"PeerCertificate",
       [](const Json& row) {
         std::string fp = FormatCell(JsonPath(row, "properties.peerCertificateThumbprint"));
         return fp.size() > 16 ? fp.substr(0, 16) + "..." : fp;
       }},
  };
  return spec;
}

// The region a token names (the pairing's name), read from the token itself; "" if unreadable
// (the API then says what is wrong with it).
std::string RegionOfToken(const std::string& token) {
  if (token.rfind("SP1.", 0) != 0) return "";
  auto raw = Base64Decode(std::string_view(token).substr(4));
  if (!raw.ok()) return "";
  Json j = Json::parse(*raw, nullptr, false);
  return j.is_object() ? j.value("region", "") : "";
}

CliStatus Token(Context& ctx, const PairArgs& a) {
  Json body = {{"expiresInMinutes", a.expires_in_minutes}};
  CLI_ASSIGN_OR_RETURN(ApiResponse r,
                       ctx.client().Send("POST", ProviderPath(ctx) + "/generatePairingToken", &body));
  if (ctx.format() == OutputFormat::kJson) {
    ctx.out() << RenderJson(r.body) << "\n";
    return CliStatus::Ok();
  }
  // The token alone on stdout (for $(...)); what it is on stderr.
  ctx.err() << "Pairing token of region " << r.body.value("region", "") << " ("
            << r.body.value("peerEndpoint", "") << "), valid once until "
            << r.body.value("expiresOn", "") << ". Treat it as a password.\n";
  ctx.out() << r.body.value("token", "") << "\n";
  return CliStatus::Ok();
}

CliStatus Create(Context& ctx, const PairArgs& a) {
  std::string peer = a.peer.empty() ? RegionOfToken(a.token) : a.peer;
  if (peer.empty())
    return UsageError("--token is not a Stratus pairing token (SP1....); get one with "
                      "'stratus recovery pair token' in the peer region", "--token");
  Json body = {{"properties", {{"pairingToken", a.token}}}};
  CLI_ASSIGN_OR_RETURN(ApiResponse r, ctx.client().Send("PUT", PairingPath(ctx, peer), &body));
  PrintOne(ctx.out(), ctx.format(), PairingTable(), r.body);
  return CliStatus::Ok();
}

CliStatus Check(Context& ctx, const PairArgs& a) {
  CLI_ASSIGN_OR_RETURN(ApiResponse r, ctx.client().Send("POST", PairingPath(ctx, a.peer) +
                                                                    "/checkConnection"));
  static const TableSpec spec = {FieldColumn("PeerRegion", "peerRegion"),
                                 FieldColumn("Reachable", "reachable"),
                                 FieldColumn("RoundTripMs", "roundTripMs"),
                                 FieldColumn("Error", "error", true)};
  PrintOne(ctx.out(), ctx.format(), spec, r.body);
  if (!r.body.value("reachable", false))
    return CliError(ExitCode::kUnavailable, "PeerRegionUnreachable",
                    "region '" + a.peer + "' did not answer over the peer link");
  return CliStatus::Ok();
}

CliStatus Delete(Context& ctx, const PairArgs& a) {
  CLI_ASSIGN_OR_RETURN(ApiResponse r, ctx.client().Send("DELETE", PairingPath(ctx, a.peer)));
  if (r.body.is_object() && !r.body.value("peerNotified", true))
    ctx.err() << "warning: region '" << a.peer
              << "' was not reached; delete the pairing there too\n";
  return CliStatus::Ok();
}

// ---- replication

struct ReplArgs {
  std::string group, vault, name;
  std::string recovery_point, recovery_point_type, target_group, vm_name;
  std::string source_region, source_vm, consistency_group, target_vault, policy;
  int frequency = 30, retention_hours = 24, rpo_alert = 0, app_frequency = 60;
  bool planned = false, test = false;
};

std::string ItemsPath(const Context& ctx, const ReplArgs& a) {
  return GroupPath(ctx.subscription(), a.group) + "/providers/Stratus.RecoveryServices/vaults/" +
         a.vault + "/replicationProtectedItems";
}

std::string GroupsPath(const Context& ctx, const ReplArgs& a) {
  return GroupPath(ctx.subscription(), a.group) + "/providers/Stratus.RecoveryServices/vaults/" +
         a.vault + "/replicationConsistencyGroups";
}

const TableSpec& ConsistencyGroupTable() {
  static const TableSpec spec = {
      FieldColumn("Name", "name"),
      FieldColumn("Members", "properties.memberCount"),
      FieldColumn("State", "properties.protectionState"),
      FieldColumn("Health", "properties.replicationHealth"),
      FieldColumn("RpoSeconds", "properties.rpoInSeconds"),
      FieldColumn("BacklogBytes", "properties.backlogBytes"),
      FieldColumn("Points", "properties.recoveryPointCount"),
      FieldColumn("LastFreezeMs", "properties.lastFreezeMilliseconds"),
      FieldColumn("LastPoint", "properties.lastRecoveryPointTime"),
  };
  return spec;
}

const TableSpec& ReplicationTable() {
  static const TableSpec spec = {
      FieldColumn("Name", "name"),
      FieldColumn("SourceRegion", "properties.sourceRegion"),
      {"SourceVm", [](const Json& r) {
         return NameFromId(FormatCell(JsonPath(r, "properties.sourceVmId")));
       }},
      FieldColumn("Group", "properties.multiVmGroupName"),
      FieldColumn("State", "properties.protectionState"),
      FieldColumn("Health", "properties.replicationHealth"),
      FieldColumn("RpoSeconds", "properties.rpoInSeconds"),
      FieldColumn("BacklogBytes", "properties.backlogBytes"),
      FieldColumn("BytesPerSecond", "properties.transferBytesPerSecond"),
      FieldColumn("Points", "properties.recoveryPointCount"),
      FieldColumn("LastPoint", "properties.lastRecoveryPointTime"),
      FieldColumn("LastError", "properties.lastError.message", true),
  };
  return spec;
}

const TableSpec& ReplicationPointTable() {
  static const TableSpec spec = {
      FieldColumn("Name", "name"),
      FieldColumn("Time", "properties.recoveryPointTime"),
      FieldColumn("Type", "properties.recoveryPointType"),
      FieldColumn("BytesReceived", "properties.bytesReceived"),
  };
  return spec;
}

CliStatus Enable(Context& ctx, const ReplArgs& a) {
  if (a.source_vm.empty() || a.source_vm[0] != '/')
    return UsageError("--source-vm is the VM's id in the source region "
                      "(/subscriptions/.../virtualMachines/NAME; `stratus --region SRC vm show "
                      "-o json` prints it)", "--source-vm");
  Json policy = {{"crashConsistentFrequencyInSeconds", a.frequency},
                 {"appConsistentFrequencyInMinutes", a.app_frequency},
                 {"recoveryPointRetentionInHours", a.retention_hours}};
  if (a.rpo_alert > 0) policy["rpoAlertThresholdInSeconds"] = a.rpo_alert;
  Json body = {{"properties",
                {{"sourceRegion", a.source_region}, {"sourceVmId", a.source_vm}, {"policy", policy}}}};
  if (!a.policy.empty()) {  // the vault's named policy instead of the item's own
    body["properties"].erase("policy");
    body["properties"]["policyId"] = a.policy;
  }
  if (!a.consistency_group.empty()) body["properties"]["multiVmGroupName"] = a.consistency_group;
  std::string path = ItemsPath(ctx, a) + "/" + a.name;
  return ctx.WriteAndShow("PUT", path, &body, path, ReplicationTable());
}

// A failover (unplanned, planned or test) of an item (`group_of` false) or of a consistency
// group (unplanned or planned).
CliStatus Failover(Context& ctx, const ReplArgs& a, bool group_of = false) {
  Json body = Json::object();
  if (!a.recovery_point.empty()) body["recoveryPointName"] = a.recovery_point;
  if (!a.recovery_point_type.empty()) body["recoveryPointType"] = a.recovery_point_type;
  if (!a.target_group.empty()) body["targetResourceGroup"] = a.target_group;
  if (!a.vm_name.empty()) body["vmName"] = a.vm_name;
  if (a.planned && (!a.recovery_point.empty() || !a.recovery_point_type.empty()))
    return UsageError("a planned failover's point is the source's last cycle: drop "
                      "--recovery-point", "--recovery-point");
  std::string path = (group_of ? GroupsPath(ctx, a) : ItemsPath(ctx, a)) + "/" + a.name +
                     (a.test      ? "/testFailover"
                      : a.planned ? "/plannedFailover"
                                  : "/unplannedFailover");
  CLI_ASSIGN_OR_RETURN(auto outcome, ctx.Write("POST", path, &body));
  if (!outcome.operation) return CliStatus::Ok();  // --no-wait
  const Json& p = (*outcome.operation)["properties"];
  if (ctx.format() == OutputFormat::kJson) {
    ctx.out() << RenderJson(*outcome.operation) << "\n";
    return CliStatus::Ok();
  }
  static const TableSpec spec = {FieldColumn("Vm", "vmId"),
                                 FieldColumn("Type", "failoverType"),
                                 FieldColumn("RecoveryPointTime", "recoveryPointTime"),
                                 FieldColumn("StratusTimeMs", "stratusTimeMs")};
  static const TableSpec group_spec = {FieldColumn("Vms", "vms"),
                                       FieldColumn("Type", "failoverType"),
                                       FieldColumn("RecoveryPoint", "recoveryPointName"),
                                       FieldColumn("StratusTimeMs", "stratusTimeMs")};
  PrintOne(ctx.out(), ctx.format(), group_of ? group_spec : spec, p);
  // What of the VM's network differs from the source (an address taken, a NIC left out, ...).
  for (auto& note : p.value("networkNotes", Json::array()))
    if (note.is_string()) ctx.out() << "note: " << note.get<std::string>() << "\n";
  return CliStatus::Ok();
}

void AddItemOptions(CLI::App* cmd, ReplArgs& a, bool named) {
  cmd->add_option("-g,--resource-group", a.group, "Resource group of the vault")->required();
  cmd->add_option("--vault", a.vault, "Vault (in this region, the target)")->required();
  if (named) cmd->add_option("-n,--name", a.name, "Replicated item name")->required();
}

// ---- recovery plans

struct PlanArgs {
  std::string group, vault, name, file, vm_readiness, action_name, recovery_point_type;
  std::vector<std::string> groups;  // "item1,item2" per group, in order
  bool planned = false;             // failover: plannedFailover
};

std::string PlansPath(const Context& ctx, const PlanArgs& a) {
  return GroupPath(ctx.subscription(), a.group) + "/providers/Stratus.RecoveryServices/vaults/" +
         a.vault + "/replicationRecoveryPlans";
}

const TableSpec& PlanTable() {
  static const TableSpec spec = {
      FieldColumn("Name", "name"),
      {"Groups", [](const Json& r) {
         const Json* g = JsonPath(r, "properties.groups");
         return g && g->is_array() ? std::to_string(g->size()) : std::string();
       }},
      FieldColumn("LastRun", "properties.currentRun.type"),
      FieldColumn("State", "properties.currentRun.state"),
      FieldColumn("WaitingFor", "properties.currentRun.waitingFor"),
      FieldColumn("RtoMs", "properties.currentRun.rtoMs"),
      FieldColumn("StratusMs", "properties.currentRun.stratusTimeMs"),
  };
  return spec;
}

CliStatus CreatePlan(Context& ctx, const PlanArgs& a) {
  Json props = Json::object();
  if (!a.file.empty()) {
    auto text = ReadFile(a.file);
    if (!text.ok())
      return CliError(ExitCode::kLocalError, "FileNotFound",
                      "Cannot read the --file '" + a.file + "'.", "--file");
    Json doc = Json::parse(*text, nullptr, false);
    if (!doc.is_object()) return UsageError("--file must hold a JSON object", "--file");
    props = doc.contains("properties") ? doc["properties"] : doc;
  }
  if (!a.groups.empty()) {
    Json groups = Json::array();
    for (auto& g : a.groups) {
      Json items = Json::array();
      size_t from = 0;
      while (from <= g.size()) {
        size_t comma = g.find(',', from);
        std::string item = g.substr(from, comma == std::string::npos ? std::string::npos : comma - from);
        if (!item.empty())
          items.push_back(item[0] == '/' ? item
                                         : GroupPath(ctx.subscription(), a.group) +
                                               "/providers/Stratus.RecoveryServices/vaults/" +
                                               a.vault + "/replicationProtectedItems/" + item);
        if (comma == std::string::npos) break;
        from = comma + 1;
      }
      groups.push_back({{"replicationProtectedItems", items}});
    }
    props["groups"] = groups;
  }
  if (!a.vm_readiness.empty()) props["vmReadiness"] = a.vm_readiness;
  if (!props.contains("groups"))
    return UsageError("give the groups: --group ITEM[,ITEM...] (once per group, in order) or "
                      "--file", "--group");
  Json body = {{"properties", props}};
  std::string path = PlansPath(ctx, a) + "/" + a.name;
  return ctx.WriteAndShow("PUT", path, &body, path, PlanTable());
}

// Runs `action` of the plan (a failover kind) and prints its steps.
CliStatus RunPlanAction(Context& ctx, const PlanArgs& a, std::string action) {
  if (a.planned && !a.recovery_point_type.empty())
    return UsageError(
        "a planned failover's points are the source's last cycles: drop "
        "--recovery-point-type",
        "--recovery-point-type");
  if (a.planned) action = "plannedFailover";
  Json body = Json::object();
  if (!a.recovery_point_type.empty()) body["recoveryPointType"] = a.recovery_point_type;
  CLI_ASSIGN_OR_RETURN(auto outcome,
                       ctx.Write("POST", PlansPath(ctx, a) + "/" + a.name + "/" + action, &body));
  if (!outcome.operation) return CliStatus::Ok();  // --no-wait
  const Json& p = (*outcome.operation)["properties"];
  if (ctx.format() == OutputFormat::kJson) {
    ctx.out() << RenderJson(*outcome.operation) << "\n";
    return CliStatus::Ok();
  }
  if (action == "commit" || action == "reprotect") {
    for (auto& item : p.value("items", Json::array()))
      ctx.out() << item.get<std::string>() << ": " << (action == "commit" ? "committed" : "reprotected")
                << "\n";
    return CliStatus::Ok();
  }
  static const TableSpec steps = {FieldColumn("Step", "name"), FieldColumn("State", "state"),
                                  FieldColumn("Start", "startTime"), FieldColumn("Ms", "durationMs"),
                                  FieldColumn("Error", "error")};
  std::vector<Json> rows;
  for (auto& st : p.value("steps", Json::array())) rows.push_back(st);
  ctx.out() << RenderTable(steps, rows);
  ctx.out() << "RTO " << p.value("rtoMs", 0) << " ms = Stratus " << p.value("stratusTimeMs", 0)
            << " ms + guest boot " << p.value("guestBootWaitMs", 0) << " ms + manual steps "
            << p.value("manualWaitMs", 0) << " ms\n";
  return CliStatus::Ok();
}

void AddPlanOptions(CLI::App* cmd, PlanArgs& a, bool named = true) {
  cmd->add_option("-g,--resource-group", a.group, "Resource group of the vault")->required();
  cmd->add_option("--vault", a.vault, "Vault (in this region, the target)")->required();
  if (named) cmd->add_option("-n,--name", a.name, "Recovery plan name")->required();
}

}  // namespace

void RegisterRecoveryCommands(CLI::App& root, Action* selected) {
  CLI::App* recovery = AddNoun(root, "recovery", "Site recovery: pair regions, replicate VMs");
  CLI::App* pair = AddNoun(*recovery, "pair", "Pair this region with another (the peer link)");

  auto token_args = std::make_shared<PairArgs>();
  CLI::App* token = pair->add_subcommand(
      "token", "Make a one-time pairing token in this region, for the region that will pair");
  token->add_option("--expires-in-minutes", token_args->expires_in_minutes,
                    "Minutes the token is valid (1-1440)")
      ->capture_default_str();
  SetAction(token, selected, [token_args](Context& ctx) { return Token(ctx, *token_args); });

  auto create_args = std::make_shared<PairArgs>();
  CLI::App* create = pair->add_subcommand(
      "create", "Pair this region with the region whose token this is (both record it)");
  create->add_option("--token", create_args->token, "The token from the peer region")
      ->required();
  create->add_option("--peer", create_args->peer,
                     "The peer region's name (default: the one the token names)");
  SetAction(create, selected, [create_args](Context& ctx) { return Create(ctx, *create_args); });

  CLI::App* list = pair->add_subcommand("list", "List this region's pairings");
  SetAction(list, selected, [](Context& ctx) {
    return ctx.List(ProviderPath(ctx) + "/regionPairings", PairingTable());
  });

  auto show_args = std::make_shared<PairArgs>();
  CLI::App* show = pair->add_subcommand("show", "Show the pairing with a region");
  show->add_option("--peer", show_args->peer, "Peer region name")->required();
  SetAction(show, selected, [show_args](Context& ctx) {
    return ctx.Show(PairingPath(ctx, show_args->peer), PairingTable());
  });

  auto check_args = std::make_shared<PairArgs>();
  CLI::App* check = pair->add_subcommand("check", "Call the peer region over the peer link");
  check->add_option("--peer", check_args->peer, "Peer region name")->required();
  SetAction(check, selected, [check_args](Context& ctx) { return Check(ctx, *check_args); });

  auto set_args = std::make_shared<PairArgs>();
  CLI::App* set = pair->add_subcommand(
      "set", "Change this region's side of a pairing (what it sends to the peer)");
  set->add_option("--peer", set_args->peer, "Peer region name")->required();
  set->add_option("--replication-bandwidth-mbps", set_args->bandwidth_mbps,
                  "Cap on replication traffic to the peer, Mbit/s (0: none)")
      ->required();
  SetAction(set, selected, [set_args](Context& ctx) {
    Json body = {{"properties", {{"replicationBandwidthMbps", set_args->bandwidth_mbps}}}};
    std::string path = PairingPath(ctx, set_args->peer);
    return ctx.WriteAndShow("PATCH", path, &body, path, PairingTable());
  });

  auto delete_args = std::make_shared<PairArgs>();
  CLI::App* del = pair->add_subcommand(
      "delete", "End the pairing here (and in the peer region when it answers)");
  del->add_option("--peer", delete_args->peer, "Peer region name")->required();
  SetAction(del, selected, [delete_args](Context& ctx) { return Delete(ctx, *delete_args); });

  CLI::App* repl = AddNoun(*recovery, "replication",
                           "Replicate VMs of a paired region into a vault of this region");
  auto enable_args = std::make_shared<ReplArgs>();
  CLI::App* enable = repl->add_subcommand(
      "enable", "Replicate a VM of a paired region here (run in the target region)");
  AddItemOptions(enable, *enable_args, true);
  enable->add_option("--source-region", enable_args->source_region, "The paired region the VM runs in")
      ->required();
  enable->add_option("--source-vm", enable_args->source_vm, "The VM's id in the source region")
      ->required();
  CLI::Option* own[4];
  own[0] = enable
               ->add_option("--frequency", enable_args->frequency,
                            "Seconds between crash-consistent points (5-3600)")
               ->capture_default_str();
  own[1] = enable
               ->add_option("--app-frequency", enable_args->app_frequency,
                            "Minutes between application-consistent points (guest hooks and "
                            "a file system freeze; 0 = none, up to 720)")
               ->capture_default_str();
  own[2] = enable
               ->add_option("--retention-hours", enable_args->retention_hours,
                            "Hours points are kept (1-168)")
               ->capture_default_str();
  enable->add_option("--consistency-group", enable_args->consistency_group,
                     "Replicate with the group's other VMs at one instant (made if new)");
  own[3] = enable->add_option("--rpo-alert", enable_args->rpo_alert,
                              "RPO (s) above which the item is Critical (default max(60, 4 x "
                              "frequency))");
  CLI::Option* named = enable->add_option(
      "--policy", enable_args->policy,
      "A replication policy of the vault (name or id) instead of the settings above");
  for (CLI::Option* o : own) named->excludes(o);
  SetAction(enable, selected, [enable_args](Context& ctx) { return Enable(ctx, *enable_args); });

  auto rshow_args = std::make_shared<ReplArgs>();
  CLI::App* rshow = repl->add_subcommand("show", "Show a replicated item with its live RPO");
  AddItemOptions(rshow, *rshow_args, true);
  SetAction(rshow, selected, [rshow_args](Context& ctx) {
    return ctx.Show(ItemsPath(ctx, *rshow_args) + "/" + rshow_args->name, ReplicationTable());
  });

  auto rlist_args = std::make_shared<ReplArgs>();
  CLI::App* rlist = repl->add_subcommand("list", "List a vault's replicated items");
  AddItemOptions(rlist, *rlist_args, false);
  SetAction(rlist, selected, [rlist_args](Context& ctx) {
    return ctx.List(ItemsPath(ctx, *rlist_args), ReplicationTable());
  });

  auto disable_args = std::make_shared<ReplArgs>();
  CLI::App* disable = repl->add_subcommand(
      "disable", "Stop replicating (the source stops; this region's replicas and points go)");
  AddItemOptions(disable, *disable_args, true);
  SetAction(disable, selected, [disable_args](Context& ctx) -> CliStatus {
    std::string path = ItemsPath(ctx, *disable_args) + "/" + disable_args->name;
    CLI_RETURN_IF_ERROR(ctx.Write("DELETE", path, nullptr));
    return CliStatus::Ok();
  });

  auto fo_args = std::make_shared<ReplArgs>();
  CLI::App* fo = repl->add_subcommand(
      "failover",
      "Fail over: make the VM here from a point without the source region (unplanned), or "
      "--planned: shut it down in the source, send a last cycle, nothing lost");
  AddItemOptions(fo, *fo_args, true);
  fo->add_flag("--planned", fo_args->planned,
               "Planned failover (the source region must answer; the VM stops there)");
  fo->add_option("--recovery-point", fo_args->recovery_point, "Point name (default: the newest)");
  fo->add_option("--recovery-point-type", fo_args->recovery_point_type,
                 "Latest (default) or LatestApplicationConsistent")
      ->check(CLI::IsMember({"Latest", "LatestApplicationConsistent"}));
  fo->add_option("--target-group", fo_args->target_group,
                 "Resource group of the VM (default: the vault's)");
  fo->add_option("--vm-name", fo_args->vm_name, "Name of the VM (default: the source VM's)");
  SetAction(fo, selected, [fo_args](Context& ctx) { return Failover(ctx, *fo_args); });

  auto tfo_args = std::make_shared<ReplArgs>();
  tfo_args->test = true;
  CLI::App* tfo = repl->add_subcommand(
      "test-failover",
      "A drill: the VM from copy-on-write clones of a point (named <vm>-test, its NICs in the "
      "test networks: isolated copies of the source's unless mapped), while replication goes on");
  AddItemOptions(tfo, *tfo_args, true);
  tfo->add_option("--recovery-point", tfo_args->recovery_point, "Point name (default: the newest)");
  tfo->add_option("--recovery-point-type", tfo_args->recovery_point_type,
                  "Latest (default) or LatestApplicationConsistent")
      ->check(CLI::IsMember({"Latest", "LatestApplicationConsistent"}));
  tfo->add_option("--target-group", tfo_args->target_group,
                  "Resource group of the test VM (default: the vault's)");
  tfo->add_option("--vm-name", tfo_args->vm_name, "Name of the test VM (default: <source VM>-test)");
  SetAction(tfo, selected, [tfo_args](Context& ctx) { return Failover(ctx, *tfo_args); });

  auto tcl_args = std::make_shared<ReplArgs>();
  CLI::App* tcl = repl->add_subcommand("test-cleanup",
                                       "End the drill: the test VM, its disks and NICs, and the isolated networks go");
  AddItemOptions(tcl, *tcl_args, true);
  SetAction(tcl, selected, [tcl_args](Context& ctx) -> CliStatus {
    Json body = Json::object();
    CLI_RETURN_IF_ERROR(ctx.Write("POST", ItemsPath(ctx, *tcl_args) + "/" + tcl_args->name +
                                              "/testFailoverCleanup",
                                  &body));
    return CliStatus::Ok();
  });

  auto rp_args = std::make_shared<ReplArgs>();
  CLI::App* rp = repl->add_subcommand(
      "reprotect",
      "After a failover: replicate the VM back to the source region onto its old copy, sending "
      "only the blocks that differ (the old VM there is stopped and held)");
  AddItemOptions(rp, *rp_args, true);
  rp->add_option("--target-vault", rp_args->target_vault,
                 "Vault in the source region for the reverse item (default: this vault's name)");
  rp->add_option("--target-group", rp_args->target_group,
                 "Its resource group there (default: the original VM's)");
  SetAction(rp, selected, [rp_args](Context& ctx) -> CliStatus {
    Json body = Json::object();
    if (!rp_args->target_vault.empty()) body["targetVaultName"] = rp_args->target_vault;
    if (!rp_args->target_group.empty()) body["targetResourceGroup"] = rp_args->target_group;
    CLI_ASSIGN_OR_RETURN(auto outcome, ctx.Write("POST", ItemsPath(ctx, *rp_args) + "/" +
                                                             rp_args->name + "/reprotect",
                                                 &body));
    if (!outcome.operation) return CliStatus::Ok();  // --no-wait
    const Json& p = (*outcome.operation)["properties"];
    if (ctx.format() == OutputFormat::kJson) {
      ctx.out() << RenderJson(*outcome.operation) << "\n";
      return CliStatus::Ok();
    }
    static const TableSpec spec = {FieldColumn("ReverseItem", "reverseItemId"),
                                   FieldColumn("Incremental", "incremental"),
                                   FieldColumn("BytesChanged", "bytesChanged"),
                                   FieldColumn("BytesSent", "bytesSent"),
                                   FieldColumn("DurationMs", "durationMs")};
    PrintOne(ctx.out(), ctx.format(), spec, p);
    return CliStatus::Ok();
  });

  auto cp_args = std::make_shared<ReplArgs>();
  CLI::App* cp = repl->add_subcommand(
      "change-point",
      "Before commit: the failed-over VM restarts from another point (its writes since go)");
  AddItemOptions(cp, *cp_args, true);
  cp->add_option("--recovery-point", cp_args->recovery_point, "Point name")->required();
  SetAction(cp, selected, [cp_args](Context& ctx) -> CliStatus {
    Json body = {{"recoveryPointName", cp_args->recovery_point}};
    CLI_RETURN_IF_ERROR(ctx.Write("POST", ItemsPath(ctx, *cp_args) + "/" + cp_args->name +
                                              "/changeRecoveryPoint",
                                  &body));
    return CliStatus::Ok();
  });
  auto cm_args = std::make_shared<ReplArgs>();
  CLI::App* cm = repl->add_subcommand("commit", "Make the failover's point final");
  AddItemOptions(cm, *cm_args, true);
  SetAction(cm, selected, [cm_args](Context& ctx) -> CliStatus {
    Json body = Json::object();
    CLI_RETURN_IF_ERROR(
        ctx.Write("POST", ItemsPath(ctx, *cm_args) + "/" + cm_args->name + "/commit", &body));
    return CliStatus::Ok();
  });

  CLI::App* point = AddNoun(*recovery, "point", "Recovery points of replicated items");
  auto plist_args = std::make_shared<ReplArgs>();
  CLI::App* plist = point->add_subcommand("list", "List a replicated item's points, oldest first");
  AddItemOptions(plist, *plist_args, false);
  auto* item_opt = plist->add_option("--item", plist_args->name, "Replicated item name");
  auto* group_opt = plist->add_option("--consistency-group", plist_args->consistency_group,
                                      "Consistency group name: the points every member has");
  item_opt->excludes(group_opt);
  SetAction(plist, selected, [plist_args](Context& ctx) -> CliStatus {
    if (!plist_args->consistency_group.empty())
      return ctx.List(GroupsPath(ctx, *plist_args) + "/" + plist_args->consistency_group +
                          "/recoveryPoints",
                      ReplicationPointTable());
    if (plist_args->name.empty())
      return UsageError("name the item (--item) or the group (--consistency-group)", "--item");
    return ctx.List(ItemsPath(ctx, *plist_args) + "/" + plist_args->name + "/recoveryPoints",
                    ReplicationPointTable());
  });

  CLI::App* group = AddNoun(*recovery, "group",
                            "Consistency groups: replicated VMs captured at one instant");
  auto glist_args = std::make_shared<ReplArgs>();
  CLI::App* glist = group->add_subcommand("list", "List a vault's consistency groups");
  AddItemOptions(glist, *glist_args, false);
  SetAction(glist, selected, [glist_args](Context& ctx) {
    return ctx.List(GroupsPath(ctx, *glist_args), ConsistencyGroupTable());
  });
  auto gshow_args = std::make_shared<ReplArgs>();
  CLI::App* gshow = group->add_subcommand(
      "show", "Show a group: members, live RPO (its newest common point), last freeze");
  AddItemOptions(gshow, *gshow_args, false);
  gshow->add_option("-n,--name", gshow_args->name, "Group name")->required();
  SetAction(gshow, selected, [gshow_args](Context& ctx) {
    return ctx.Show(GroupsPath(ctx, *gshow_args) + "/" + gshow_args->name,
                    ConsistencyGroupTable());
  });
  auto gdel_args = std::make_shared<ReplArgs>();
  CLI::App* gdel = group->add_subcommand("delete", "Delete an empty group");
  AddItemOptions(gdel, *gdel_args, false);
  gdel->add_option("-n,--name", gdel_args->name, "Group name")->required();
  SetAction(gdel, selected, [gdel_args](Context& ctx) -> CliStatus {
    CLI_RETURN_IF_ERROR(
        ctx.Write("DELETE", GroupsPath(ctx, *gdel_args) + "/" + gdel_args->name, nullptr));
    return CliStatus::Ok();
  });
  auto gfo_args = std::make_shared<ReplArgs>();
  CLI::App* gfo = group->add_subcommand(
      "failover",
      "Failover of every member: unplanned to one point without the source region, "
      "or --planned");
  AddItemOptions(gfo, *gfo_args, false);
  gfo->add_option("-n,--name", gfo_args->name, "Group name")->required();
  gfo->add_option("--recovery-point", gfo_args->recovery_point,
                  "Group point name (default: the newest every member has)");
  gfo->add_option("--recovery-point-type", gfo_args->recovery_point_type,
                  "Latest (default) or LatestApplicationConsistent (the newest such group point)")
      ->check(CLI::IsMember({"Latest", "LatestApplicationConsistent"}));
  gfo->add_option("--target-group", gfo_args->target_group,
                  "Resource group of the VMs (default: the vault's)");
  gfo->add_flag("--planned", gfo_args->planned,
                "Planned: every member's VM shuts down in the source and sends a last cycle; "
                "nothing is lost");
  SetAction(gfo, selected, [gfo_args](Context& ctx) { return Failover(ctx, *gfo_args, true); });

  RegisterRecoveryNetworkCommands(*recovery, *repl, selected);

  CLI::App* plan = AddNoun(*recovery, "plan",
                           "Recovery plans: ordered groups of replicated VMs, with actions");
  auto pc_args = std::make_shared<PlanArgs>();
  CLI::App* pc = plan->add_subcommand("create", "Create or replace a recovery plan");
  AddPlanOptions(pc, *pc_args);
  pc->add_option("--group", pc_args->groups,
                 "A group's replicated items (names or ids, comma-separated); repeat, in order");
  pc->add_option("--file", pc_args->file,
                 "The plan's properties as JSON (groups with startGroupActions/endGroupActions)");
  pc->add_option("--vm-readiness", pc_args->vm_readiness,
                 "GuestAgent (default) or PowerState: when a group's VMs count as up");
  SetAction(pc, selected, [pc_args](Context& ctx) { return CreatePlan(ctx, *pc_args); });
  auto pl_args = std::make_shared<PlanArgs>();
  CLI::App* pl = plan->add_subcommand("list", "List a vault's recovery plans");
  AddPlanOptions(pl, *pl_args, false);
  SetAction(pl, selected, [pl_args](Context& ctx) {
    return ctx.List(PlansPath(ctx, *pl_args), PlanTable());
  });
  auto ps_args = std::make_shared<PlanArgs>();
  CLI::App* ps = plan->add_subcommand("show", "Show a plan and its last run's state");
  AddPlanOptions(ps, *ps_args);
  SetAction(ps, selected, [ps_args](Context& ctx) {
    return ctx.Show(PlansPath(ctx, *ps_args) + "/" + ps_args->name, PlanTable());
  });
  for (auto [verb, action, help] :
       {std::tuple{"test-failover", "testFailover",
                   "A drill of the whole plan: test VMs from clones, replication goes on"},
        std::tuple{"cleanup", "testFailoverCleanup", "Remove the drill's VMs"},
        std::tuple{"failover", "unplannedFailover",
                   "Failover of the whole plan, group by group: unplanned (without the source) "
                   "or --planned"},
        std::tuple{"commit", "commit", "Make every item's failover point final"},
        std::tuple{
            "reprotect", "reprotect",
            "Replicate every failed-over VM back to the source region (only what differs)"}}) {
    auto args = std::make_shared<PlanArgs>();
    CLI::App* cmd = plan->add_subcommand(verb, help);
    AddPlanOptions(cmd, *args);
    std::string act = action;
    if (act == "unplannedFailover" || act == "testFailover")
      cmd->add_option("--recovery-point-type", args->recovery_point_type,
                      "Each item's point: Latest (default) or LatestApplicationConsistent")
          ->check(CLI::IsMember({"Latest", "LatestApplicationConsistent"}));
    if (act == "unplannedFailover")
      cmd->add_flag("--planned", args->planned,
                    "Planned: the source's VMs shut down (the last group first) and send their "
                    "last cycles, then the groups fail over in order; nothing is lost");
    SetAction(cmd, selected, [args, act](Context& ctx) { return RunPlanAction(ctx, *args, act); });
  }
  auto pa_args = std::make_shared<PlanArgs>();
  CLI::App* pa = plan->add_subcommand("ack", "Acknowledge the manual step a running plan waits for");
  AddPlanOptions(pa, *pa_args);
  pa->add_option("--action", pa_args->action_name, "The manual action's name")->required();
  SetAction(pa, selected, [pa_args](Context& ctx) -> CliStatus {
    Json body = {{"actionName", pa_args->action_name}};
    CLI_RETURN_IF_ERROR(ctx.Write("POST",
                                  PlansPath(ctx, *pa_args) + "/" + pa_args->name +
                                      "/acknowledgeManualAction",
                                  &body));
    return CliStatus::Ok();
  });
  auto pd_args = std::make_shared<PlanArgs>();
  CLI::App* pd = plan->add_subcommand("delete", "Delete a recovery plan (its VMs stay)");
  AddPlanOptions(pd, *pd_args);
  SetAction(pd, selected, [pd_args](Context& ctx) -> CliStatus {
    CLI_RETURN_IF_ERROR(
        ctx.Write("DELETE", PlansPath(ctx, *pd_args) + "/" + pd_args->name, nullptr));
    return CliStatus::Ok();
  });
}

}  // namespace stratus::cli
