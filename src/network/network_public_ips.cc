// NetworkService: public IP addresses (publicIPAddresses/{p}) from the region's pool, their
// association with NICs' IP configurations, and the 1:1 NATs they give a VNET's datapath.
//
// Which public IP a NIC uses is recorded on the NIC (internal "publicIps": config name -> key);
// the address a public IP holds is recorded on the public IP (internal "address"). Which
// addresses of the pool are taken is read from the public IP records themselves.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "api/resource_util.h"
#include "core/uuid.h"
#include "network/kernel_names.h"
#include "network/network_internal.h"
#include "network/network_service.h"

namespace stratus::network {

using namespace internal;

namespace {

constexpr char kPublicIpTypeName[] = "Stratus.Network/publicIPAddresses";

// What a NIC record's IP configurations use: config name -> public IP key. A reference into
// the record (iterating over a temporary copy's items() would dangle).
const Json& PublicIpsOf(const store::Record& nic) {
  static const Json kNone = Json::object();
  auto it = nic.internal.find("publicIps");
  return it != nic.internal.end() && it->is_object() ? *it : kNone;
}

// The NIC of `nics` (other than `except_nic`) whose IP configuration `config` uses public IP
// `pip_key`; nic is nullptr when none does.
struct PublicIpUser {
  const store::Record* nic = nullptr;
  std::string config;
};
PublicIpUser UserOf(const std::vector<store::Record>& nics, const std::string& pip_key,
                    const std::string& except_nic = "") {
  for (auto& n : nics) {
    if (n.key == except_nic) continue;
    for (auto& [cfg, key] : PublicIpsOf(n).items())
      if (key == pip_key) return {&n, cfg};
  }
  return {};
}

// The address a public IP holds ("" for none), in its record and its ARM body.
void SetAddress(store::Record& pip, const std::string& address) {
  pip.internal["address"] = address;
  if (address.empty()) {
    pip.body["properties"].erase("ipAddress");
  } else {
    pip.body["properties"]["ipAddress"] = address;
  }
}

Status NoPool() {
  return InvalidArgument("This region has no public address pool (stratusd --public-pool and "
                         "--uplink).",
                         "properties", "PublicIPAddressPoolNotConfigured");
}

}  // namespace

void NetworkService::ConfigureEdge(EdgeDatapath edge) {
  std::lock_guard<std::mutex> l(mu_);
  auto ns = EdgeNamespace(rid_);
  edge.netns = ns.ok() ? *ns : "";
  edge_ = std::move(edge);
}

Result<Ipv4> NetworkService::AllocatePublicLocked(const std::vector<Ipv4>& also_taken) {
  ASSIGN_OR_RETURN(auto free, FreePublicLocked(1, also_taken));
  return free.front();
}

Status NetworkService::CheckPoolHolds(uint32_t new_addresses,
                                      const std::vector<std::string>& existing) {
  std::lock_guard<std::mutex> l(mu_);
  uint32_t wanted = new_addresses;
  for (auto& id : existing) {
    auto pid = ResourceId::Parse(id);
    if (!pid.ok()) continue;
    auto pip = ctx_.store->Get(pid->Key());
    if (pip.ok() && pip->internal.value("address", "").empty()) ++wanted;
  }
  if (wanted == 0) return Status::Ok();
  return FreePublicLocked(wanted, {}).status();
}

Result<std::vector<Ipv4>> NetworkService::FreePublicLocked(uint32_t count,
                                                          const std::vector<Ipv4>& also_taken) {
  if (!edge_) return NoPool();
  ASSIGN_OR_RETURN(auto pips, ListAll(kPublicIpType, ""));
  std::vector<uint32_t> taken;
  for (auto& p : pips) {
    auto ip = ParseIpv4(p.internal.value("address", ""), "");
    if (ip.ok()) taken.push_back(ip->value);
  }
  for (auto& ip : also_taken) taken.push_back(ip.value);
  std::sort(taken.begin(), taken.end());
  const Ipv4Prefix& pool = edge_->pool;
  uint32_t first = pool.network.value, last = pool.Last().value;
  if (pool.length < 31) {  // not the network and broadcast addresses
    ++first;
    --last;
  }
  std::vector<Ipv4> free;
  for (uint64_t v = first; v <= last && free.size() < count; ++v) {
    uint32_t a = static_cast<uint32_t>(v);
    if (a == edge_->uplink_ip.value || a == edge_->uplink_gateway.value) continue;
    if (!std::binary_search(taken.begin(), taken.end(), a)) free.push_back(Ipv4{a});
  }
  if (free.size() >= count) return free;
  if (count == 1)
    return Conflict("Every address of this region's public pool " + pool.ToString() +
                        " is in use; delete a public IP first.",
                    "properties", "PublicIPAddressPoolExhausted");
  return Conflict("This needs " + std::to_string(count) + " addresses of this region's public "
                      "pool " + pool.ToString() + ", and " + std::to_string(free.size()) +
                      " are free; delete public IPs first.",
                  "properties", "PublicIPAddressPoolExhausted");
}

Result<NetworkService::Written> NetworkService::WritePublicIp(const ResourceId& id,
                                                             const Json& body,
                                                             const std::string& caller,
                                                             const store::WriteCondition& cond,
                                                             bool validate_only) {
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      body, {"location", "tags", "properties", "sku", "zones", "id", "name", "type", "etag",
             "systemData"},
      ""));
  ASSIGN_OR_RETURN(std::string location, api::ValidateLocation(body, ctx_.region));
  RETURN_IF_ERROR(api::ValidateTags(body));
  if (body.contains("zones") && !body["zones"].is_null() &&
      !(body["zones"].is_array() && body["zones"].empty()))
    return InvalidArgument("This region has no availability zones.", "zones",
                           "FeatureNotAvailable");
  Json p = body.value("properties", Json::object());
  if (!p.is_object()) return InvalidArgument("'properties' must be an object.", "properties");
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      p, {"publicIPAllocationMethod", "publicIPAddressVersion", "idleTimeoutInMinutes",
          "ipAddress", "ipConfiguration", "provisioningState", "resourceGuid", "dnsSettings",
          "ipTags"},
      "properties"));
  if (p.contains("dnsSettings") && !p["dnsSettings"].is_null())
    return InvalidArgument("DNS names of public IPs are not available.", "properties.dnsSettings",
                           "FeatureNotAvailable");
  if (p.value("publicIPAddressVersion", "IPv4") != "IPv4")
    return InvalidArgument("Only IPv4 public addresses are available.",
                           "properties.publicIPAddressVersion", "FeatureNotAvailable");
  std::string given_sku;  // "" when the body has none
  if (body.contains("sku")) {
    const Json& s = body["sku"];
    if (!s.is_object() || !s.value("name", Json(nullptr)).is_string())
      return InvalidArgument("'sku' must be {\"name\": \"Basic\" | \"Standard\"}.", "sku.name");
    given_sku = s["name"].get<std::string>();
    if (EqualsIgnoreCase(given_sku, "Basic")) given_sku = "Basic";
    else if (EqualsIgnoreCase(given_sku, "Standard")) given_sku = "Standard";
    else
      return InvalidArgument("sku.name '" + given_sku + "' is not Basic or Standard.", "sku.name",
                             "InvalidSku");
    if (s.contains("tier") && !EqualsIgnoreCase(s.value("tier", ""), "Regional"))
      return InvalidArgument("Only the Regional tier is available.", "sku.tier",
                             "FeatureNotAvailable");
  }
  ASSIGN_OR_RETURN(std::string given_method, api::GetString(p, "publicIPAllocationMethod", ""));
  if (EqualsIgnoreCase(given_method, "Static")) given_method = "Static";
  else if (EqualsIgnoreCase(given_method, "Dynamic")) given_method = "Dynamic";
  else if (!given_method.empty())
    return InvalidArgument("publicIPAllocationMethod must be Static or Dynamic.",
                           "properties.publicIPAllocationMethod");
  int idle = 4;
  if (p.contains("idleTimeoutInMinutes")) {
    if (!p["idleTimeoutInMinutes"].is_number_integer() || p["idleTimeoutInMinutes"] < 4 ||
        p["idleTimeoutInMinutes"] > 30)
      return InvalidArgument("idleTimeoutInMinutes must be a whole number from 4 to 30.",
                             "properties.idleTimeoutInMinutes");
    idle = p["idleTimeoutInMinutes"].get<int>();
  }

  std::lock_guard<std::mutex> l(mu_);
  if (!edge_) return NoPool();
  auto existing = ctx_.store->Get(id.Key());
  // An update without a sku keeps the one it has; a new one is Standard.
  std::string had_sku = existing.ok() ? existing->body["sku"].value("name", "") : "";
  std::string sku = !given_sku.empty() ? given_sku : !had_sku.empty() ? had_sku : "Standard";
  if (!had_sku.empty() && had_sku != sku)
    return InvalidArgument("The sku of a public IP cannot change.", "sku.name",
                           "PublicIPSkuCannotBeChanged");
  std::string method =
      !given_method.empty() ? given_method : sku == "Basic" ? "Dynamic" : "Static";
  if (sku == "Standard" && method == "Dynamic")
    return InvalidArgument("Standard sku public IP '" + id.ToString() +
                               "' must have AllocationMethod set to Static.",
                           "properties.publicIPAllocationMethod",
                           "StandardSkuPublicIPAddressesMustBeStatic");
  std::string requested = p.value("ipAddress", "");
  std::string address = existing.ok() ? existing->internal.value("address", "") : "";
  if (!requested.empty() && requested != address)
    return InvalidArgument("'ipAddress' is assigned from the pool; it cannot be chosen.",
                           "properties.ipAddress", "PublicIPAddressCannotBeChosen");
  // Used by a NIC now?
  ASSIGN_OR_RETURN(auto nics, NicsOfSubscription(id.subscription()));
  PublicIpUser user = UserOf(nics, id.Key());
  bool in_use = user.nic != nullptr;
  if (address.empty() && (method == "Static" || in_use)) {
    ASSIGN_OR_RETURN(Ipv4 ip, AllocatePublicLocked());
    address = ip.ToString();
  }
  if (!address.empty() && method == "Dynamic" && !in_use) address.clear();
  if (validate_only) return Written{existing.ok() ? *existing : store::Record{}, !existing.ok()};

  store::Record rec;
  if (existing.ok()) {
    rec = *existing;
    api::TouchSystemData(rec.body, caller, ctx_.clock->NowMs());
  } else {
    rec.key = id.Key();
    rec.type = kPublicIpType;
    rec.body = api::NewResourceBody(id, location, Json::object(), caller, ctx_.clock->NowMs());
    rec.body["type"] = kPublicIpTypeName;
    rec.body["properties"] = {{"resourceGuid", NewUuid()}};
  }
  rec.body["tags"] = body.value("tags", rec.body.value("tags", Json::object()));
  rec.body["sku"] = {{"name", sku}, {"tier", "Regional"}};
  Json& props = rec.body["properties"];
  props["publicIPAllocationMethod"] = method;
  props["publicIPAddressVersion"] = "IPv4";
  props["idleTimeoutInMinutes"] = idle;
  props["ipTags"] = Json::array();
  props["provisioningState"] = "Succeeded";
  SetAddress(rec, address);
  if (existing.ok() && existing->body == rec.body && existing->internal == rec.internal)
    return Written{*existing, false};
  ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, cond));
  if (in_use) RETURN_IF_ERROR(ConvergeLocked(user.nic->internal.value("vnet", "")));
  return Written{rec, !existing.ok()};
}

