#include "compute/block_jobs.h"

namespace stratus::compute {

Status BlockJobs::BlockPull(const std::string& domain, const std::string& /*disk*/) {
  return NotSupported("this hypervisor engine cannot pull a disk's backing chain (domain " +
                      domain + ")");
}

Result<BlockJobProgress> BlockJobs::GetBlockJob(const std::string& domain,
                                                const std::string& /*disk*/) {
  return NotSupported("this hypervisor engine has no block jobs (domain " + domain + ")");
}

}  // namespace stratus::compute
