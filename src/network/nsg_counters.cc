#include "network/nsg_counters.h"

#include <cctype>
#include <utility>

namespace stratus::network {

namespace {

// One component of an element as an inclusive range of a field `bits` wide. Addresses are
// strings; numbers are numbers, or digit strings.
Result<std::pair<uint32_t, uint32_t>> Component(const Json& c, int bits) {
  auto value = [&](const Json& v) -> Result<uint32_t> {
    if (v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= 0xffffffffLL)
      return static_cast<uint32_t>(v.get<int64_t>());
    if (v.is_string()) {
      std::string s = v.get<std::string>();
      if (bits == 32) {
        ASSIGN_OR_RETURN(Ipv4 ip, ParseIpv4(s, "element"));
        return ip.value;
      }
      static const std::pair<const char*, uint32_t> kProtocols[] = {
          {"icmp", 1}, {"tcp", 6}, {"udp", 17}, {"esp", 50}, {"ah", 51}};
      if (bits == 8)
        for (auto& [name, number] : kProtocols)
          if (s == name) return number;
      if (!s.empty() && s.size() < 6 && s.find_first_not_of("0123456789") == std::string::npos)
        return static_cast<uint32_t>(std::stoul(s));
    }
    return InvalidArgument("nftables: unexpected element value " + v.dump());
  };
  if (c.is_object() && c.contains("range") && c["range"].is_array() && c["range"].size() == 2) {
    ASSIGN_OR_RETURN(uint32_t a, value(c["range"][0]));
    ASSIGN_OR_RETURN(uint32_t b, value(c["range"][1]));
    return std::make_pair(a, b);
  }
  if (c.is_object() && c.contains("prefix") && c["prefix"].is_object()) {
    ASSIGN_OR_RETURN(uint32_t a, value(c["prefix"].value("addr", Json())));
    int len = c["prefix"].value("len", -1);
    if (len < 0 || len > bits)
      return InvalidArgument("nftables: unexpected element prefix " + c.dump());
    uint64_t span = (uint64_t{1} << (bits - len)) - 1;
    return std::make_pair(a, static_cast<uint32_t>(a + span));
  }
  ASSIGN_OR_RETURN(uint32_t v, value(c));
  return std::make_pair(v, v);
}

}  // namespace

Result<RuleBox> ParseRuleElement(const Json& val, bool ported) {
  const Json* parts = val.is_object() && val.contains("concat") ? &val["concat"] : nullptr;
  size_t want = ported ? 5 : 3;
  if (!parts || !parts->is_array() || parts->size() != want)
    return InvalidArgument("nftables: unexpected element " + val.dump());
  static const int kBits[] = {32, 32, 8, 16, 16};
  std::pair<uint32_t, uint32_t> r[5];
  for (size_t i = 0; i < want; ++i) {
    ASSIGN_OR_RETURN(r[i], Component((*parts)[i], kBits[i]));
  }
  RuleBox x;
  x.src_first = r[0].first;
  x.src_last = r[0].second;
  x.dst_first = r[1].first;
  x.dst_last = r[1].second;
  x.proto_first = static_cast<uint16_t>(r[2].first);
  x.proto_last = static_cast<uint16_t>(r[2].second);
  if (ported) {
    x.sport_first = static_cast<uint16_t>(r[3].first);
    x.sport_last = static_cast<uint16_t>(r[3].second);
    x.dport_first = static_cast<uint16_t>(r[4].first);
    x.dport_last = static_cast<uint16_t>(r[4].second);
  }
  return x;
}

std::vector<RuleCounter> CountRuleHits(const SecurityModel& model,
                                       const std::map<std::string, Json>& listings) {
  std::vector<RuleCounter> out;
  // (stage, direction) -> index in `out` of its first rule
  std::map<std::pair<std::string, Direction>, size_t> first;
  for (auto& sr : model.rules) {
    first.emplace(std::make_pair(sr.stage, sr.direction), out.size());
    for (auto& r : sr.rules) out.push_back({sr.stage, sr.direction, r, 0, 0});
  }
  for (auto& [name, listing] : listings) {
    auto set = model.sets.find(name);
    if (set == model.sets.end()) continue;
    for (auto& item : listing.value("nftables", Json::array())) {
      if (!item.contains("set")) continue;
      for (auto& e : item["set"].value("elem", Json::array())) {
        if (!e.is_object() || !e.contains("elem")) continue;  // no counter on it
        const Json& el = e["elem"];
        auto box = ParseRuleElement(el.value("val", Json()), set->second.ported);
        if (!box.ok()) continue;
        auto owner = set->second.owners.find(*box);
        if (owner == set->second.owners.end()) continue;
        auto base = first.find(std::make_pair(set->second.stage, set->second.direction));
        if (base == first.end()) continue;
        size_t at = base->second + static_cast<size_t>(owner->second);
        if (at >= out.size()) continue;
        const Json& c = el.value("counter", Json::object());
        out[at].packets += c.value("packets", uint64_t{0});
        out[at].bytes += c.value("bytes", uint64_t{0});
      }
    }
  }
  return out;
}

}  // namespace stratus::network
