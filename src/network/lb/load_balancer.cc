#include "network/lb/load_balancer.h"

#include <map>
#include <set>

#include "api/resource_util.h"
#include "network/ipv4.h"

namespace stratus::network {

namespace {

Status Bad(const std::string& msg, const std::string& field,
           const std::string& code = "InvalidParameter") {
  return InvalidArgument(msg, field, code);
}

// The members of array `member` of `props` (absent or null: none), each an object with a
// unique name (any case) and an object `properties`.
Result<std::vector<std::pair<std::string, Json>>> Children(const Json& props,
                                                           const std::string& member) {
  std::vector<std::pair<std::string, Json>> out;
  if (!props.contains(member) || props[member].is_null()) return out;
  const std::string field = "properties." + member;
  if (!props[member].is_array()) return Bad("'" + field + "' must be an array.", field);
  std::set<std::string> names;
  for (size_t i = 0; i < props[member].size(); ++i) {
    const Json& c = props[member][i];
    const std::string where = field + "[" + std::to_string(i) + "]";
    if (!c.is_object()) return Bad("'" + where + "' must be an object.", where);
    RETURN_IF_ERROR(api::RejectUnknownKeys(c, {"name", "properties", "id", "type", "etag"}, where));
    if (!c.contains("name") || !c["name"].is_string() || c["name"].get<std::string>().empty())
      return Bad("'" + where + ".name' is required.", where + ".name");
    std::string name = c["name"].get<std::string>();
    if (name.size() > 80 || name.find_first_of("/\\?#%") != std::string::npos)
      return Bad("'" + name + "' is not a valid name (at most 80 characters, no / \\ ? # %).",
                 where + ".name");
    if (!names.insert(ToLower(name)).second)
      return Bad("Two members of '" + field + "' are named '" + name + "'.", where + ".name",
                 "DuplicateResourceName");
    Json p = c.value("properties", Json::object());
    if (!p.is_object()) return Bad("'" + where + ".properties' must be an object.", where);
    out.emplace_back(name, std::move(p));
  }
  return out;
}

// The name of the sub-resource a `{"id": ...}` reference names: a `kind` of load balancer `lb`
// that `names` holds.
Result<std::string> Ref(const Json& ref, const ResourceId& lb, const std::string& kind,
                        const std::vector<std::string>& names, const std::string& field) {
  if (!ref.is_object() || !ref.value("id", Json(nullptr)).is_string())
    return Bad("'" + field + "' must be {\"id\": \"<" + kind + " id>\"}.", field);
  const std::string text = ref["id"].get<std::string>();
  auto id = ResourceId::Parse(text);
  const auto& tn = id.ok() ? id->types_and_names() : lb.types_and_names();
  if (!id.ok() || tn.size() != 2 || !EqualsIgnoreCase(tn[1].first, kind) ||
      id->Parent().Key() != lb.Key())
    return Bad("'" + text + "' is not a " + kind + " of load balancer " + lb.ToString() + ".",
               field, "InvalidResourceReference");
  for (auto& n : names)
    if (EqualsIgnoreCase(n, tn[1].second)) return n;
  return Bad("Load balancer " + lb.name() + " has no " + kind + " named '" + tn[1].second + "'.",
             field, "InvalidResourceReference");
}

Result<int> Int(const Json& p, const std::string& member, int lo, int hi, const std::string& where,
                std::optional<int> dflt = std::nullopt) {
  if (!p.contains(member) || p[member].is_null()) {
    if (dflt) return *dflt;
    return Bad("'" + where + "." + member + "' is required.", where + "." + member);
  }
  if (!p[member].is_number_integer() || p[member].get<int64_t>() < lo ||
      p[member].get<int64_t>() > hi)
    return Bad("'" + where + "." + member + "' must be a whole number from " + std::to_string(lo) +
                   " to " + std::to_string(hi) + ".",
               where + "." + member);
  return static_cast<int>(p[member].get<int64_t>());
}

Result<bool> Bool(const Json& p, const std::string& member, const std::string& where) {
  if (!p.contains(member) || p[member].is_null()) return false;
  if (!p[member].is_boolean())
    return Bad("'" + where + "." + member + "' must be true or false.", where + "." + member);
  return p[member].get<bool>();
}

// One of `allowed` (any case, returned as written there).
Result<std::string> Enum(const Json& p, const std::string& member,
                         const std::vector<std::string>& allowed, const std::string& where,
                         std::optional<std::string> dflt = std::nullopt) {
  if (!p.contains(member) || p[member].is_null()) {
    if (dflt) return *dflt;
    return Bad("'" + where + "." + member + "' is required.", where + "." + member);
  }
  if (p[member].is_string())
    for (auto& a : allowed)
      if (EqualsIgnoreCase(a, p[member].get<std::string>())) return a;
  std::string list;
  for (auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  return Bad("'" + where + "." + member + "' must be one of " + list + ".", where + "." + member);
}

Result<std::vector<std::pair<int, int>>> StatusRanges(const Json& p, const std::string& where) {
  std::vector<std::pair<int, int>> out;
  if (!p.contains("expectedStatusCodes") || p["expectedStatusCodes"].is_null())
    return std::vector<std::pair<int, int>>{{200, 200}};
  const std::string field = where + ".expectedStatusCodes";
  const Json& list = p["expectedStatusCodes"];
  if (!list.is_array() || list.empty())
    return Bad("'" + field + "' must be a list such as [\"200\", \"300-399\"].", field);
  for (auto& e : list) {
    std::string t = e.is_string() ? e.get<std::string>() : "";
    int lo = 0, hi = 0;
    char dash = 0;
    int got = std::sscanf(t.c_str(), "%d%c%d", &lo, &dash, &hi);
    if (got == 1) hi = lo;
    if ((got != 1 && !(got == 3 && dash == '-')) || lo < 100 || hi > 599 || lo > hi)
      return Bad("'" + t + "' in '" + field + "' is not a status or a range of statuses (100-599).",
                 field);
    out.emplace_back(lo, hi);
  }
  return out;
}

const char* DistributionName(LbDistribution d) {
  switch (d) {
    case LbDistribution::kSourceIpProtocol:
      return "SourceIPProtocol";
    case LbDistribution::kSourceIp:
      return "SourceIP";
    default:
      return "Default";
  }
}

}  // namespace

const LbFrontend* LoadBalancer::Frontend(const std::string& name) const {
  for (auto& f : frontends)
    if (f.name == name) return &f;
  return nullptr;
}

const LbProbe* LoadBalancer::Probe(const std::string& name) const {
  for (auto& p : probes)
    if (p.name == name) return &p;
  return nullptr;
}

bool LoadBalancer::Internal() const { return !frontends.empty() && !frontends[0].subnet.empty(); }

std::string LbChildId(const ResourceId& lb, const std::string& kind, const std::string& name) {
  return lb.ToString() + "/" + kind + "/" + name;
}

Result<LoadBalancer> ParseLoadBalancer(const Json& body, const ResourceId& lb_id) {
  LoadBalancer lb;
  if (body.contains("sku") && !body["sku"].is_null()) {
    const Json& s = body["sku"];
    if (!s.is_object() || !s.value("name", Json(nullptr)).is_string())
      return Bad("'sku' must be {\"name\": \"Standard\"}.", "sku.name");
    if (!EqualsIgnoreCase(s["name"].get<std::string>(), "Standard"))
      return Bad("Only the Standard sku of load balancers is available (Azure retired Basic).",
                 "sku.name", "InvalidLoadBalancerSku");
    if (s.contains("tier") && !EqualsIgnoreCase(s.value("tier", ""), "Regional"))
      return Bad("Only the Regional tier is available.", "sku.tier", "FeatureNotAvailable");
  }
  Json props = body.value("properties", Json::object());
  if (!props.is_object()) return Bad("'properties' must be an object.", "properties");
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      props,
      {"frontendIPConfigurations", "backendAddressPools", "probes", "loadBalancingRules",
       "inboundNatRules", "outboundRules", "inboundNatPools", "provisioningState", "resourceGuid"},
      "properties"));
  if (props.contains("inboundNatPools") && !props["inboundNatPools"].is_null() &&
      !(props["inboundNatPools"].is_array() && props["inboundNatPools"].empty()))
    return Bad("Inbound NAT pools (scale sets) are not available; use inbound NAT rules.",
               "properties.inboundNatPools", "FeatureNotAvailable");

