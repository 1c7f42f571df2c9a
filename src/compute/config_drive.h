// Config drive: the small disk through which the platform hands a VM its settings.
//
// Format (version 1, see guest/README.md): an ext2 file system (mke2fs -d, no mount needed),
// attached as a virtio disk with serial "stratus-config", holding plain files:
//   hostname      one line
//   user-script   optional shell script the guest runs at every boot
//   network       optional KEY=VALUE lines (IFACE, ADDRESS, GATEWAY, DNS, MAC): the primary NIC
//   network.N     the same for the further NICs (N = 1, 2, ...)
//   meta.json     {"version":1,"vmId":...,"name":...}
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace stratus::compute {

struct ConfigDriveContent {
  std::string hostname;
  std::string user_script;
  std::string network;
  std::vector<std::string> more_networks;  // network.1, network.2, ...
  std::string meta_json;
};

inline constexpr const char* kConfigDriveSerial = "stratus-config";

// Builds the image at `path` (replaced atomically).
Status BuildConfigDrive(const std::string& path, const ConfigDriveContent& content);

}  // namespace stratus::compute
