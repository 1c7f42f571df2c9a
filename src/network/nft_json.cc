#include "network/nft_json.h"

namespace stratus::network::nft {

Json TableRef(const std::string& table) { return {{"family", "ip"}, {"name", table}}; }

Json FreshTable(const std::string& table) {
  Json doc = Json::array();
  doc.push_back({{"add", {{"table", TableRef(table)}}}});
  doc.push_back({{"delete", {{"table", TableRef(table)}}}});
  doc.push_back({{"add", {{"table", TableRef(table)}}}});
  return doc;
}

Json RemoveTable(const std::string& table) {
  return {{"nftables",
           {{{"add", {{"table", TableRef(table)}}}}, {{"delete", {{"table", TableRef(table)}}}}}}};
}

Json Chain(const std::string& table, const std::string& name, const std::string& type,
           const std::string& hook, int prio) {
  return {{"add",
           {{"chain",
             {{"family", "ip"},
              {"table", table},
              {"name", name},
              {"type", type},
              {"hook", hook},
              {"prio", prio},
              {"policy", "accept"}}}}}};
}

Json Rule(const std::string& table, const std::string& chain, Json expr) {
  return {{"add",
           {{"rule",
             {{"family", "ip"}, {"table", table}, {"chain", chain}, {"expr", std::move(expr)}}}}}};
}

Json Meta(const std::string& key, const Json& value, const std::string& op) {
  return Match({{"meta", {{"key", key}}}}, value, op);
}

Json Addr(const char* field) { return {{"payload", {{"protocol", "ip"}, {"field", field}}}}; }

Json Match(Json left, Json right, const std::string& op) {
  return {{"match", {{"op", op}, {"left", std::move(left)}, {"right", std::move(right)}}}};
}

Json CtState(Json states) { return Match({{"ct", {{"key", "state"}}}}, std::move(states), "in"); }

Json Replies() { return CtState(Json::array({"established", "related"})); }

Json Verdict(const char* v) { return {{v, nullptr}}; }

Json Prefix(const std::string& addr, int len) {
  return {{"prefix", {{"addr", addr}, {"len", len}}}};
}

}  // namespace stratus::network::nft