  // Frontends.
  ASSIGN_OR_RETURN(auto fes, Children(props, "frontendIPConfigurations"));
  if (fes.empty())
    return Bad("A load balancer needs at least one frontend IP configuration.",
               "properties.frontendIPConfigurations");
  for (size_t i = 0; i < fes.size(); ++i) {
    const std::string& name = fes[i].first;
    const Json& p = fes[i].second;
    const std::string where =
        "properties.frontendIPConfigurations[" + std::to_string(i) + "].properties";
    RETURN_IF_ERROR(api::RejectUnknownKeys(
        p,
        {"publicIPAddress", "subnet", "privateIPAddress", "privateIPAllocationMethod",
         "privateIPAddressVersion", "provisioningState", "loadBalancingRules", "inboundNatRules",
         "outboundRules", "inboundNatPools", "publicIPPrefix", "gatewayLoadBalancer"},
        where));
    LbFrontend f;
    f.name = name;
    auto ref_id = [&](const char* member) -> Result<std::string> {
      if (!p.contains(member) || p[member].is_null()) return std::string();
      if (!p[member].is_object() || !p[member].value("id", Json(nullptr)).is_string())
        return Bad("'" + where + "." + member + "' must be {\"id\": ...}.", where + "." + member);
      return p[member]["id"].get<std::string>();
    };
    ASSIGN_OR_RETURN(f.public_ip, ref_id("publicIPAddress"));
    ASSIGN_OR_RETURN(f.subnet, ref_id("subnet"));
    if (f.public_ip.empty() == f.subnet.empty())
      return Bad(
          "A frontend IP configuration has either a publicIPAddress (a public load "
          "balancer) or a subnet (an internal one).",
          where);
    if (p.value("privateIPAddressVersion", "IPv4") != "IPv4")
      return Bad("Only IPv4 frontends are available.", where + ".privateIPAddressVersion",
                 "FeatureNotAvailable");
    if (!f.subnet.empty()) {
      ASSIGN_OR_RETURN(std::string method,
                       Enum(p, "privateIPAllocationMethod", {"Dynamic", "Static"}, where,
                            p.contains("privateIPAddress") ? "Static" : "Dynamic"));
      f.private_static = method == "Static";
      if (p.contains("privateIPAddress") && !p["privateIPAddress"].is_null()) {
        if (!p["privateIPAddress"].is_string())
          return Bad("'" + where + ".privateIPAddress' must be an address.",
                     where + ".privateIPAddress");
        ASSIGN_OR_RETURN(Ipv4 ip, ParseIpv4(p["privateIPAddress"].get<std::string>(),
                                            where + ".privateIPAddress"));
        f.private_ip = ip.ToString();
      } else if (f.private_static) {
        return Bad("A Static frontend needs its privateIPAddress.", where + ".privateIPAddress");
      }
    } else if (p.contains("privateIPAddress") && !p["privateIPAddress"].is_null()) {
      return Bad("A public frontend has no privateIPAddress.", where + ".privateIPAddress");
    }
    if (i > 0 && f.subnet.empty() != lb.frontends[0].subnet.empty())
      return Bad("The frontends of one load balancer are all public or all internal.", where);
    lb.frontends.push_back(std::move(f));
  }
  std::vector<std::string> fe_names, probe_names;
  for (auto& f : lb.frontends) fe_names.push_back(f.name);

