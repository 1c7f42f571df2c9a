#include "recovery/service/records.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "compute/vm_service.h"
#include "core/clock.h"
#include "network/nic_layout.h"

namespace stratus::recovery::service {

void UpdateProperties(store::Store* store, const ResourceId& id,
                      const std::function<void(Json& properties)>& fn) {
  auto rec = store->Get(id.Key());
  if (!rec.ok()) return;
  fn(rec->body["properties"]);
  auto st = store->Put(*rec);
  if (!st.ok()) spdlog::warn("updating {}: {}", id.ToString(), st.status().ToString());
}

Result<policy::BackupPolicy> PolicyOf(store::Store* store, const store::Record& item) {
  std::string pid = item.body["properties"].value("policyId", "");
  ASSIGN_OR_RETURN(ResourceId p, ResourceId::Parse(pid));
  auto rec = store->Get(p.Key());
  if (!rec.ok())
    return NotFound("Backup policy '" + pid + "' was not found.", pid, "PolicyNotFound");
  Json props = rec->body["properties"];
  props.erase("provisioningState");
  return policy::ParseBackupPolicy(props);
}

void StampJobEnd(Json& properties, int64_t started_ms, int64_t now_ms) {
  properties["endTime"] = FormatIso8601(now_ms);
  properties["durationMs"] = now_ms - started_ms;
  properties["duration"] = std::to_string((now_ms - started_ms) / 1000.0).substr(0, 6) + "s";
}

std::string DiskKeyName(int lun) { return lun < 0 ? "osdisk" : "lun" + std::to_string(lun); }

Json VmConfigOf(const store::Record& vm) {
  const Json& sp = vm.body["properties"]["storageProfile"];
  Json disks_cfg = Json::array();
  for (auto& d : sp["dataDisks"])
    disks_cfg.push_back({{"lun", d.value("lun", 0)},
                         {"name", d.value("name", "")},
                         {"sku", d["managedDisk"].value("storageAccountType", "Standard_LRS")},
                         {"diskSizeGB", d.value("diskSizeGB", 1)}});
  return {{"vmId", vm.body.value("id", "")},
          {"vmSize", vm.body["properties"]["hardwareProfile"].value("vmSize", "")},
          {"imageReference", sp["imageReference"].value("id", "")},
          {"osDisk",
           {{"name", sp["osDisk"].value("name", "")},
            {"sku", sp["osDisk"]["managedDisk"].value("storageAccountType", "Standard_LRS")},
            {"diskSizeGB", sp["osDisk"].value("diskSizeGB", 1)}}},
          {"dataDisks", disks_cfg},
          {"computerName", vm.body["properties"]["osProfile"].value("computerName", "")},
          {"tags", vm.body.value("tags", Json::object())}};
}


Json VmConfigWithNetwork(const store::Record& vm, network::NetworkService* networks,
                         bool with_vnets) {
  Json cfg = VmConfigOf(vm);
  if (!networks) return cfg;
  std::vector<std::string> nic_ids = compute::VmService::NicIds(vm.body["properties"]);
  if (nic_ids.empty()) return cfg;
  // A NIC that cannot be read fails nothing (the disks matter most): the others are recorded
  // and the record says which it lacks.
  std::vector<std::string> missing;
  auto layouts = networks->Layouts(nic_ids, &missing);
  if (!layouts.ok()) {
    spdlog::warn("VM {}: its network interfaces cannot be read: {}", vm.body.value("id", ""),
                 layouts.status().ToString());
    cfg["networkInterfacesMissing"] = nic_ids;
    return cfg;
  }
  cfg["networkInterfaces"] = network::ToJson(*layouts);
  if (!missing.empty()) {
    cfg["networkInterfacesMissing"] = missing;
    spdlog::warn("VM {}: {} of its network interfaces could not be read", vm.body.value("id", ""),
                 missing.size());
  }
  if (with_vnets) {
    std::vector<std::string> subnets;
    for (auto& n : *layouts)
      for (auto& c : n.ip_configs) subnets.push_back(c.subnet_id);
    cfg["virtualNetworks"] = networks->VnetLayouts(subnets);
  }
  return cfg;
}

}  // namespace stratus::recovery::service
