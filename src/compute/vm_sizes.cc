#include "compute/vm_sizes.h"

#include "core/resource_id.h"

namespace stratus::compute {

const std::vector<VmSize>& VmSizes() {
  // Powers of two as in public clouds, plus the intermediate sizes they lack (S3, S6, S12).
  static const std::vector<VmSize> kSizes = {
      {"Standard_S0", 1, 256, 1, 500, 25, 2},      {"Standard_S1", 1, 512, 2, 1000, 50, 2},
      {"Standard_S2", 2, 1024, 4, 2000, 100, 2},   {"Standard_S3", 3, 1536, 6, 3000, 150, 4},
      {"Standard_S4", 4, 2048, 8, 4000, 200, 4},   {"Standard_S6", 6, 3072, 12, 6000, 300, 8},
      {"Standard_S8", 8, 4096, 16, 8000, 400, 8},  {"Standard_S12", 12, 6144, 24, 12000, 600, 8},
      {"Standard_S16", 16, 8192, 32, 16000, 800, 8},
      {"Standard_M2", 2, 4096, 4, 2000, 100, 2},   {"Standard_M4", 4, 8192, 8, 4000, 200, 4},
      {"Standard_D64", 8, 8192, 64, 20000, 1000, 8},
  };
  return kSizes;
}

Result<VmSize> FindVmSize(const std::string& name) {
  for (auto& s : VmSizes())
    if (EqualsIgnoreCase(s.name, name)) return s;
  std::string names;
  for (auto& s : VmSizes()) names += (names.empty() ? "" : ", ") + s.name;
  return InvalidArgument("The VM size '" + name + "' is not available in this region. Available "
                             "sizes: " + names + ".",
                         "properties.hardwareProfile.vmSize", "UnknownVmSize");
}

Json VmSizeJson(const VmSize& s) {
  return Json{{"name", s.name},
              {"numberOfCores", s.vcpus},
              {"memoryInMB", s.memory_mib},
              {"maxDataDiskCount", s.max_data_disks},
              {"maxDiskIops", s.max_disk_iops},
              {"maxDiskMBps", s.max_disk_mbps},
              {"maxNetworkInterfaces", s.max_nics}};
}

}  // namespace stratus::compute
