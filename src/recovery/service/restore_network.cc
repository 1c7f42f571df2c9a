#include "recovery/service/restore_network.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <set>
#include <vector>

#include "api/resource_util.h"
#include "core/crash_point.h"
#include "network/nic_layout.h"

namespace stratus::recovery::service {

namespace {

constexpr char kProfile[] = "networkProfile";

ResourceId NetworkResource(const ResourceId& vm, const char* type, const std::string& name) {
  return ResourceId::Resource(vm.subscription(), vm.resource_group(), "Stratus.Network", type,
                              name);
}

Status Prefixed(const Status& st, const std::string& prefix, const std::string& suffix = "") {
  return Status(st.code(), st.arm_code(), prefix + st.message() + suffix, st.target());
}

Status CheckBool(const Json& obj, const char* member, const std::string& where) {
  if (obj.contains(member) && !obj[member].is_boolean())
    return InvalidArgument(std::string("'") + member + "' must be true or false.",
                           where + "." + member);
  return Status::Ok();
}

Result<Json> ObjectMember(const Json& obj, const char* member, const std::string& where) {
  Json v = obj.value(member, Json::object());
  if (!v.is_object())
    return InvalidArgument(std::string("'") + member + "' must be an object.",
                           where + "." + member);
  return v;
}

Result<Json> ArrayMember(const Json& obj, const char* member, const std::string& where) {
  Json v = obj.value(member, Json::array());
  if (!v.is_array())
    return InvalidArgument(std::string("'") + member + "' must be a list.", where + "." + member);
  return v;
}

Result<std::string> DeleteOption(const Json& props, const std::string& where, const char* dflt) {
  ASSIGN_OR_RETURN(std::string del, api::GetString(props, "deleteOption", dflt));
  if (EqualsIgnoreCase(del, "Delete")) return std::string("Delete");
  if (EqualsIgnoreCase(del, "Detach")) return std::string("Detach");
  return InvalidArgument("deleteOption must be Delete or Detach.", where + ".deleteOption");
}

Json EmptyPlan() {
  return {{"nics", Json::array()}, {"publicIps", Json::array()}, {"notes", Json::array()}};
}

}  // namespace

Result<Json> RestoreNetwork::Plan(const Json& request, const Json& recorded, const ResourceId& vm,
                                  const compute::VmSize& size) {
  const bool given = request.contains(kProfile) && !request[kProfile].is_null();
  if (given && !request[kProfile].is_object())
    return InvalidArgument("'networkProfile' must be an object.", kProfile);
  if (!networks_) {
    Json plan = EmptyPlan();
    if (given && (!request[kProfile].value("networkInterfaces", Json::array()).empty() ||
                  !request[kProfile].value("networkInterfaceConfigurations", Json::array()).empty()))
      return InvalidArgument("This region has no networking: a restored VM cannot get network "
                             "interfaces.",
                             kProfile, "FeatureNotAvailable");
    if (!given && recorded.is_array() && !recorded.empty())
      plan["notes"].push_back("This region has no networking: the VM is restored without the " +
                              std::to_string(recorded.size()) + " network interface(s) it had.");
    return plan;
  }
  Json plan;
  if (given) {
    ASSIGN_OR_RETURN(plan, Explicit(request[kProfile], vm));
  } else {
    ASSIGN_OR_RETURN(plan, LikeRecorded(recorded, vm));
  }
  RETURN_IF_ERROR(Check(plan, vm, size, given));
  return plan;
}

Result<Json> RestoreNetwork::Explicit(const Json& profile, const ResourceId& vm) {
  // networkApiVersion (Azure's clients send it with networkInterfaceConfigurations) is taken
  // and ignored: the NICs are Stratus.Network's of this region.
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      profile, {"networkInterfaces", "networkInterfaceConfigurations", "networkApiVersion"},
      kProfile));
  if (profile.contains("networkApiVersion") && !profile["networkApiVersion"].is_string())
    return InvalidArgument("'networkApiVersion' must be a string.",
                           std::string(kProfile) + ".networkApiVersion");
  Json plan = EmptyPlan();
  ASSIGN_OR_RETURN(Json existing, ArrayMember(profile, "networkInterfaces", kProfile));
  for (size_t i = 0; i < existing.size(); ++i) {
    std::string where = std::string(kProfile) + ".networkInterfaces[" + std::to_string(i) + "]";
    const Json& n = existing[i];
    if (!n.is_object()) return InvalidArgument("Each network interface must be an object.", where);
    RETURN_IF_ERROR(api::RejectUnknownKeys(n, {"id", "properties"}, where));
    ASSIGN_OR_RETURN(std::string id, api::GetString(n, "id"));
    ASSIGN_OR_RETURN(Json props, ObjectMember(n, "properties", where));
    RETURN_IF_ERROR(api::RejectUnknownKeys(props, {"primary", "deleteOption"}, where + ".properties"));
    RETURN_IF_ERROR(CheckBool(props, "primary", where + ".properties"));
    ASSIGN_OR_RETURN(std::string del, DeleteOption(props, where + ".properties", "Detach"));
    plan["nics"].push_back({{"id", id},
                            {"primary", props.value("primary", Json(nullptr))},
                            {"deleteOption", del},
                            {"create", false},
                            {"where", where}});
  }
  ASSIGN_OR_RETURN(Json configs, ArrayMember(profile, "networkInterfaceConfigurations", kProfile));
  for (size_t i = 0; i < configs.size(); ++i) {
    std::string where =
        std::string(kProfile) + ".networkInterfaceConfigurations[" + std::to_string(i) + "]";
    const Json& c = configs[i];
    if (!c.is_object())
      return InvalidArgument("Each network interface configuration must be an object.", where);
    RETURN_IF_ERROR(api::RejectUnknownKeys(c, {"name", "properties"}, where));
    ASSIGN_OR_RETURN(std::string name, api::GetString(c, "name"));
    RETURN_IF_ERROR(ValidateResourceName(name, "network interface", 80));
    ASSIGN_OR_RETURN(Json props, ObjectMember(c, "properties", where));
    const std::string pw = where + ".properties";
    RETURN_IF_ERROR(api::RejectUnknownKeys(
        props,
        {"primary", "enableIPForwarding", "deleteOption", "networkSecurityGroup",
         "ipConfigurations", "macAddress"},
        pw));
    RETURN_IF_ERROR(CheckBool(props, "primary", pw));
    RETURN_IF_ERROR(CheckBool(props, "enableIPForwarding", pw));
    ASSIGN_OR_RETURN(std::string del, DeleteOption(props, pw, "Delete"));
    ASSIGN_OR_RETURN(Json ipcs, ArrayMember(props, "ipConfigurations", pw));
    if (ipcs.empty())
      return InvalidArgument("A network interface needs at least one IP configuration.",
                             pw + ".ipConfigurations", "MissingParameter");
    Json out = Json::array();
    for (size_t k = 0; k < ipcs.size(); ++k) {
      std::string w2 = pw + ".ipConfigurations[" + std::to_string(k) + "]";
      const Json& ic = ipcs[k];
      if (!ic.is_object()) return InvalidArgument("Each IP configuration must be an object.", w2);
      RETURN_IF_ERROR(api::RejectUnknownKeys(ic, {"name", "properties"}, w2));
      ASSIGN_OR_RETURN(Json icp, ObjectMember(ic, "properties", w2));
      RETURN_IF_ERROR(api::RejectUnknownKeys(
          icp,
          {"subnet", "primary", "privateIPAddress", "privateIPAllocationMethod", "publicIPAddress",
           "publicIPAddressConfiguration"},
          w2 + ".properties"));
      Json oc = ic;
      if (icp.contains("publicIPAddressConfiguration")) {
        std::string w3 = w2 + ".properties.publicIPAddressConfiguration";
        if (icp.contains("publicIPAddress"))
          return InvalidArgument(
              "Give an IP configuration either publicIPAddress (an existing one) or "
              "publicIPAddressConfiguration (a new one), not both.",
              w3);
        ASSIGN_OR_RETURN(Json pc, ObjectMember(icp, "publicIPAddressConfiguration", w2 + ".properties"));
        RETURN_IF_ERROR(api::RejectUnknownKeys(pc, {"name", "sku", "properties"}, w3));
        ASSIGN_OR_RETURN(std::string pname, api::GetString(pc, "name"));
        RETURN_IF_ERROR(ValidateResourceName(pname, "public IP address", 80));
        ResourceId pid = NetworkResource(vm, "publicIPAddresses", pname);
        Json pbody = {{"location", ctx_.region}};
        if (pc.contains("sku")) pbody["sku"] = pc["sku"];
        if (pc.contains("properties")) {
          ASSIGN_OR_RETURN(Json pp, ObjectMember(pc, "properties", w3));
          // A public IP a restore makes outlives the VM (Azure's default, Detach).
          ASSIGN_OR_RETURN(std::string pdel, api::GetString(pp, "deleteOption", "Detach"));
          if (!EqualsIgnoreCase(pdel, "Detach"))
            return InvalidArgument("A restored VM's new public IP outlives it: deleteOption must "
                                   "be Detach (delete the public IP yourself when it is no longer "
                                   "needed).",
                                   w3 + ".properties.deleteOption");
          pp.erase("deleteOption");
          pbody["properties"] = pp;
        }
        plan["publicIps"].push_back({{"id", pid.ToString()}, {"body", pbody}, {"where", w3}});
        icp.erase("publicIPAddressConfiguration");
        icp["publicIPAddress"] = {{"id", pid.ToString()}};
      }
      oc["properties"] = icp;
      out.push_back(oc);
    }
    Json nic_props = {{"ipConfigurations", out}};
    if (props.contains("enableIPForwarding"))
      nic_props["enableIPForwarding"] = props["enableIPForwarding"];
    if (props.contains("networkSecurityGroup"))
      nic_props["networkSecurityGroup"] = props["networkSecurityGroup"];
    if (props.contains("macAddress")) nic_props["macAddress"] = props["macAddress"];
    plan["nics"].push_back(
        {{"id", NetworkResource(vm, "networkInterfaces", name).ToString()},
         {"primary", props.value("primary", Json(nullptr))},
         {"deleteOption", del},
         {"create", true},
         {"body", {{"location", ctx_.region}, {"properties", nic_props}}},
         {"where", where}});
  }
  return plan;
}

