// VmService::Plan: the validation of a VM's desired state (a PUT's body) against the region:
// sizes, images, disks to create or attach, LUNs, the OS profile.
#include "compute/vm_plan.h"

#include <set>

#include "api/resource_util.h"
#include "compute/vm_service.h"
#include "core/fs.h"

namespace stratus::compute {

using storage::kGiB;

namespace {

constexpr int kMaxLun = 63;

Status ValidateComputerName(const std::string& n) {
  bool ok = !n.empty() && n.size() <= 63 && n.front() != '-' && n.back() != '-';
  for (char c : n) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-');
  if (!ok)
    return InvalidArgument("computerName '" + n +
                               "' must be 1-63 letters, digits or '-', not "
                               "starting or ending with '-'.",
                           "properties.osProfile.computerName", "InvalidParameter");
  return Status::Ok();
}

std::string DiskIdIn(const ResourceId& vm, const std::string& disk_name) {
  return ResourceId::Resource(vm.subscription(), vm.resource_group(), "Stratus.Storage", "disks",
                              disk_name)
      .ToString();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Validation

Result<VmService::VmPlan> VmService::Plan(const Json& body, const ResourceId& id,
                                          const store::Record* existing) {
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      body, {"location", "tags", "properties", "id", "name", "type", "etag", "systemData"}, ""));
  VmPlan plan;
  ASSIGN_OR_RETURN(plan.location, api::ValidateLocation(body, ctx_.region));
  RETURN_IF_ERROR(api::ValidateTags(body));
  plan.tags = body.value("tags", existing ? existing->body["tags"] : Json::object());
  if (!body.contains("properties") || !body["properties"].is_object())
    return InvalidArgument("'properties' is required.", "properties", "MissingParameter");
  const Json& p = body["properties"];
  RETURN_IF_ERROR(
      api::RejectUnknownKeys(p,
                             {"hardwareProfile", "storageProfile", "osProfile", "networkProfile",
                              "vmId", "provisioningState", "instanceView", "timeCreated"},
                             "properties"));
  Json hw = p.value("hardwareProfile", Json::object());
  RETURN_IF_ERROR(api::RejectUnknownKeys(hw, {"vmSize"}, "properties.hardwareProfile"));
  ASSIGN_OR_RETURN(std::string size_name, api::GetString(hw, "vmSize"));
  ASSIGN_OR_RETURN(plan.size, FindVmSize(size_name));

  Json sp = p.value("storageProfile", Json::object());
  if (!sp.is_object())
    return InvalidArgument("'storageProfile' must be an object.", "properties.storageProfile");
  RETURN_IF_ERROR(api::RejectUnknownKeys(sp, {"imageReference", "osDisk", "dataDisks"},
                                         "properties.storageProfile"));
  Json img_ref = sp.value("imageReference", Json::object());
  RETURN_IF_ERROR(
      api::RejectUnknownKeys(img_ref, {"id"}, "properties.storageProfile.imageReference"));
  ASSIGN_OR_RETURN(std::string image_id, api::GetString(img_ref, "id"));
  const Json* old_sp = existing ? &existing->body["properties"]["storageProfile"] : nullptr;
  if (old_sp && !EqualsIgnoreCase(image_id, (*old_sp)["imageReference"].value("id", "")))
    return Conflict("The image of an existing VM cannot be changed.",
                    "properties.storageProfile.imageReference", "PropertyChangeNotAllowed");
  ASSIGN_OR_RETURN(plan.image, images_->Resolve(image_id));