  // Pools.
  ASSIGN_OR_RETURN(auto pools, Children(props, "backendAddressPools"));
  for (size_t i = 0; i < pools.size(); ++i) {
    const std::string& name = pools[i].first;
    const Json& p = pools[i].second;
    const std::string where =
        "properties.backendAddressPools[" + std::to_string(i) + "].properties";
    RETURN_IF_ERROR(api::RejectUnknownKeys(
        p,
        {"backendIPConfigurations", "loadBalancingRules", "outboundRule", "outboundRules",
         "inboundNatRules", "provisioningState", "loadBalancerBackendAddresses", "location"},
        where));
    if (p.contains("loadBalancerBackendAddresses") &&
        !p["loadBalancerBackendAddresses"].is_null() &&
        !(p["loadBalancerBackendAddresses"].is_array() &&
          p["loadBalancerBackendAddresses"].empty()))
      return Bad(
          "Pools are made of NIC IP configurations (ipConfigurations[]."
          "loadBalancerBackendAddressPools of a NIC); addresses are not available.",
          where + ".loadBalancerBackendAddresses", "FeatureNotAvailable");
    lb.pools.push_back(name);
  }

  // Probes.
  ASSIGN_OR_RETURN(auto probes, Children(props, "probes"));
  for (size_t i = 0; i < probes.size(); ++i) {
    const std::string& name = probes[i].first;
    const Json& p = probes[i].second;
    const std::string where = "properties.probes[" + std::to_string(i) + "].properties";
    RETURN_IF_ERROR(api::RejectUnknownKeys(
        p,
        {"protocol", "port", "requestPath", "intervalInSeconds", "numberOfProbes", "probeThreshold",
         "expectedStatusCodes", "loadBalancingRules", "provisioningState"},
        where));
    LbProbe pr;
    pr.name = name;
    ASSIGN_OR_RETURN(pr.protocol, Enum(p, "protocol", {"Tcp", "Http", "Https"}, where));
    if (pr.protocol == "Https")
      return Bad("Https probes are not available; use Http or Tcp.", where + ".protocol",
                 "FeatureNotAvailable");
    ASSIGN_OR_RETURN(pr.port, Int(p, "port", 1, 65535, where));
    ASSIGN_OR_RETURN(pr.interval_seconds, Int(p, "intervalInSeconds", 1, 3600, where, 5));
    // probeThreshold is the newer name of numberOfProbes; Azure's default is 1 for the first
    // and 2 for the second: the larger is kept when both are given.
    ASSIGN_OR_RETURN(int number, Int(p, "numberOfProbes", 1, 100, where, 2));
    ASSIGN_OR_RETURN(int threshold, Int(p, "probeThreshold", 1, 100, where, 0));
    pr.threshold = std::max(number, threshold);
    if (pr.protocol == "Http") {
      ASSIGN_OR_RETURN(pr.request_path, api::GetString(p, "requestPath", ""));
      if (pr.request_path.empty())
        return Bad("An Http probe needs its requestPath.", where + ".requestPath",
                   "InvalidProbeRequestPath");
      if (pr.request_path[0] != '/' ||
          pr.request_path.find_first_of(" \r\n\t") != std::string::npos ||
          pr.request_path.size() > 2048)
        return Bad("requestPath '" + pr.request_path +
                       "' must start with '/' and have no spaces or line breaks.",
                   where + ".requestPath", "InvalidProbeRequestPath");
      ASSIGN_OR_RETURN(pr.expected_status, StatusRanges(p, where));
    } else if (p.contains("requestPath") && !p["requestPath"].is_null()) {
      return Bad("A Tcp probe has no requestPath.", where + ".requestPath",
                 "InvalidProbeRequestPath");
    }
    probe_names.push_back(name);
    lb.probes.push_back(std::move(pr));
  }

