// GuestAgent: talks to the QEMU guest agent (qemu-guest-agent) inside a running domain.
//
// Used to check that a guest is up (guest-ping), to run the backup hooks of a guest
// (guest-exec, recovery/service/guest_hooks.h) and to freeze its file systems around a backup
// instant. Engines: LibvirtHypervisor (libvirt_hypervisor.h, over the virtio-serial channel
// org.qemu.guest_agent.0 every Stratus domain has); unit tests use a fake without an agent.
//
// Thread-safety: implementations are safe for concurrent calls from any thread. Whether two
// commands to the same guest interleave is the agent's business: callers that need an order
// send one command at a time.
#pragma once

#include <string>

#include "core/json.h"
#include "core/status.h"

namespace stratus::compute {

class GuestAgent {
 public:
  virtual ~GuestAgent() = default;

  // Sends one guest-agent command ({"execute":..., "arguments":...}) to domain `name` and
  // returns its "return" (null when the reply has none); `timeout_s` <= 0 means the engine's
  // default. InvalidArgument when `command` has no string "execute"; NotFound for an unknown
  // domain; Unavailable when the domain does not run or its agent is absent or does not answer
  // within `timeout_s`; Internal when the guest answers with an error or a reply that is not
  // JSON.
  virtual Result<Json> AgentCommand(const std::string& name, const Json& command,
                                    int timeout_s) = 0;
};

}  // namespace stratus::compute