  // OS disk.
  Json os = sp.value("osDisk", Json::object());
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      os, {"name", "diskSizeGB", "sku", "deleteOption", "createOption", "managedDisk", "osType"},
      "properties.storageProfile.osDisk"));
  int64_t image_gb = static_cast<int64_t>((plan.image.size_bytes + kGiB - 1) / kGiB);
  if (image_gb < 1) image_gb = 1;
  ASSIGN_OR_RETURN(std::string os_name, api::GetString(os, "name", id.name() + "_OsDisk"));
  RETURN_IF_ERROR(ValidateResourceName(os_name, "disk", 80));
  ASSIGN_OR_RETURN(int64_t os_gb,
                   api::GetInt(os, "diskSizeGB", 1, storage::kMaxDiskSizeGB, image_gb));
  if (os_gb < image_gb)
    return InvalidArgument("osDisk.diskSizeGB " + std::to_string(os_gb) +
                               " is smaller than the "
                               "image (" +
                               std::to_string(image_gb) + " GiB).",
                           "properties.storageProfile.osDisk.diskSizeGB", "InvalidDiskSize");
  std::string os_sku = os.value("sku", "");
  if (os_sku.empty() && os.contains("managedDisk"))
    os_sku = os["managedDisk"].value("storageAccountType", "");
  if (os_sku.empty()) os_sku = "Standard_LRS";
  ASSIGN_OR_RETURN(storage::DiskTier os_tier, storage::FindDiskTier(os_sku));
  ASSIGN_OR_RETURN(std::string os_del, api::GetString(os, "deleteOption", "Delete"));
  if (!EqualsIgnoreCase(os_del, "Delete") && !EqualsIgnoreCase(os_del, "Detach"))
    return InvalidArgument("deleteOption must be Delete or Detach.",
                           "properties.storageProfile.osDisk.deleteOption");
  ASSIGN_OR_RETURN(std::string os_opt, api::GetString(os, "createOption", "FromImage"));
  bool os_attach = EqualsIgnoreCase(os_opt, "Attach");
  if (!os_attach && !EqualsIgnoreCase(os_opt, "FromImage"))
    return InvalidArgument("osDisk.createOption must be FromImage or Attach.",
                           "properties.storageProfile.osDisk.createOption");
  std::string os_id = DiskIdIn(id, os_name);
  if (os_attach) {
    // An existing disk (a restore) becomes the OS disk; the image still gives kernel and initrd.
    Json md = os.value("managedDisk", Json::object());
    ASSIGN_OR_RETURN(os_id, api::GetString(md, "id"));
    ASSIGN_OR_RETURN(ResourceId did, ResourceId::Parse(os_id));
    if (api::TypeKey(did) != "stratus.storage/disks" || did.subscription() != id.subscription())
      return InvalidArgument("osDisk.managedDisk.id '" + os_id +
                                 "' must be a disk of this "
                                 "subscription.",
                             "properties.storageProfile.osDisk.managedDisk.id");
    auto drec = ctx_.store->Get(did.Key());
    if (!drec.ok())
      return NotFound("Disk '" + os_id + "' was not found.",
                      "properties.storageProfile.osDisk.managedDisk.id");
    std::string owner = drec->body.value("managedBy", "");
    if (!owner.empty() && !EqualsIgnoreCase(owner, id.ToString()))
      return Conflict("Disk '" + did.name() + "' is already attached to '" + owner + "'.",
                      "properties.storageProfile.osDisk.managedDisk.id", "DiskAttached");
    if (drec->body["properties"].value("provisioningState", "") != "Succeeded")
      return Conflict("Disk '" + did.name() + "' is not ready.",
                      "properties.storageProfile.osDisk.managedDisk.id");
    os_id = drec->body.value("id", os_id);
    os_name = did.name();
    os_gb = drec->body["properties"].value("diskSizeGB", os_gb);
    os_tier.sku = drec->body["sku"].value("name", os_tier.sku);
    if (owner.empty() && !existing) plan.attach_keys.push_back(did.Key());
  }
  if (old_sp && !EqualsIgnoreCase(os_id, (*old_sp)["osDisk"]["managedDisk"].value("id", "")))
    return Conflict("The OS disk of an existing VM cannot be changed.",
                    "properties.storageProfile.osDisk", "PropertyChangeNotAllowed");
  if (!existing && !os_attach) {
    RETURN_IF_ERROR(disks_->ValidateSize(os_gb));
    if (ctx_.store->Get(ResourceId::Parse(os_id)->Key()).ok())
      return Conflict("A disk named '" + os_name + "' already exists in resource group '" +
                          id.resource_group() + "'.",
                      "properties.storageProfile.osDisk.name", "DiskExists");
    plan.new_disk_keys.push_back(ToLower(os_id));
  }
  if (old_sp) os_attach = (*old_sp)["osDisk"].value("createOption", "") == "Attach";
  Json os_out = {{"name", os_name},
                 {"osType", plan.image.os_type},
                 {"createOption", os_attach ? "Attach" : "FromImage"},
                 {"diskSizeGB", old_sp ? (*old_sp)["osDisk"].value("diskSizeGB", os_gb) : os_gb},
                 {"deleteOption", os_del == "Detach" ? "Detach" : "Delete"},
                 {"managedDisk", {{"id", os_id}, {"storageAccountType", os_tier.sku}}}};

  // Data disks.
  Json dds = sp.value("dataDisks", Json::array());
  if (!dds.is_array())
    return InvalidArgument("'dataDisks' must be an array.", "properties.storageProfile.dataDisks");
  if (static_cast<int>(dds.size()) > plan.size.max_data_disks)
    return InvalidArgument("The VM size '" + plan.size.name + "' allows at most " +
                               std::to_string(plan.size.max_data_disks) + " data disks; " +
                               std::to_string(dds.size()) + " were given.",
                           "properties.storageProfile.dataDisks", "TooManyDataDisks");
  std::set<int64_t> luns;
  std::set<std::string> disk_ids = {ToLower(os_id)};
  Json dd_out = Json::array();
  std::map<std::string, Json> old_by_id;
  if (old_sp)
    for (auto& d : (*old_sp)["dataDisks"]) old_by_id[ToLower(d["managedDisk"].value("id", ""))] = d;
  for (size_t i = 0; i < dds.size(); ++i) {
    const Json& d = dds[i];
    std::string where = "properties.storageProfile.dataDisks[" + std::to_string(i) + "]";
    if (!d.is_object()) return InvalidArgument("Each data disk must be an object.", where);
    RETURN_IF_ERROR(api::RejectUnknownKeys(d,
                                           {"lun", "name", "createOption", "diskSizeGB", "sku",
                                            "managedDisk", "deleteOption", "caching"},
                                           where));
    ASSIGN_OR_RETURN(int64_t lun, api::GetInt(d, "lun", 0, kMaxLun));
    if (!luns.insert(lun).second)
      return InvalidArgument("LUN " + std::to_string(lun) + " is used by two data disks.",
                             where + ".lun", "InvalidLun");
    ASSIGN_OR_RETURN(std::string opt, api::GetString(d, "createOption", "Empty"));
    ASSIGN_OR_RETURN(std::string del, api::GetString(d, "deleteOption", "Detach"));
    if (!EqualsIgnoreCase(del, "Delete") && !EqualsIgnoreCase(del, "Detach"))
      return InvalidArgument("deleteOption must be Delete or Detach.", where + ".deleteOption");
    std::string disk_id;
    std::string name;
    std::string sku;
    int64_t gb = 0;
    if (EqualsIgnoreCase(opt, "Attach")) {
      Json md = d.value("managedDisk", Json::object());
      ASSIGN_OR_RETURN(disk_id, api::GetString(md, "id"));
      ASSIGN_OR_RETURN(ResourceId did, ResourceId::Parse(disk_id));
      if (api::TypeKey(did) != "stratus.storage/disks" || did.subscription() != id.subscription())
        return InvalidArgument("managedDisk.id '" + disk_id +
                                   "' must be a disk of this "
                                   "subscription.",
                               where + ".managedDisk.id");
      auto drec = ctx_.store->Get(did.Key());
      if (!drec.ok())
        return NotFound("Disk '" + disk_id + "' was not found.", where + ".managedDisk.id");
      std::string owner = drec->body.value("managedBy", "");
      if (!owner.empty() && !EqualsIgnoreCase(owner, id.ToString()))
        return Conflict("Disk '" + did.name() + "' is already attached to '" + owner + "'.",
                        where + ".managedDisk.id", "DiskAttached");
      if (drec->body["properties"].value("provisioningState", "") != "Succeeded")
        return Conflict("Disk '" + did.name() + "' is not ready.", where + ".managedDisk.id");
      disk_id = drec->body.value("id", disk_id);
      name = did.name();
      sku = drec->body["sku"].value("name", "Standard_LRS");
      gb = drec->body["properties"].value("diskSizeGB", int64_t{0});
      if (owner.empty()) plan.attach_keys.push_back(did.Key());
    } else if (EqualsIgnoreCase(opt, "Empty")) {
      ASSIGN_OR_RETURN(name,
                       api::GetString(d, "name", id.name() + "_DataDisk_" + std::to_string(lun)));
      RETURN_IF_ERROR(ValidateResourceName(name, "disk", 80));
      disk_id = DiskIdIn(id, name);
      bool known = old_by_id.count(ToLower(disk_id)) > 0;
      if (known) {
        gb = old_by_id[ToLower(disk_id)].value("diskSizeGB", int64_t{0});
        sku =
            old_by_id[ToLower(disk_id)]["managedDisk"].value("storageAccountType", "Standard_LRS");
      } else {
        ASSIGN_OR_RETURN(gb, api::GetInt(d, "diskSizeGB", 1, storage::kMaxDiskSizeGB));
        RETURN_IF_ERROR(disks_->ValidateSize(gb));
        sku = d.value("sku", "");
        if (sku.empty() && d.contains("managedDisk"))
          sku = d["managedDisk"].value("storageAccountType", "");
        if (sku.empty()) sku = "Standard_LRS";
        ASSIGN_OR_RETURN(storage::DiskTier t, storage::FindDiskTier(sku));
        sku = t.sku;
        if (ctx_.store->Get(ToLower(disk_id)).ok())
          return Conflict("A disk named '" + name + "' already exists in resource group '" +
                              id.resource_group() + "'; attach it with createOption Attach.",
                          where + ".name", "DiskExists");
        plan.new_disk_keys.push_back(ToLower(disk_id));
      }
    } else {
      return InvalidArgument("createOption '" + opt +
                                 "' is not supported for data disks; use "
                                 "Empty or Attach.",
                             where + ".createOption");
    }
    if (!disk_ids.insert(ToLower(disk_id)).second)
      return InvalidArgument("Disk '" + name + "' is listed twice.", where);
    auto old = old_by_id.find(ToLower(disk_id));
    if (old != old_by_id.end() && old->second.value("lun", -1) != lun)
      return Conflict("Disk '" + name + "' is attached at LUN " +
                          std::to_string(old->second.value("lun", -1)) +
                          "; detach it before moving it to another LUN.",
                      where + ".lun", "LunInUse");
    dd_out.push_back({{"lun", lun},
                      {"name", name},
                      {"createOption", EqualsIgnoreCase(opt, "Attach") ? "Attach" : "Empty"},
                      {"diskSizeGB", gb},
                      {"deleteOption", EqualsIgnoreCase(del, "Delete") ? "Delete" : "Detach"},
                      {"managedDisk", {{"id", disk_id}, {"storageAccountType", sku}}}});
  }

  Json osp = p.value("osProfile", Json::object());
  RETURN_IF_ERROR(api::RejectUnknownKeys(osp, {"computerName", "customData", "adminUsername"},
                                         "properties.osProfile"));
  ASSIGN_OR_RETURN(std::string computer, api::GetString(osp, "computerName", id.name()));
  RETURN_IF_ERROR(ValidateComputerName(computer));
  ASSIGN_OR_RETURN(plan.custom_data, api::GetString(osp, "customData", ""));
  if (plan.custom_data.size() > 64 * 1024)
    return InvalidArgument("customData is larger than 64 KiB.", "properties.osProfile.customData");

  // Network interfaces: existing NICs, one primary, as many as the size allows.
  Json np = p.value("networkProfile", Json::object());
  if (!np.is_object())
    return InvalidArgument("'networkProfile' must be an object.", "properties.networkProfile");
  RETURN_IF_ERROR(api::RejectUnknownKeys(np, {"networkInterfaces"}, "properties.networkProfile"));
  Json nics = np.value("networkInterfaces", Json::array());
  if (!nics.is_array())
    return InvalidArgument("'networkInterfaces' must be an array.",
                           "properties.networkProfile.networkInterfaces");
  if (static_cast<int>(nics.size()) > plan.size.max_nics)
    return InvalidArgument("The VM size '" + plan.size.name + "' allows at most " +
                               std::to_string(plan.size.max_nics) + " network interfaces; " +
                               std::to_string(nics.size()) + " were given.",
                           "properties.networkProfile.networkInterfaces",
                           "NetworkInterfaceCountExceeded");
  Json nics_out = Json::array();
  std::vector<std::string> nic_ids;
  int primaries = 0;
  std::set<std::string> seen_nics;
  for (size_t i = 0; i < nics.size(); ++i) {
    std::string where = "properties.networkProfile.networkInterfaces[" + std::to_string(i) + "]";
    const Json& n = nics[i];
    if (!n.is_object()) return InvalidArgument("Each network interface must be an object.", where);
    RETURN_IF_ERROR(api::RejectUnknownKeys(n, {"id", "properties"}, where));
    ASSIGN_OR_RETURN(std::string nic_id, api::GetString(n, "id"));
    Json np2 = n.value("properties", Json::object());
    RETURN_IF_ERROR(api::RejectUnknownKeys(np2, {"primary", "deleteOption"}, where + ".properties"));
    if (np2.contains("primary") && !np2["primary"].is_boolean())
      return InvalidArgument("'primary' must be true or false.", where + ".properties.primary");
    bool primary = np2.value("primary", nics.size() == 1);
    primaries += primary ? 1 : 0;
    ASSIGN_OR_RETURN(std::string del, api::GetString(np2, "deleteOption", "Detach"));
    if (!EqualsIgnoreCase(del, "Delete") && !EqualsIgnoreCase(del, "Detach"))
      return InvalidArgument("deleteOption must be Delete or Detach.", where + ".properties.deleteOption");
    if (!seen_nics.insert(ToLower(nic_id)).second)
      return InvalidArgument("Network interface '" + nic_id + "' is listed twice.", where);
    nic_ids.push_back(nic_id);
    nics_out.push_back({{"id", nic_id},
                        {"properties",
                         {{"primary", primary},
                          {"deleteOption", EqualsIgnoreCase(del, "Delete") ? "Delete" : "Detach"}}}});
  }
  if (!nics.empty() && primaries != 1)
    return InvalidArgument("Exactly one network interface of a VM must be primary (" +
                               std::to_string(primaries) + " are).",
                           "properties.networkProfile.networkInterfaces",
                           "VmPrimaryNicRequired");
  if (!nic_ids.empty()) {
    ASSIGN_OR_RETURN(auto plugs, nics_->Resolve(nic_ids, id.ToString()));
    for (size_t i = 0; i < plugs.size(); ++i) {
      nics_out[i]["id"] = plugs[i].nic_id;  // as stored (its case)
      plan.nic_keys.push_back(ToLower(plugs[i].nic_id));
    }
  }
  if (existing && PowerState(*existing) == "running") {
    // Other NICs are plugged and unplugged while the VM runs; the primary one is the guest's
    // first interface and changes only while it is stopped.
    std::vector<std::string> before = NicIds(existing->body["properties"]);
    std::string primary_before = before.empty() ? "" : ToLower(before[0]);
    std::string primary_after;
    for (auto& n : nics_out)
      if (n["properties"].value("primary", false)) primary_after = ToLower(n.value("id", ""));
    if (primary_before != primary_after)
      return Conflict("VM '" + id.name() + "' must be stopped or deallocated to change its "
                      "primary network interface.",
                      "properties.networkProfile", "OperationNotAllowed");
  }

  plan.properties = {
      {"networkProfile", {{"networkInterfaces", nics_out}}},
      {"hardwareProfile", {{"vmSize", plan.size.name}}},
      {"storageProfile",
       {{"imageReference", {{"id", plan.image.id}}}, {"osDisk", os_out}, {"dataDisks", dd_out}}},
      {"osProfile", {{"computerName", computer}}}};
  return plan;
}

}  // namespace stratus::compute