  // Load-balancing rules.
  ASSIGN_OR_RETURN(auto rules, Children(props, "loadBalancingRules"));
  for (size_t i = 0; i < rules.size(); ++i) {
    const std::string& name = rules[i].first;
    const Json& p = rules[i].second;
    const std::string where = "properties.loadBalancingRules[" + std::to_string(i) + "].properties";
    RETURN_IF_ERROR(api::RejectUnknownKeys(
        p,
        {"frontendIPConfiguration", "backendAddressPool", "backendAddressPools", "probe",
         "protocol", "frontendPort", "backendPort", "loadDistribution", "idleTimeoutInMinutes",
         "enableFloatingIP", "enableTcpReset", "disableOutboundSnat", "provisioningState"},
        where));
    LbRule r;
    r.name = name;
    ASSIGN_OR_RETURN(r.frontend,
                     Ref(p.value("frontendIPConfiguration", Json(nullptr)), lb_id,
                         "frontendIPConfigurations", fe_names, where + ".frontendIPConfiguration"));
    Json pool_ref = p.value("backendAddressPool", Json(nullptr));
    if (pool_ref.is_null() && p.contains("backendAddressPools") &&
        p["backendAddressPools"].is_array()) {
      if (p["backendAddressPools"].size() != 1)
        return Bad("A rule has one backend address pool.", where + ".backendAddressPools");
      pool_ref = p["backendAddressPools"][0];
    }
    ASSIGN_OR_RETURN(r.pool, Ref(pool_ref, lb_id, "backendAddressPools", lb.pools,
                                 where + ".backendAddressPool"));
    if (p.contains("probe") && !p["probe"].is_null()) {
      ASSIGN_OR_RETURN(r.probe, Ref(p["probe"], lb_id, "probes", probe_names, where + ".probe"));
    }
    ASSIGN_OR_RETURN(r.protocol, Enum(p, "protocol", {"Tcp", "Udp", "All"}, where));
    ASSIGN_OR_RETURN(r.frontend_port, Int(p, "frontendPort", 0, 65534, where));
    ASSIGN_OR_RETURN(r.backend_port, Int(p, "backendPort", 0, 65535, where, r.frontend_port));
    if ((r.frontend_port == 0) != (r.protocol == "All") ||
        (r.frontend_port == 0 && r.backend_port != 0))
      return Bad(
          "Ports 0 go with protocol All (HA ports: every port and protocol), and only "
          "there; other rules name a port from 1 to 65534.",
          where + ".frontendPort");
    ASSIGN_OR_RETURN(
        std::string dist,
        Enum(p, "loadDistribution", {"Default", "SourceIPProtocol", "SourceIP"}, where, "Default"));
    r.distribution = dist == "SourceIP"           ? LbDistribution::kSourceIp
                     : dist == "SourceIPProtocol" ? LbDistribution::kSourceIpProtocol
                                                  : LbDistribution::kDefault;
    ASSIGN_OR_RETURN(r.idle_timeout_minutes, Int(p, "idleTimeoutInMinutes", 4, 100, where, 4));
    ASSIGN_OR_RETURN(r.floating_ip, Bool(p, "enableFloatingIP", where));
    ASSIGN_OR_RETURN(r.disable_outbound_snat, Bool(p, "disableOutboundSnat", where));
    if (r.HaPorts() && !lb.Internal())
      return Bad("HA ports (protocol All, port 0) are for internal load balancers.", where,
                 "HaPortsRuleRequiresInternalLoadBalancer");
    lb.rules.push_back(std::move(r));
  }

