// DomainNics: network interfaces plugged into and out of a defined domain (while it runs too).
//
// A NIC is identified by its MAC (fixed for the NIC's life, network/nic_bindings.h). Every
// change goes to the persistent definition and, while the domain runs, to the live domain, so
// a restart of the domain keeps it. Thread-safe.
//
// Errors: NotFound when the domain does not exist, or (DetachNic) no NIC has that MAC;
// Unavailable when a running guest does not release a NIC in time (the unplug stays pending);
// Internal for other engine failures.
#pragma once

#include <string>

#include "compute/domain_lifecycle.h"
#include "core/status.h"

namespace stratus::compute {

class DomainNics {
 public:
  virtual ~DomainNics() = default;
  // Plugs `nic` (its tap joins its bridge). OK when a NIC with the same MAC is already there.
  virtual Status AttachNic(const std::string& name, const NicAttachment& nic) = 0;
  // Unplugs the NIC with `nic.mac` (live first, then from the definition).
  virtual Status DetachNic(const std::string& name, const NicAttachment& nic) = 0;
};

}  // namespace stratus::compute
