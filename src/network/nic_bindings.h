// NicBindings: what compute asks of the network about the NICs of a VM — which NICs it may
// plug, how each one is plugged (bridge, tap, MAC) and configured (addresses, gateway, DNS), and
// which VM owns which NIC. Implemented by network::NetworkService; VmService calls it.
//
// Ownership: a NIC belongs to at most one VM (its `virtualMachine.id`); Bind makes it so and
// puts the VM's name into the VNET's DNS (for its primary NIC); Unbind releases it. The NIC
// keeps its MAC, addresses and tap name for its whole life, whichever VM holds it.
// Thread-safe.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace stratus::network {

// One NIC as a VM plugs it.
struct NicPlug {
  std::string nic_id;                  // resource id as stored
  std::string mac;                     // "52:54:00:12:34:56"
  std::string bridge;                  // its subnet's bridge
  std::string tap;                     // the tap's name (libvirt <target dev>)
  std::vector<std::string> addresses;  // "10.0.1.4/24", primary first
  std::string gateway;                 // "10.0.1.1"
  std::vector<std::string> dns;        // name servers
  std::string search;                  // DNS search domain ("<vnet>.internal")
  int mtu = 1500;
};

class NicBindings {
 public:
  virtual ~NicBindings() = default;

  // The NICs `nic_ids` (resource ids, any case) as VM `vm_id` plugs them, in that order.
  // NotFound "InvalidResourceReference" for a NIC that does not exist; Conflict "NicInUse" for
  // one bound to another VM; Conflict "NicNotReady" for one not Succeeded; InvalidArgument for a
  // NIC of another subscription or location.
  virtual Result<std::vector<NicPlug>> Resolve(const std::vector<std::string>& nic_ids,
                                               const std::string& vm_id) = 0;
  // Records that VM `vm_id` (named `hostname` in the guest) holds NIC `nic_id`; the primary NIC's
  // address answers for `hostname` in the VNET's DNS. Idempotent. Conflict "NicInUse" if
  // another VM holds it.
  virtual Status Bind(const std::string& nic_id, const std::string& vm_id, bool primary,
                      const std::string& hostname) = 0;
  // Releases NIC `nic_id` from VM `vm_id` (OK if not bound to it, or gone); with `delete_nic`
  // the NIC is deleted too (deleteOption Delete).
  virtual Status Unbind(const std::string& nic_id, const std::string& vm_id, bool delete_nic) = 0;
};

}  // namespace stratus::network
