// Nftables: one libnftables context (RAII) to run JSON transactions and read tables back.
//
// A call runs the whole input as one netlink transaction: all of it applies or none of it
// does. Output and errors are captured (never printed). Not thread-safe: one caller at a time
// (the owner serialises).
#pragma once

#include <memory>
#include <string>

#include "core/json.h"
#include "core/status.h"

struct nft_ctx;

namespace stratus::network {

class Nftables {
 public:
  // Unavailable when the context cannot be made (no libnftables, no netlink permission).
  static Result<std::unique_ptr<Nftables>> Open();
  ~Nftables();

  // Runs a JSON document {"nftables": [...]}. Internal naming the first error nft reports.
  Status Apply(const Json& doc);
  // Runs `doc` inside network namespace `netns` (/run/netns/<netns>): on a thread of its own
  // that joins the namespace and makes a context there (a netlink socket belongs to the
  // namespace it was made in). Internal when the namespace cannot be entered.
  static Status ApplyInNamespace(const std::string& netns, const Json& doc);
  // `list table <family> <name>` as JSON, without set elements; NotFound when the table does
  // not exist.
  Result<Json> ListTable(const std::string& family, const std::string& name);
  // `list set <family> <table> <name>` as JSON with its elements (and their counters), numbers
  // printed as numbers (protocols too); NotFound when the set or its table does not exist.
  Result<Json> ListSet(const std::string& family, const std::string& table,
                       const std::string& name);

 private:
  explicit Nftables(nft_ctx* ctx) : ctx_(ctx) {}
  Result<std::string> Run(const std::string& cmd);
  // `list <what>` as JSON with `extra_flags` on the output.
  Result<Json> List(const std::string& what, unsigned extra_flags);
  nft_ctx* ctx_;
};

}  // namespace stratus::network
