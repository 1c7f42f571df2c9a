// Builders of libnftables JSON commands for the `ip` family tables Stratus keeps in its
// namespaces (nat_rules.h, lb/lb_datapath.h): each returns one command or expression of the
// JSON schema (libnftables-json(5)). Pure functions, thread-safe.
#pragma once

#include <string>

#include "core/json.h"

namespace stratus::network::nft {

// {"family": "ip", "name": table}
Json TableRef(const std::string& table);
// The table made (if absent), deleted and made again: the start of a document that replaces it
// whole in one transaction.
Json FreshTable(const std::string& table);
// The table made (if absent) and deleted: removes it whether or not it exists.
Json RemoveTable(const std::string& table);
// add chain: a base chain of `type` ("nat", "filter") on `hook` at `prio`, policy accept.
Json Chain(const std::string& table, const std::string& name, const std::string& type,
           const std::string& hook, int prio);
// add rule to `chain` with expressions `expr`.
Json Rule(const std::string& table, const std::string& chain, Json expr);
// match meta `key` `op` `value` (iifname, oifname, l4proto).
Json Meta(const std::string& key, const Json& value, const std::string& op = "==");
// The ip header's "saddr" / "daddr".
Json Addr(const char* field);
// match `left` `op` `right`.
Json Match(Json left, Json right, const std::string& op = "==");
// match ct state in `states`; Replies(): established or related.
Json CtState(Json states);
Json Replies();
// {"accept": null}, {"drop": null}
Json Verdict(const char* v);
// {"prefix": {"addr": ..., "len": ...}}
Json Prefix(const std::string& addr, int len);

}  // namespace stratus::network::nft