Result<Json> RestoreNetwork::LikeRecorded(const Json& recorded, const ResourceId& vm) {
  auto layouts = network::NicLayoutsFromJson(recorded);
  if (!layouts.ok())
    return Prefixed(layouts.status(), "The recovery point's network interfaces cannot be read (",
                    "); pass a networkProfile.");
  Json plan = EmptyPlan();
  for (size_t i = 0; i < layouts->size(); ++i) {
    const network::NicLayout& n = (*layouts)[i];
    ResourceId id = NetworkResource(vm, "networkInterfaces", vm.name() + "-nic" + std::to_string(i));
    Json ipcs = Json::array();
    for (auto& c : n.ip_configs) {
      Json cp = {{"subnet", {{"id", c.subnet_id}}},
                 {"primary", c.primary},
                 {"privateIPAllocationMethod",
                  EqualsIgnoreCase(c.private_ip_method, "Static") ? "Static" : "Dynamic"}};
      if (!c.private_ip.empty()) {
        cp["privateIPAddress"] = c.private_ip;
        // Is the recorded address still free? (A probe of that one configuration.)
        Json probe = {{"location", ctx_.region},
                      {"properties",
                       {{"ipConfigurations",
                         {{{"name", c.name},
                           {"properties",
                            {{"subnet", {{"id", c.subnet_id}}},
                             {"privateIPAllocationMethod", "Static"},
                             {"privateIPAddress", c.private_ip}}}}}}}}};
        Status st = networks_->CheckNic(id, probe);
        const std::string& code = st.arm_code();
        if (code == "PrivateIPAddressInUse" || code == "PrivateIPAddressNotInSubnet" ||
            code == "PrivateIPAddressInReservedRange") {
          cp["privateIPAllocationMethod"] = "Dynamic";  // the next free address
          cp.erase("privateIPAddress");
          plan["notes"].push_back("Network interface " + id.name() + " (was " + n.name +
                                  "), IP configuration " + c.name + ": " + c.private_ip +
                                  " cannot be had again (" + code +
                                  "); it gets the next free address of its subnet, Dynamic.");
        }
      }
      if (!c.public_ip_id.empty()) {
        auto holder = networks_->PublicIpHolder(c.public_ip_id);
        auto pip = ResourceId::Parse(c.public_ip_id);
        std::string pip_name = (pip.ok() ? pip->name() : c.public_ip_id) + " (" +
                               c.public_ip_address + ")";
        if (!holder.ok()) {
          plan["notes"].push_back("Public IP " + pip_name + " of " + n.name +
                                  " no longer exists: " + id.name() + " has none.");
        } else if (!holder->empty()) {
          auto user = ResourceId::Parse(*holder);
          plan["notes"].push_back("Public IP " + pip_name + " is used by network interface " +
                                  (user.ok() ? user->name() : *holder) + ": " + id.name() +
                                  " has none.");
        } else {
          cp["publicIPAddress"] = {{"id", c.public_ip_id}};
          if (EqualsIgnoreCase(c.public_ip_method, "Dynamic"))
            plan["notes"].push_back("Public IP " + pip_name + " is Dynamic: it gave its address "
                                    "back when no NIC used it, so " + id.name() +
                                    " may get another one (make it Static to keep an address).");
        }
      }
      ipcs.push_back({{"name", c.name}, {"properties", cp}});
    }
    Json props = {{"enableIPForwarding", n.ip_forwarding}, {"ipConfigurations", ipcs}};
    if (!n.nsg_id.empty()) props["networkSecurityGroup"] = {{"id", n.nsg_id}};
    plan["nics"].push_back({{"id", id.ToString()},
                            {"primary", n.primary},
                            {"deleteOption", "Delete"},
                            {"create", true},
                            {"body", {{"location", ctx_.region}, {"properties", props}}},
                            {"recorded", n.name}});
  }
  return plan;
}