  // Inbound NAT rules.
  ASSIGN_OR_RETURN(auto nats, Children(props, "inboundNatRules"));
  for (size_t i = 0; i < nats.size(); ++i) {
    const std::string& name = nats[i].first;
    const Json& p = nats[i].second;
    const std::string where = "properties.inboundNatRules[" + std::to_string(i) + "].properties";
    RETURN_IF_ERROR(api::RejectUnknownKeys(
        p,
        {"frontendIPConfiguration", "protocol", "frontendPort", "backendPort",
         "idleTimeoutInMinutes", "enableFloatingIP", "enableTcpReset", "backendIPConfiguration",
         "provisioningState", "backendAddressPool", "frontendPortRangeStart",
         "frontendPortRangeEnd"},
        where));
    for (const char* m : {"backendAddressPool", "frontendPortRangeStart", "frontendPortRangeEnd"})
      if (p.contains(m) && !p[m].is_null())
        return Bad(
            "NAT rules over a pool's port range are not available; a NAT rule reaches "
            "one NIC IP configuration (its loadBalancerInboundNatRules).",
            where + "." + m, "FeatureNotAvailable");
    LbNatRule n;
    n.name = name;
    ASSIGN_OR_RETURN(n.frontend,
                     Ref(p.value("frontendIPConfiguration", Json(nullptr)), lb_id,
                         "frontendIPConfigurations", fe_names, where + ".frontendIPConfiguration"));
    ASSIGN_OR_RETURN(n.protocol, Enum(p, "protocol", {"Tcp", "Udp"}, where));
    ASSIGN_OR_RETURN(n.frontend_port, Int(p, "frontendPort", 1, 65534, where));
    ASSIGN_OR_RETURN(n.backend_port, Int(p, "backendPort", 1, 65535, where));
    ASSIGN_OR_RETURN(n.idle_timeout_minutes, Int(p, "idleTimeoutInMinutes", 4, 100, where, 4));
    ASSIGN_OR_RETURN(n.floating_ip, Bool(p, "enableFloatingIP", where));
    lb.nat_rules.push_back(std::move(n));
  }

