// stratus vm create|list|show|start|stop|deallocate|restart|resize|delete|get-instance-view|
//            console|list-sizes|snapshot, and stratus vm disk attach|detach
#include <memory>

#include "cli/commands.h"
#include "cli/resolve.h"
#include "core/fs.h"

namespace stratus::cli {
namespace {

struct VmArgs {
  std::string group;
  std::string name;
  std::string location;
  // create
  std::string image;
  std::string size = "Standard_S1";
  std::vector<int> data_disk_sizes_gb;
  std::string data_disk_sku;
  int os_disk_size_gb = 0;
  std::vector<std::string> attach_data_disks;
  std::string custom_data;
  std::string computer_name;
  std::vector<std::string> tags;
  // network: `--vnet --subnet` make a NIC "<vm>VMNic" (as az vm create does); `--nics` attaches
  std::string vnet, subnet, private_ip, nsg, public_ip;
  std::vector<std::string> nics;
  // show / list
  bool show_details = false;
  // delete
  bool delete_disks = false;
  bool yes = false;
  // console
  int64_t tail = 0;
  // snapshot
  std::string prefix;
  bool no_quiesce = false;
  // vm disk attach/detach
  std::string disk;
  int lun = -1;
};

const std::vector<std::string> kSkus = {"Standard_LRS", "Premium_LRS"};

std::string VmPath(const Context& ctx, const VmArgs& a) {
  return ResourcePath(ctx.subscription(), a.group, ResourceKind::kVirtualMachine, a.name);
}

// The VM as printed after a change: with its instance view, so PowerState shows.
std::string VmShowPath(const Context& ctx, const VmArgs& a) {
  return WithQuery(VmPath(ctx, a), {{"$expand", "instanceView"}});
}

void AddGroup(CLI::App* cmd, VmArgs& a) {
  cmd->add_option("-g,--resource-group", a.group, "Resource group")->required();
}
void AddGroupAndName(CLI::App* cmd, VmArgs& a) {
  AddGroup(cmd, a);
  cmd->add_option("-n,--name", a.name, "VM name")->required();
}

// `--custom-data FILE` or `@FILE`: the file's text.
CliResult<std::string> ReadCustomData(const std::string& arg) {
  std::string path = !arg.empty() && arg[0] == '@' ? arg.substr(1) : arg;
  if (path.empty()) return UsageError("--custom-data needs a file name.", "--custom-data");
  auto text = ReadFile(path);
  if (!text.ok())
    return CliError(ExitCode::kLocalError, "FileNotFound",
                    "Cannot read the --custom-data file '" + path + "'.", "--custom-data");
  return std::move(text).value();
}

CliResult<Json> BuildCreateBody(Context& ctx, const VmArgs& a) {
  CLI_ASSIGN_OR_RETURN(Json tags, ParseTags(a.tags));
  CLI_ASSIGN_OR_RETURN(Json image_reference,
                       ResolveImageReference(ctx.client(), ctx.subscription(), a.group, a.image));

  Json os_disk = {{"name", a.name + "-os"}, {"deleteOption", "Delete"}};
  if (a.os_disk_size_gb > 0) os_disk["diskSizeGB"] = a.os_disk_size_gb;

  Json data_disks = Json::array();
  int lun = 0;
  for (int size_gb : a.data_disk_sizes_gb) {
    if (size_gb <= 0)
      return UsageError(
          "--data-disk-sizes-gb: sizes must be positive, got " + std::to_string(size_gb) + ".",
          "--data-disk-sizes-gb");
    Json disk = {{"lun", lun},
                 {"name", a.name + "-data" + std::to_string(lun)},
                 {"createOption", "Empty"},
                 {"diskSizeGB", size_gb}};
    if (!a.data_disk_sku.empty()) disk["sku"] = a.data_disk_sku;
    data_disks.push_back(std::move(disk));
    ++lun;
  }
  for (const std::string& disk : a.attach_data_disks) {
    CLI_ASSIGN_OR_RETURN(std::string id,
                         ResolveResourceId(ctx.subscription(), a.group, disk, ResourceKind::kDisk,
                                           "--attach-data-disks"));
    data_disks.push_back({{"lun", lun}, {"createOption", "Attach"}, {"managedDisk", {{"id", id}}}});
    ++lun;
  }

  Json os_profile = {{"computerName", a.computer_name.empty() ? a.name : a.computer_name}};
  if (!a.custom_data.empty()) {
    CLI_ASSIGN_OR_RETURN(std::string custom_data, ReadCustomData(a.custom_data));
    os_profile["customData"] = custom_data;
  }

  Json storage = {{"imageReference", image_reference}, {"osDisk", os_disk}};
  if (!data_disks.empty()) storage["dataDisks"] = data_disks;
  Json body = {{"location", LocationOr(ctx, a.location)},
               {"tags", tags},
               {"properties",
                {{"hardwareProfile", {{"vmSize", a.size}}},
                 {"storageProfile", storage},
                 {"osProfile", os_profile}}}};
  // Network: a new NIC in --vnet/--subnet (created here first, like az), or existing --nics.
  std::string net = GroupPath(ctx.subscription(), a.group) + "/providers/Stratus.Network/";
  Json nics = Json::array();
  if (!a.vnet.empty() || !a.subnet.empty()) {
    if (a.vnet.empty() || a.subnet.empty())
      return UsageError("--vnet and --subnet go together.", a.vnet.empty() ? "--vnet" : "--subnet");
    Json ipc = {{"subnet", {{"id", net + "virtualNetworks/" + a.vnet + "/subnets/" + a.subnet}}}};
    if (!a.private_ip.empty()) {
      ipc["privateIPAddress"] = a.private_ip;
      ipc["privateIPAllocationMethod"] = "Static";
    }
    if (!a.public_ip.empty()) {
      // A public IP by id, or by name in the group: made (Static, Standard) when it is not
      // there, as az vm create does.
      std::string pip = LooksLikeResourceId(a.public_ip)
                            ? a.public_ip
                            : net + "publicIPAddresses/" + a.public_ip;
      auto have = ctx.client().Get(pip);
      if (!have.ok() && have.error().exit_code() != ExitCode::kNotFound) return have.error();
      if (!have.ok()) {
        Json body = {{"location", LocationOr(ctx, a.location)},
                     {"sku", {{"name", "Standard"}}},
                     {"properties", {{"publicIPAllocationMethod", "Static"}}}};
        CLI_RETURN_IF_ERROR(ctx.client().Send("PUT", pip, &body));
      }
      ipc["publicIPAddress"] = {{"id", pip}};
    }
    Json nic = {{"location", LocationOr(ctx, a.location)},
                {"properties", {{"ipConfigurations", {{{"name", "ipconfig1"}, {"properties", ipc}}}}}}};
    if (!a.nsg.empty())
      nic["properties"]["networkSecurityGroup"] = {
          {"id", LooksLikeResourceId(a.nsg) ? a.nsg : net + "networkSecurityGroups/" + a.nsg}};
    std::string nic_path = net + "networkInterfaces/" + a.name + "VMNic";
    CLI_RETURN_IF_ERROR(ctx.client().Send("PUT", nic_path, &nic));
    nics.push_back({{"id", nic_path}, {"properties", {{"primary", true}, {"deleteOption", "Delete"}}}});
  } else if (!a.private_ip.empty() || !a.nsg.empty()) {
    return UsageError("--private-ip-address and --nsg need --vnet and --subnet.", "--vnet");
  } else if (!a.public_ip.empty()) {
    return UsageError("--public-ip-address needs --vnet and --subnet.", "--vnet");
  }
  for (auto& n : a.nics) {
    std::string id = LooksLikeResourceId(n) ? n : net + "networkInterfaces/" + n;
    nics.push_back({{"id", id}, {"properties", {{"primary", nics.empty()}}}});
  }
  if (!nics.empty()) body["properties"]["networkProfile"] = {{"networkInterfaces", nics}};
  return body;
}

CliStatus CreateVm(Context& ctx, const VmArgs& a) {
  CLI_ASSIGN_OR_RETURN(Json body, BuildCreateBody(ctx, a));
  return ctx.WriteAndShow("PUT", VmPath(ctx, a), &body, VmShowPath(ctx, a), VmTable());
}

CliStatus List(Context& ctx, const VmArgs& a) {
  std::string path = CollectionPath(ctx.subscription(), a.group, ResourceKind::kVirtualMachine);
  if (a.show_details) path = WithQuery(path, {{"$expand", "instanceView"}});
  return ctx.List(path, VmTable());
}

CliStatus Show(Context& ctx, const VmArgs& a) {
  return ctx.Show(a.show_details ? VmShowPath(ctx, a) : VmPath(ctx, a), VmTable());
}

// POST `.../{action}` (an LRO), then show the VM.
CliStatus PowerAction(Context& ctx, const VmArgs& a, const std::string& action,
                      const Json* body = nullptr) {
  return ctx.WriteAndShow("POST", VmPath(ctx, a) + "/" + action, body, VmShowPath(ctx, a),
                          VmTable());
}

CliStatus Resize(Context& ctx, const VmArgs& a) {
  Json body = {{"vmSize", a.size}};
  return PowerAction(ctx, a, "resize", &body);
}

CliStatus DeleteVm(Context& ctx, const VmArgs& a) {
  std::string path = VmPath(ctx, a);
  if (a.delete_disks) path = WithQuery(path, {{"deleteDisks", "true"}});
  CLI_RETURN_IF_ERROR(ctx.Write("DELETE", path, nullptr));
  return CliStatus::Ok();
}

CliStatus Console(Context& ctx, const VmArgs& a) {
  std::string path = VmPath(ctx, a) + "/retrieveConsoleLog";
  if (a.tail > 0) path = WithQuery(path, {{"tail", std::to_string(a.tail)}});
  CLI_ASSIGN_OR_RETURN(ApiResponse response, ctx.client().Send("POST", path));
  if (ctx.format() == OutputFormat::kJson) {
    ctx.out() << RenderJson(response.body);
  } else {
    std::string content = FormatCell(JsonPath(response.body, "content"));
    ctx.out() << content;
    if (!content.empty() && content.back() != '\n') ctx.out() << "\n";
  }
  ctx.out().flush();
  return CliStatus::Ok();
}

CliStatus ListSizes(Context& ctx, const VmArgs& a) {
  return ctx.List(SubscriptionPath(ctx.subscription()) + "/providers/Stratus.Compute/locations/" +
                      LocationOr(ctx, a.location) + "/vmSizes",
                  VmSizeTable());
}

CliStatus Snapshot(Context& ctx, const VmArgs& a) {
  Json body = {{"quiesce", !a.no_quiesce}};
  if (!a.prefix.empty()) body["snapshotNamePrefix"] = a.prefix;
  CLI_ASSIGN_OR_RETURN(Context::WriteOutcome outcome,
                       ctx.Write("POST", VmPath(ctx, a) + "/captureSnapshots", &body));
  if (outcome.pending) return CliStatus::Ok();
  // The operation's properties (or, if it finished at once, the response) list the snapshots.
  Json result = outcome.operation.has_value() ? *outcome.operation : outcome.response.body;
  const Json* properties = JsonPath(result, "properties");
  Json summary = properties != nullptr ? *properties : result;
  if (ctx.format() == OutputFormat::kJson) {
    ctx.out() << RenderJson(summary);
    return CliStatus::Ok();
  }
  const Json* snapshots = JsonPath(summary, "snapshots");
  if (snapshots != nullptr && snapshots->is_array()) {
    for (const Json& s : *snapshots) {
      const Json* id = s.is_object() ? JsonPath(s, "id") : &s;
      ctx.out() << FormatCell(id) << "\n";
    }
  }
  std::string consistency = FormatCell(JsonPath(summary, "consistency"));
  if (!consistency.empty()) ctx.err() << "Consistency: " << consistency << "\n";
  ctx.out().flush();
  return CliStatus::Ok();
}

CliStatus AttachDetach(Context& ctx, const VmArgs& a, bool attach) {
  // `a.name` is the VM (--vm-name), `a.disk` the disk (--name).
  CLI_ASSIGN_OR_RETURN(std::string disk_id, ResolveResourceId(ctx.subscription(), a.group, a.disk,
                                                              ResourceKind::kDisk, "--name"));
  Json body;
  if (attach) {
    Json entry = {{"diskId", disk_id}};
    if (a.lun >= 0) entry["lun"] = a.lun;
    body = {{"dataDisksToAttach", Json::array({entry})}, {"dataDisksToDetach", Json::array()}};
  } else {
    body = {{"dataDisksToAttach", Json::array()},
            {"dataDisksToDetach", Json::array({{{"diskId", disk_id}}})}};
  }
  return PowerAction(ctx, a, "attachDetachDataDisks", &body);
}

// Registers a leaf taking -g and -n whose action is `fn(ctx, args)`.
template <typename Fn>
std::shared_ptr<VmArgs> AddVmCommand(CLI::App* vm, Action* selected, const std::string& name,
                                     const std::string& description, Fn fn,
                                     CLI::App** out = nullptr) {
  auto args = std::make_shared<VmArgs>();
  CLI::App* cmd = vm->add_subcommand(name, description);
  AddGroupAndName(cmd, *args);
  SetAction(cmd, selected, [args, fn](Context& ctx) { return fn(ctx, *args); });
  if (out != nullptr) *out = cmd;
  return args;
}

}  // namespace

void RegisterVmCommands(CLI::App& root, Action* selected) {
  CLI::App* vm = AddNoun(root, "vm", "Manage virtual machines");
  CLI::App* cmd = nullptr;

  auto create = AddVmCommand(vm, selected, "create", "Create a VM", CreateVm, &cmd);
  cmd->add_option("--image", create->image, "Platform image name (tiny), image name or id")
      ->required();
  cmd->add_option("--size", create->size, "VM size (see `vm list-sizes`)")->capture_default_str();
  cmd->add_option("--data-disk-sizes-gb", create->data_disk_sizes_gb,
                  "Sizes of new empty data disks, in GB, one per disk");
  cmd->add_option("--data-disk-sku", create->data_disk_sku, "Tier of the new data disks")
      ->check(CLI::IsMember(kSkus));
  cmd->add_option("--os-disk-size-gb", create->os_disk_size_gb, "OS disk size in GB")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--attach-data-disks", create->attach_data_disks,
                  "Existing disks (names in -g or ids) to attach");
  cmd->add_option("--custom-data", create->custom_data,
                  "FILE or @FILE: script run by the guest at first boot");
  cmd->add_option("--computer-name", create->computer_name, "Guest host name (default: -n)");
  CLI::Option* vnet = cmd->add_option("--vnet,--vnet-name", create->vnet,
                                      "Virtual network of a new NIC <name>VMNic (with --subnet)");
  cmd->add_option("--subnet", create->subnet, "Subnet of the new NIC");
  cmd->add_option("--private-ip-address", create->private_ip, "Static address of the new NIC");
  cmd->add_option("--public-ip-address", create->public_ip,
                  "Public IP of the new NIC (name in -g, made Static if absent; or an id)");
  cmd->add_option("--nsg", create->nsg, "NSG of the new NIC (name in -g, or id)");
  cmd->add_option("--nics", create->nics, "Existing NICs (names in -g or ids), first is primary")
      ->excludes(vnet);
  cmd->add_option("-l,--location", create->location, "Location (default: the region's)");
  cmd->add_option("--tags", create->tags, "Tags: key=value ...");

