// JobBook: the records of the recovery services' jobs (vaults/{v}/backupJobs/{job}: backups,
// restores, copies) and what every job does around its work.
//
// A job is created Queued, runs as an operation on the job's id (its operationId is recorded),
// is updated while it runs, and ends Completed or Failed; a failed job alerts the vault's
// webhooks (properties.alerts.webhooks) with its error. Jobs that wait — for the locks of the
// resources they touch, for an operation another module started — wait here, and stop waiting
// with Unavailable when the daemon stops.
//
// Thread-safety: every method may be called from any thread; mu_ guards stopping_.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "api/operations.h"
#include "api/provider.h"
#include "core/json.h"
#include "core/resource_id.h"
#include "store/store.h"

namespace stratus::recovery::service {

class JobBook {
 public:
  explicit JobBook(api::RegionContext ctx) : ctx_(std::move(ctx)) {}

  // A new job record of `vault` (name: the time, so jobs list oldest first) with `props` and
  // properties.operation = `operation` ("Backup", "Restore", "Copy"), Queued, no progress yet.
  Result<store::Record> Create(const ResourceId& vault, const std::string& operation,
                               const Json& props, const std::string& caller);
  // Starts `run` as operation `operation_name` on the job and records its id in the job.
  Result<std::string> Run(const ResourceId& job, const std::string& operation_name,
                          const std::string& caller,
                          std::function<Status(api::OperationContext&)> run);
  // Read-modify-write of the job's properties (UpdateProperties).
  void Update(const ResourceId& job, const std::function<void(Json& props)>& fn);
  // Marks the job Failed with `st` (endTime, error) and alerts the vault's webhooks.
  void Fail(const ResourceId& job, const Status& st);

  // Takes `keys` as soon as no other operation holds them (the job shows Queued meanwhile).
  Result<api::ResourceLock> WaitForLock(const std::vector<std::string>& keys);
  // Waits until operation `operation_id` ends: OK if it succeeded, Internal with its error
  // message otherwise.
  Status WaitOperation(const std::string& operation_id);
  // Every wait ends with Unavailable from now on.
  void Stop();

 private:
  // Posts the job's failure to each webhook of the vault (failures are logged).
  void Alert(const ResourceId& vault, const ResourceId& job, const Json& job_props);
  // Sleeps up to 300 ms; false once stopping.
  bool Nap();

  api::RegionContext ctx_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace stratus::recovery::service