  // Outbound rules.
  ASSIGN_OR_RETURN(auto outs, Children(props, "outboundRules"));
  for (size_t i = 0; i < outs.size(); ++i) {
    const std::string& name = outs[i].first;
    const Json& p = outs[i].second;
    const std::string where = "properties.outboundRules[" + std::to_string(i) + "].properties";
    RETURN_IF_ERROR(api::RejectUnknownKeys(
        p,
        {"frontendIPConfigurations", "backendAddressPool", "protocol", "idleTimeoutInMinutes",
         "enableTcpReset", "allocatedOutboundPorts", "provisioningState"},
        where));
    if (lb.Internal())
      return Bad("Outbound rules need a public frontend.", where, "InvalidParameter");
    LbOutboundRule o;
    o.name = name;
    if (!p.contains("frontendIPConfigurations") || !p["frontendIPConfigurations"].is_array() ||
        p["frontendIPConfigurations"].empty())
      return Bad("An outbound rule needs its frontendIPConfigurations.",
                 where + ".frontendIPConfigurations");
    for (size_t k = 0; k < p["frontendIPConfigurations"].size(); ++k) {
      ASSIGN_OR_RETURN(
          std::string fe,
          Ref(p["frontendIPConfigurations"][k], lb_id, "frontendIPConfigurations", fe_names,
              where + ".frontendIPConfigurations[" + std::to_string(k) + "]"));
      o.frontends.push_back(fe);
    }
    ASSIGN_OR_RETURN(o.pool, Ref(p.value("backendAddressPool", Json(nullptr)), lb_id,
                                 "backendAddressPools", lb.pools, where + ".backendAddressPool"));
    ASSIGN_OR_RETURN(o.protocol, Enum(p, "protocol", {"All", "Tcp", "Udp"}, where, "All"));
    ASSIGN_OR_RETURN(o.idle_timeout_minutes, Int(p, "idleTimeoutInMinutes", 4, 100, where, 4));
    for (auto& other : lb.outbound_rules)
      if (other.pool == o.pool)
        return Bad("Outbound rules '" + other.name + "' and '" + name + "' use the same pool.",
                   where + ".backendAddressPool", "OutboundRulesUseSamePool");
    lb.outbound_rules.push_back(std::move(o));
  }