Status NetworkService::DeletePublicIp(const ResourceId& id) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
  ASSIGN_OR_RETURN(auto nics, NicsOfSubscription(id.subscription()));
  PublicIpUser user = UserOf(nics, id.Key());
  if (user.nic)
    return Conflict("Public IP address '" + id.name() + "' cannot be deleted: IP configuration '" +
                        user.config + "' of network interface '" +
                        user.nic->body.value("id", "") + "' uses it.",
                    id.ToString(), "PublicIPAddressCannotBeDeleted");
  if (lb_) {
    ASSIGN_OR_RETURN(std::string lb, lb_->PublicIpUser(id.Key()));
    if (!lb.empty())
      return Conflict("Public IP address '" + id.name() +
                          "' cannot be deleted: a frontend of "
                          "load balancer '" +
                          lb + "' uses it.",
                      id.ToString(), "PublicIPAddressCannotBeDeleted");
  }
  return ctx_.store->Delete(rec.key);
}

Json NetworkService::PublicIpView(const store::Record& pip) {
  Json out = api::ToArm(pip);
  out["properties"].erase("ipConfiguration");
  auto id = ResourceId::Parse(pip.body.value("id", ""));
  if (!id.ok()) return out;
  std::lock_guard<std::mutex> l(mu_);
  auto nics = NicsOfSubscription(id->subscription());
  if (!nics.ok()) return out;
  PublicIpUser user = UserOf(*nics, pip.key);
  if (!user.nic) return out;
  auto nic = ResourceId::Parse(user.nic->body.value("id", ""));
  if (nic.ok())
    out["properties"]["ipConfiguration"] = {
        {"id", nic->Child("ipConfigurations", user.config).ToString()}};
  return out;
}

