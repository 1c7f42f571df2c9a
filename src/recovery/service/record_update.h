// Read-modify-write of a resource's "properties" in the state store, for the job and status
// records the recovery services keep up to date while work runs. A record that is gone is left
// alone; a failed write is logged (the work itself goes on).
#pragma once

#include <spdlog/spdlog.h>

#include <functional>
#include <string>

#include "core/json.h"
#include "core/resource_id.h"
#include "store/store.h"

namespace stratus::recovery::service {

inline void UpdateProperties(store::Store* store, const ResourceId& id,
                             const std::function<void(Json& properties)>& fn) {
  auto rec = store->Get(id.Key());
  if (!rec.ok()) return;
  fn(rec->body["properties"]);
  auto st = store->Put(*rec);
  if (!st.ok()) spdlog::warn("updating {}: {}", id.ToString(), st.status().ToString());
}

}  // namespace stratus::recovery::service