  auto list_args = std::make_shared<VmArgs>();
  CLI::App* list = vm->add_subcommand("list", "List the VMs of a resource group");
  AddGroup(list, *list_args);
  list->add_flag("-d,--show-details", list_args->show_details, "Include the power state");
  SetAction(list, selected, [list_args](Context& ctx) { return List(ctx, *list_args); });

  auto show = AddVmCommand(vm, selected, "show", "Show a VM", Show, &cmd);
  cmd->add_flag("-d,--show-details", show->show_details, "Include the instance view");

  AddVmCommand(vm, selected, "start", "Start a VM",
               [](Context& ctx, const VmArgs& a) { return PowerAction(ctx, a, "start"); });
  AddVmCommand(vm, selected, "stop", "Power off a VM (keeps its allocation)",
               [](Context& ctx, const VmArgs& a) { return PowerAction(ctx, a, "powerOff"); });
  AddVmCommand(vm, selected, "deallocate", "Stop a VM and release its allocation",
               [](Context& ctx, const VmArgs& a) { return PowerAction(ctx, a, "deallocate"); });
  AddVmCommand(vm, selected, "restart", "Restart a VM",
               [](Context& ctx, const VmArgs& a) { return PowerAction(ctx, a, "restart"); });

  auto resize =
      AddVmCommand(vm, selected, "resize", "Change the size of a stopped VM", Resize, &cmd);
  cmd->add_option("--size", resize->size, "New VM size")->required();