Result<std::string> NetworkService::PublicIpHolder(const std::string& text) {
  std::lock_guard<std::mutex> l(mu_);
  return PublicIpHolderLocked(text);
}

Result<std::string> NetworkService::PublicIpHolderLocked(const std::string& text) {
  ASSIGN_OR_RETURN(ResourceId id, ResourceId::Parse(text));
  auto pip = ctx_.store->Get(id.Key());
  if (!pip.ok() || pip->type != kPublicIpType)
    return NotFound("Public IP address '" + text + "' was not found.", text,
                    "InvalidResourceReference");
  ASSIGN_OR_RETURN(auto nics, NicsOfSubscription(id.subscription()));
  PublicIpUser user = UserOf(nics, pip->key);
  return user.nic ? user.nic->body.value("id", "") : std::string();
}

Result<std::vector<store::Record>> NetworkService::AssociatePublicIpsLocked(
    const ResourceId& nic, const Json& wanted, const Json& before, const std::string& field) {
  ASSIGN_OR_RETURN(auto nics, NicsOfSubscription(nic.subscription()));
  std::vector<store::Record> out;
  std::vector<Ipv4> picked;
  for (auto& [cfg, key_json] : wanted.items()) {
    std::string key = key_json.get<std::string>();
    auto pip = ctx_.store->Get(key);
    if (!pip.ok())
      return NotFound("Public IP address '" + key + "' was not found.", field,
                      "InvalidResourceReference");
    PublicIpUser other = UserOf(nics, key, nic.Key());
    if (other.nic)
      return InvalidArgument("Public IP address '" + pip->body.value("name", "") +
                                 "' is used by IP configuration '" + other.config +
                                 "' of network interface '" + other.nic->body.value("id", "") +
                                 "'.",
                             field, "PublicIPAddressInUse");
    if (lb_) {
      ASSIGN_OR_RETURN(std::string lb, lb_->PublicIpUser(key));
      if (!lb.empty())
        return InvalidArgument("Public IP address '" + pip->body.value("name", "") +
                                   "' is a frontend of load balancer '" + lb + "'.",
                               field, "PublicIPAddressInUse");
    }
    int uses = 0;
    for (auto& [c2, k2] : wanted.items()) uses += k2 == key ? 1 : 0;
    if (uses > 1)
      return InvalidArgument("Public IP address '" + pip->body.value("name", "") +
                                 "' is given to two IP configurations.",
                             field, "PublicIPAddressInUse");
    if (pip->internal.value("address", "").empty()) {
      ASSIGN_OR_RETURN(Ipv4 ip, AllocatePublicLocked(picked));
      picked.push_back(ip);
      SetAddress(*pip, ip.ToString());
      out.push_back(*pip);
    }
  }
  // Dynamic ones no longer used give their address back.
  for (auto& [cfg, key_json] : before.items()) {
    std::string key = key_json.get<std::string>();
    bool still = false;
    for (auto& [c2, k2] : wanted.items()) still = still || k2 == key;
    if (still) continue;
    auto pip = ctx_.store->Get(key);
    if (!pip.ok() || pip->body["properties"].value("publicIPAllocationMethod", "") != "Dynamic")
      continue;
    SetAddress(*pip, "");
    out.push_back(*pip);
  }
  return out;
}