Status RestoreNetwork::Check(Json& plan, const ResourceId& vm, const compute::VmSize& size,
                             bool explicit_plan) {
  Json& nics = plan["nics"];
  if (static_cast<int>(nics.size()) > size.max_nics)
    return InvalidArgument("VM size '" + size.name + "' allows at most " +
                               std::to_string(size.max_nics) + " network interfaces; the restore "
                               "has " + std::to_string(nics.size()) + ".",
                           kProfile, "NetworkInterfaceCountExceeded");
  int primaries = 0;
  for (auto& n : nics) {
    if (n["primary"].is_null()) n["primary"] = nics.size() == 1;
    primaries += n["primary"].get<bool>() ? 1 : 0;
  }
  if (!nics.empty() && primaries != 1)
    return InvalidArgument("Exactly one network interface of a VM must be primary (" +
                               std::to_string(primaries) + " are).",
                           kProfile, "VmPrimaryNicRequired");
  // New public IPs: names free and distinct, bodies valid.
  std::set<std::string> new_pips, names;
  for (auto& p : plan["publicIps"]) {
    ASSIGN_OR_RETURN(ResourceId id, ResourceId::Parse(p.value("id", "")));
    std::string where = p.value("where", kProfile);
    if (!new_pips.insert(id.Key()).second)
      return InvalidArgument("Public IP address '" + id.name() + "' is asked for twice.", where,
                             "DuplicateResourceName");
    if (ctx_.store->Get(id.Key()).ok())
      return Conflict("Public IP address '" + id.name() + "' already exists in resource group '" +
                          id.resource_group() + "'.",
                      where, "ResourceExists");
    Status st = networks_->CheckPublicIp(id, p["body"]);
    if (!st.ok()) return Prefixed(st, where + ": ");
  }
  // NICs.
  std::set<std::string> addresses, used_pips, existing_pips;
  for (auto& n : nics) {
    ASSIGN_OR_RETURN(ResourceId id, ResourceId::Parse(n.value("id", "")));
    std::string where = n.value("where", kProfile);
    if (!names.insert(id.Key()).second)
      return InvalidArgument("Network interface '" + id.name() + "' is listed twice.", where,
                             "DuplicateResourceName");
    if (!n.value("create", false)) {
      auto plugs = networks_->Resolve({id.ToString()}, vm.ToString());
      if (!plugs.ok()) return Prefixed(plugs.status(), where + ": ");
      n["id"] = plugs->front().nic_id;
      continue;
    }
    const std::string what =
        explicit_plan ? where + ": "
                      : "The recovery point's network interface '" + n.value("recorded", "") +
                            "' cannot be made again as '" + id.name() + "': ";
    const std::string advice =
        explicit_plan ? "" : " Pass a networkProfile to choose the restored VM's interfaces.";
    if (ctx_.store->Get(id.Key()).ok())
      return Conflict(what + "network interface '" + id.name() + "' already exists." + advice,
                      where, "ResourceExists");
    // Checked without the public IPs the restore makes (they do not exist yet).
    Json body = n["body"];
    // Members read with their types checked: a malformed one is left for CheckNic to name.
    auto text = [](const Json& o, const char* k) {
      auto it = o.find(k);
      return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    for (auto& c : body["properties"]["ipConfigurations"]) {
      if (!c.is_object() || !c.contains("properties") || !c["properties"].is_object()) continue;
      Json& cp = c["properties"];
      std::string subnet =
          cp.contains("subnet") && cp["subnet"].is_object() ? ToLower(text(cp["subnet"], "id")) : "";
      std::string ip = text(cp, "privateIPAddress");
      std::string method = text(cp, "privateIPAllocationMethod");
      if (!ip.empty() && !EqualsIgnoreCase(method, "Dynamic") &&
          !addresses.insert(subnet + " " + ip).second)
        return InvalidArgument(what + "address " + ip + " is asked for twice in one subnet.",
                               where, "PrivateIPAddressInUse");
      if (!cp.contains("publicIPAddress") || !cp["publicIPAddress"].is_object()) continue;
      ASSIGN_OR_RETURN(ResourceId pid, ResourceId::Parse(text(cp["publicIPAddress"], "id")));
      if (!used_pips.insert(pid.Key()).second)
        return InvalidArgument(what + "public IP address '" + pid.name() + "' is asked for twice.",
                               where, "PublicIPAddressInUse");
      if (new_pips.count(pid.Key())) cp.erase("publicIPAddress");
    }
    Status st = networks_->CheckNic(id, body);
    if (!st.ok()) return Prefixed(st, what, advice);
    for (auto& key : used_pips)
      if (!new_pips.count(key)) existing_pips.insert(key);
  }
  // Each check above saw one resource; together the plan's public IPs need an address each
  // (the new ones are all used by its NICs: Static or Dynamic, they take one), and so does an
  // existing one without an address that a NIC of the plan will use.
  std::vector<std::string> existing_ids;
  for (auto& n : nics) {
    const Json* configs = n.value("create", false) ? JsonPath(n, "body.properties.ipConfigurations")
                                                   : nullptr;
    if (!configs || !configs->is_array()) continue;
    for (auto& c : *configs) {
      const Json* ref = c.is_object() ? JsonPath(c, "properties.publicIPAddress.id") : nullptr;
      if (ref && ref->is_string()) {
        auto pid = ResourceId::Parse(ref->get<std::string>());
        if (pid.ok() && existing_pips.count(pid->Key())) existing_ids.push_back(pid->ToString());
      }
    }
  }
  if (Status st = networks_->CheckPoolHolds(static_cast<uint32_t>(new_pips.size()), existing_ids);
      !st.ok())
    return Prefixed(st, "The restore's public IP addresses: ");
  for (auto& n : nics) n.erase("where");
  for (auto& p : plan["publicIps"]) p.erase("where");
  return Status::Ok();
}

std::string RestoreNetwork::Creator(const std::string& caller, const std::string& job) {
  return caller + " (restore " + job + ")";
}

Status RestoreNetwork::Make(const Json& plan, const std::string& creator) {
  if (!networks_) return Status::Ok();
  store::WriteCondition create_only;
  create_only.must_not_exist = true;
  Json pips = Json::object();  // key -> body of the public IPs still to make
  for (auto& p : plan.value("publicIps", Json::array())) {
    ASSIGN_OR_RETURN(ResourceId id, ResourceId::Parse(p.value("id", "")));
    pips[id.Key()] = {{"id", id.ToString()}, {"body", p["body"]}};
  }
  auto make_pip = [&](const std::string& key) -> Status {
    auto it = pips.find(key);
    if (it == pips.end()) return Status::Ok();
    ASSIGN_OR_RETURN(ResourceId id, ResourceId::Parse((*it)["id"].get<std::string>()));
    auto w = networks_->PutPublicIp(id, (*it)["body"], creator, create_only);
    if (!w.ok()) return Prefixed(w.status(), "Public IP address '" + id.name() + "': ");
    if (!w->created)
      return Conflict("Public IP address '" + id.name() + "' already exists.", id.ToString(),
                      "ResourceExists");
    CrashPoint("restore.public-ip-made");
    pips.erase(it);
    return Status::Ok();
  };
  // Each NIC after its new public IPs, one NIC at a time: first those that ask for addresses
  // (so that a NIC taking the next free address cannot take one of theirs), then the others.
  auto asks_all = [](const Json& n) {
    for (auto& c : n["body"]["properties"].value("ipConfigurations", Json::array()))
      if (!c.is_object() || !c.value("properties", Json::object()).contains("privateIPAddress"))
        return false;
    return true;
  };
  std::vector<Json> order;
  for (bool asking : {true, false})
    for (auto& n : plan.value("nics", Json::array()))
      if (n.value("create", false) && asks_all(n) == asking) order.push_back(n);
  for (auto& n : order) {
    ASSIGN_OR_RETURN(ResourceId id, ResourceId::Parse(n.value("id", "")));
    for (auto& c : n["body"]["properties"].value("ipConfigurations", Json::array())) {
      auto ref = c["properties"].value("publicIPAddress", Json::object());
      auto pid = ResourceId::Parse(ref.value("id", ""));
      if (pid.ok()) RETURN_IF_ERROR(make_pip(pid->Key()));
    }
    auto w = networks_->PutNic(id, n["body"], creator, create_only);
    if (!w.ok()) return Prefixed(w.status(), "Network interface '" + id.name() + "': ");
    if (!w->created)
      return Conflict("Network interface '" + id.name() + "' already exists.", id.ToString(),
                      "ResourceExists");
    CrashPoint("restore.nic-made");
  }
  while (!pips.empty()) RETURN_IF_ERROR(make_pip(pips.begin().key()));
  return Status::Ok();
}

void RestoreNetwork::RemoveMade(const Json& plan, const std::string& creator) {
  if (!networks_ || !plan.is_object()) return;
  auto remove = [&](const Json& list, bool nic) {
    if (!list.is_array()) return;
    for (auto& r : list) {
      if (!r.is_object() || (nic && !r.value("create", false))) continue;
      auto id = ResourceId::Parse(r.value("id", ""));
      if (!id.ok()) continue;
      auto rec = ctx_.store->Get(id->Key());
      if (!rec.ok()) continue;
      // Only what this restore made: a resource of that name made by anyone else stays.
      const Json& sys = rec->body.value("systemData", Json::object());
      if (!sys.is_object() || sys.value("createdBy", "") != creator) continue;
      Status st = nic ? networks_->DeleteNic(*id) : networks_->DeletePublicIp(*id);
      if (!st.ok() && st.code() != StatusCode::kNotFound)
        spdlog::warn("restore: could not remove {} it made: {}", id->ToString(), st.ToString());
    }
  };
  remove(plan.value("nics", Json::array()), true);
  remove(plan.value("publicIps", Json::array()), false);
}

Json RestoreNetwork::VmNetworkProfile(const Json& plan) {
  Json list = Json::array();
  for (auto& n : plan.value("nics", Json::array())) {
    Json ref = {{"id", n.value("id", "")},
                {"properties",
                 {{"primary", n.value("primary", false)},
                  {"deleteOption", n.value("deleteOption", "Detach")}}}};
    list.insert(n.value("primary", false) ? list.begin() : list.end(), std::move(ref));
  }
  return {{"networkInterfaces", list}};
}

Json RestoreNetwork::Summary(const Json& plan) {
  Json out = Json::array();
  if (!networks_) return out;
  std::vector<std::string> ids;
  for (auto& n : plan.value("nics", Json::array())) ids.push_back(n.value("id", ""));
  auto layouts = networks_->Layouts(ids);
  if (!layouts.ok()) return out;
  for (auto& n : *layouts) {
    Json configs = Json::array();
    for (auto& c : n.ip_configs) {
      Json cj = {{"name", c.name}, {"privateIPAddress", c.private_ip}};
      if (!c.public_ip_id.empty()) {
        cj["publicIPAddress"] = c.public_ip_address;
        cj["publicIPAddressId"] = c.public_ip_id;
      }
      configs.push_back(std::move(cj));
    }
    out.push_back({{"id", n.id}, {"ipConfigurations", configs}});
  }
  return out;
}

}  // namespace stratus::recovery::service