  auto del = AddVmCommand(vm, selected, "delete", "Delete a VM", DeleteVm, &cmd);
  cmd->add_flag("--delete-disks", del->delete_disks, "Also delete its data disks");
  cmd->add_flag("-y,--yes", del->yes, "Accepted for az compatibility; nothing is asked");

  AddVmCommand(vm, selected, "get-instance-view", "Show a VM's runtime state",
               [](Context& ctx, const VmArgs& a) {
                 return ctx.Show(VmPath(ctx, a) + "/instanceView", InstanceViewTable());
               });

  auto console =
      AddVmCommand(vm, selected, "console", "Print a VM's serial console", Console, &cmd);
  cmd->add_option("--tail", console->tail, "Only the last BYTES bytes")->check(CLI::PositiveNumber);

  auto sizes_args = std::make_shared<VmArgs>();
  CLI::App* sizes = vm->add_subcommand("list-sizes", "List VM sizes");
  sizes->add_option("-l,--location", sizes_args->location, "Location (default: the region's)");
  SetAction(sizes, selected, [sizes_args](Context& ctx) { return ListSizes(ctx, *sizes_args); });

  auto snapshot = AddVmCommand(vm, selected, "snapshot",
                               "Snapshot all disks of a VM at one instant", Snapshot, &cmd);
  cmd->add_option("--prefix", snapshot->prefix, "Name prefix of the snapshots");
  cmd->add_flag("--no-quiesce", snapshot->no_quiesce,
                "Do not freeze the guest file systems (crash-consistent)");

  CLI::App* disk = AddNoun(*vm, "disk", "Attach or detach a VM's data disks");
  for (bool attach : {true, false}) {
    auto args = std::make_shared<VmArgs>();
    CLI::App* leaf = disk->add_subcommand(attach ? "attach" : "detach",
                                          attach ? "Attach a disk to a VM" : "Detach a disk");
    AddGroup(leaf, *args);
    leaf->add_option("--vm-name", args->name, "VM name")->required();
    leaf->add_option("-n,--name", args->disk, "Disk name (in -g) or id")->required();
    if (attach)
      leaf->add_option("--lun", args->lun, "LUN (default: the first free)")
          ->check(CLI::NonNegativeNumber);
    SetAction(leaf, selected,
              [args, attach](Context& ctx) { return AttachDetach(ctx, *args, attach); });
  }
}

}  // namespace stratus::cli
