// The VM size catalogue: vCPUs, memory, data-disk count, per-disk IO caps and NIC count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace stratus::compute {

struct VmSize {
  std::string name;
  int vcpus = 1;
  int memory_mib = 512;
  int max_data_disks = 2;
  uint64_t max_disk_iops = 0;  // per-disk cap the size allows
  uint64_t max_disk_mbps = 0;  // per-disk MB/s cap the size allows
  int max_nics = 2;            // network interfaces (maxNetworkInterfaces)
};

const std::vector<VmSize>& VmSizes();
// 400 "UnknownVmSize" naming the size and listing valid ones (case-insensitive match).
Result<VmSize> FindVmSize(const std::string& name);
Json VmSizeJson(const VmSize& s);

}  // namespace stratus::compute
