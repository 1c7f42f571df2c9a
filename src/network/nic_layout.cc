#include "network/nic_layout.h"

namespace stratus::network {

namespace {

Result<std::string> Text(const Json& j, const char* member, bool required) {
  auto it = j.find(member);
  if (it == j.end() || it->is_null()) {
    if (required)
      return InvalidArgument(std::string("A recorded network interface has no '") + member + "'.",
                             member);
    return std::string();
  }
  if (!it->is_string())
    return InvalidArgument(std::string("'") + member + "' of a recorded network interface is not "
                           "a string.", member);
  return it->get<std::string>();
}

bool Flag(const Json& j, const char* member) {
  auto it = j.find(member);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

}  // namespace

Json ToJson(const NicLayout& nic) {
  Json configs = Json::array();
  for (auto& c : nic.ip_configs) {
    Json cj = {{"name", c.name},
               {"primary", c.primary},
               {"subnet", c.subnet_id},
               {"privateIPAddress", c.private_ip},
               {"privateIPAllocationMethod", c.private_ip_method}};
    if (!c.public_ip_id.empty())
      cj["publicIPAddress"] = {{"id", c.public_ip_id},
                               {"ipAddress", c.public_ip_address},
                               {"publicIPAllocationMethod", c.public_ip_method},
                               {"sku", c.public_ip_sku}};
    configs.push_back(std::move(cj));
  }
  Json out = {{"id", nic.id},
              {"name", nic.name},
              {"primary", nic.primary},
              {"macAddress", nic.mac},
              {"enableIPForwarding", nic.ip_forwarding},
              {"ipConfigurations", configs}};
  if (!nic.nsg_id.empty()) out["networkSecurityGroup"] = nic.nsg_id;
  return out;
}

Json ToJson(const std::vector<NicLayout>& nics) {
  Json out = Json::array();
  for (auto& n : nics) out.push_back(ToJson(n));
  return out;
}

Result<NicLayout> NicLayoutFromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgument("A recorded network interface is not an object.", "");
  NicLayout n;
  ASSIGN_OR_RETURN(n.id, Text(j, "id", true));
  ASSIGN_OR_RETURN(n.name, Text(j, "name", false));
  ASSIGN_OR_RETURN(n.mac, Text(j, "macAddress", false));
  ASSIGN_OR_RETURN(n.nsg_id, Text(j, "networkSecurityGroup", false));
  n.primary = Flag(j, "primary");
  n.ip_forwarding = Flag(j, "enableIPForwarding");
  auto configs = j.find("ipConfigurations");
  if (configs == j.end() || !configs->is_array() || configs->empty())
    return InvalidArgument("Recorded network interface '" + n.id + "' has no IP configuration.",
                           "ipConfigurations");
  for (auto& c : *configs) {
    if (!c.is_object())
      return InvalidArgument("An IP configuration of recorded network interface '" + n.id +
                                 "' is not an object.",
                             "ipConfigurations");
    IpConfigLayout l;
    ASSIGN_OR_RETURN(l.name, Text(c, "name", true));
    ASSIGN_OR_RETURN(l.subnet_id, Text(c, "subnet", true));
    ASSIGN_OR_RETURN(l.private_ip, Text(c, "privateIPAddress", false));
    ASSIGN_OR_RETURN(l.private_ip_method, Text(c, "privateIPAllocationMethod", false));
    l.primary = Flag(c, "primary");
    auto pip = c.find("publicIPAddress");
    if (pip != c.end() && pip->is_object()) {
      ASSIGN_OR_RETURN(l.public_ip_id, Text(*pip, "id", true));
      ASSIGN_OR_RETURN(l.public_ip_address, Text(*pip, "ipAddress", false));
      ASSIGN_OR_RETURN(l.public_ip_method, Text(*pip, "publicIPAllocationMethod", false));
      ASSIGN_OR_RETURN(l.public_ip_sku, Text(*pip, "sku", false));
    }
    n.ip_configs.push_back(std::move(l));
  }
  return n;
}

Result<std::vector<NicLayout>> NicLayoutsFromJson(const Json& j) {
  std::vector<NicLayout> out;
  if (j.is_null()) return out;
  if (!j.is_array()) return InvalidArgument("Recorded network interfaces are not a list.", "");
  for (auto& n : j) {
    ASSIGN_OR_RETURN(NicLayout l, NicLayoutFromJson(n));
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace stratus::network