  // Conflicts between rules: one frontend, protocol and port reaches one rule; one pool does
  // not get two rules of one protocol and backend port (ARM's rule, for floating IP off).
  auto protocols = [](const std::string& p) {
    return p == "All" ? std::vector<std::string>{"Tcp", "Udp"} : std::vector<std::string>{p};
  };
  std::map<std::string, std::string> front;  // frontend|protocol|port -> rule
  auto claim = [&](const std::string& fe, const std::string& proto, int port,
                   const std::string& rule, const std::string& field) -> Status {
    for (auto& pr : protocols(proto)) {
      std::string k = fe + "|" + pr + "|" + std::to_string(port);
      auto [it, fresh] = front.emplace(k, rule);
      if (!fresh)
        return Bad("Rules '" + it->second + "' and '" + rule + "' use frontend '" + fe + "' with " +
                       pr + " port " + std::to_string(port) + ".",
                   field, "LoadBalancingRuleFrontendPortConflict");
    }
    return Status::Ok();
  };
  std::map<std::string, std::string> back;  // pool|protocol|port -> rule
  for (size_t i = 0; i < lb.rules.size(); ++i) {
    auto& r = lb.rules[i];
    const std::string field = "properties.loadBalancingRules[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(claim(r.frontend, r.protocol, r.frontend_port, r.name, field));
    if (r.floating_ip) continue;
    for (auto& pr : protocols(r.protocol)) {
      std::string k = r.pool + "|" + pr + "|" + std::to_string(r.backend_port);
      auto [it, fresh] = back.emplace(k, r.name);
      if (!fresh)
        return Bad("Load balancing rules '" + it->second + "' and '" + r.name +
                       "' with floating IP disabled use the same protocol " + pr +
                       " and backend port " + std::to_string(r.backend_port) +
                       ", and must not be used with the same backend address pool '" + r.pool +
                       "'.",
                   field, "RulesUseSameBackendPortProtocolAndPool");
    }
  }
  for (size_t i = 0; i < lb.nat_rules.size(); ++i) {
    auto& n = lb.nat_rules[i];
    RETURN_IF_ERROR(claim(n.frontend, n.protocol, n.frontend_port, n.name,
                          "properties.inboundNatRules[" + std::to_string(i) + "]"));
  }
  return lb;
}

Json LoadBalancerSku(const LoadBalancer& lb) { return {{"name", lb.sku}, {"tier", "Regional"}}; }