Status NetworkService::ReconcilePublicIpsLocked() {
  ASSIGN_OR_RETURN(auto pips, ListAll(kPublicIpType, ""));
  ASSIGN_OR_RETURN(auto nics, ListAll(kNicType, ""));
  std::set<std::string> used;
  for (auto& n : nics)
    for (auto& [cfg, key] : PublicIpsOf(n).items())
      used.insert(key.get<std::string>());
  for (auto& pip : pips) {
    if (pip.body["properties"].value("publicIPAllocationMethod", "") != "Dynamic") continue;
    bool has = !pip.internal.value("address", "").empty();
    if (has == (used.count(pip.key) > 0)) continue;
    if (has) {
      SetAddress(pip, "");
    } else {
      auto ip = AllocatePublicLocked();
      if (!ip.ok()) {
        spdlog::error("public IP {}: {}", pip.key, ip.status().ToString());
        continue;
      }
      SetAddress(pip, ip->ToString());
    }
    RETURN_IF_ERROR(ctx_.store->Put(pip).status());
  }
  return Status::Ok();
}

Result<std::vector<PublicNat>> NetworkService::NatsOf(const store::Record& vnet,
                                                      const std::vector<store::Record>& nics) {
  std::vector<PublicNat> out;
  for (auto& n : nics) {
    if (n.internal.value("vnet", "") != vnet.key) continue;
    const Json pub = n.internal.value("publicIps", Json::object());
    for (auto& c : n.body["properties"].value("ipConfigurations", Json::array())) {
      std::string name = ToLower(c.value("name", ""));
      std::string key;
      for (auto& [cfg, k] : pub.items())
        if (ToLower(cfg) == name) key = k.get<std::string>();
      if (key.empty()) continue;
      auto pip = ctx_.store->Get(key);
      if (!pip.ok()) continue;
      auto pub_ip = ParseIpv4(pip->internal.value("address", ""), "");
      auto priv_ip = ParseIpv4(c["properties"].value("privateIPAddress", ""), "");
      if (pub_ip.ok() && priv_ip.ok()) out.push_back({*pub_ip, *priv_ip});
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace stratus::network
