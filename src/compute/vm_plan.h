// VmService::VmPlan, shared by the two files of VmService (vm_service.cc, vm_plan.cc).
#pragma once

#include <string>
#include <vector>

#include "compute/images.h"
#include "compute/vm_service.h"
#include "compute/vm_sizes.h"
#include "core/json.h"

namespace stratus::compute {

// The validated desired state of a VM PUT (Plan).
struct VmService::VmPlan {
  std::string location;
  Json tags;
  VmSize size;
  Image image;
  Json properties;  // normalised properties to store
  std::string custom_data;
  std::vector<std::string> new_disk_keys;  // disks this PUT will create
  std::vector<std::string> attach_keys;    // existing disks this PUT attaches
  std::vector<std::string> nic_keys;       // NICs it holds (locked while the PUT runs)
};

}  // namespace stratus::compute