Json LoadBalancerProperties(const LoadBalancer& lb, const ResourceId& id) {
  auto child = [&](const std::string& kind, const std::string& name, Json props) {
    return Json{{"id", LbChildId(id, kind, name)},
                {"name", name},
                {"type", std::string(kLoadBalancerTypeName) + "/" + kind},
                {"properties", std::move(props)}};
  };
  auto ref = [&](const std::string& kind, const std::string& name) {
    return Json{{"id", LbChildId(id, kind, name)}};
  };
  Json p = {{"provisioningState", "Succeeded"}};
  Json fes = Json::array();
  for (auto& f : lb.frontends) {
    Json fp = {{"provisioningState", "Succeeded"}};
    if (!f.public_ip.empty()) fp["publicIPAddress"] = {{"id", f.public_ip}};
    if (!f.subnet.empty()) {
      fp["subnet"] = {{"id", f.subnet}};
      fp["privateIPAllocationMethod"] = f.private_static ? "Static" : "Dynamic";
      if (!f.private_ip.empty()) fp["privateIPAddress"] = f.private_ip;
      fp["privateIPAddressVersion"] = "IPv4";
    }
    Json used = Json::array(), nat = Json::array(), out = Json::array();
    for (auto& r : lb.rules)
      if (r.frontend == f.name) used.push_back(ref("loadBalancingRules", r.name));
    for (auto& n : lb.nat_rules)
      if (n.frontend == f.name) nat.push_back(ref("inboundNatRules", n.name));
    for (auto& o : lb.outbound_rules)
      for (auto& fe : o.frontends)
        if (fe == f.name) out.push_back(ref("outboundRules", o.name));
    if (!used.empty()) fp["loadBalancingRules"] = used;
    if (!nat.empty()) fp["inboundNatRules"] = nat;
    if (!out.empty()) fp["outboundRules"] = out;
    fes.push_back(child("frontendIPConfigurations", f.name, fp));
  }
  p["frontendIPConfigurations"] = fes;
  Json pools = Json::array();
  for (auto& name : lb.pools) {
    Json pp = {{"provisioningState", "Succeeded"}};
    Json used = Json::array();
    for (auto& r : lb.rules)
      if (r.pool == name) used.push_back(ref("loadBalancingRules", r.name));
    if (!used.empty()) pp["loadBalancingRules"] = used;
    for (auto& o : lb.outbound_rules)
      if (o.pool == name) pp["outboundRule"] = ref("outboundRules", o.name);
    pools.push_back(child("backendAddressPools", name, pp));
  }
  p["backendAddressPools"] = pools;
  Json probes = Json::array();
  for (auto& pr : lb.probes) {
    Json pp = {{"provisioningState", "Succeeded"},
               {"protocol", pr.protocol},
               {"port", pr.port},
               {"intervalInSeconds", pr.interval_seconds},
               {"numberOfProbes", pr.threshold},
               {"probeThreshold", pr.threshold}};
    if (pr.protocol == "Http") {
      pp["requestPath"] = pr.request_path;
      Json codes = Json::array();
      for (auto& [lo, hi] : pr.expected_status)
        codes.push_back(lo == hi ? std::to_string(lo)
                                 : std::to_string(lo) + "-" + std::to_string(hi));
      pp["expectedStatusCodes"] = codes;
    }
    Json used = Json::array();
    for (auto& r : lb.rules)
      if (r.probe == pr.name) used.push_back(ref("loadBalancingRules", r.name));
    if (!used.empty()) pp["loadBalancingRules"] = used;
    probes.push_back(child("probes", pr.name, pp));
  }
  p["probes"] = probes;
  Json rules = Json::array();
  for (auto& r : lb.rules) {
    Json rp = {{"provisioningState", "Succeeded"},
               {"frontendIPConfiguration", ref("frontendIPConfigurations", r.frontend)},
               {"backendAddressPool", ref("backendAddressPools", r.pool)},
               {"backendAddressPools", Json::array({ref("backendAddressPools", r.pool)})},
               {"protocol", r.protocol},
               {"frontendPort", r.frontend_port},
               {"backendPort", r.backend_port},
               {"loadDistribution", DistributionName(r.distribution)},
               {"idleTimeoutInMinutes", r.idle_timeout_minutes},
               {"enableFloatingIP", r.floating_ip},
               {"enableTcpReset", false},
               {"disableOutboundSnat", r.disable_outbound_snat}};
    if (!r.probe.empty()) rp["probe"] = ref("probes", r.probe);
    rules.push_back(child("loadBalancingRules", r.name, rp));
  }
  p["loadBalancingRules"] = rules;
  Json nats = Json::array();
  for (auto& n : lb.nat_rules)
    nats.push_back(child("inboundNatRules", n.name,
                         {{"provisioningState", "Succeeded"},
                          {"frontendIPConfiguration", ref("frontendIPConfigurations", n.frontend)},
                          {"protocol", n.protocol},
                          {"frontendPort", n.frontend_port},
                          {"backendPort", n.backend_port},
                          {"idleTimeoutInMinutes", n.idle_timeout_minutes},
                          {"enableFloatingIP", n.floating_ip},
                          {"enableTcpReset", false}}));
  p["inboundNatRules"] = nats;
  Json outs = Json::array();
  for (auto& o : lb.outbound_rules) {
    Json fe = Json::array();
    for (auto& f : o.frontends) fe.push_back(ref("frontendIPConfigurations", f));
    outs.push_back(child("outboundRules", o.name,
                         {{"provisioningState", "Succeeded"},
                          {"frontendIPConfigurations", fe},
                          {"backendAddressPool", ref("backendAddressPools", o.pool)},
                          {"protocol", o.protocol},
                          {"idleTimeoutInMinutes", o.idle_timeout_minutes},
                          {"allocatedOutboundPorts", 0},
                          {"enableTcpReset", false}}));
  }
  p["outboundRules"] = outs;
  p["inboundNatPools"] = Json::array();
  return p;
}

}  // namespace stratus::network
