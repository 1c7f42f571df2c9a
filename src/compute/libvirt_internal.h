// Private helpers of the libvirt driver, shared by its files: libvirt_hypervisor.cc (connection,
// lifecycle, disks, guest agent), libvirt_disk_snapshots.cc, libvirt_pull_backups.cc and
// libvirt_block_jobs.cc. Not part of the compute API: include it from those files only.
//
// Every helper that calls libvirt reads the calling thread's libvirt error right after the call
// that failed, and returns a Status whose message says what was attempted on which domain.
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <spdlog/spdlog.h>

#include <string>

#include "compute/domain_xml.h"
#include "compute/libvirt_handles.h"
#include "compute/libvirt_hypervisor.h"
#include "core/status.h"

namespace stratus::compute {

struct LastError {
  int code = VIR_ERR_INTERNAL_ERROR;
  std::string message = "unknown libvirt error";
};

// The calling thread's last libvirt error. Must be read before the next libvirt call.
LastError GetLastError();

// Maps a libvirt error to a Status: NotFound (no domain), Conflict (wrong state), InvalidArgument
// (bad XML or argument), Unavailable (connection, agent, timeout), Internal otherwise. `what`
// says what was attempted ("start domain 'x'").
Status StatusFromError(const LastError& e, const std::string& what);

// Status for the libvirt call that just failed on this thread; `what` says what was attempted
// and on which domain ("start domain 'x'").
Status LibvirtFailure(const std::string& what);

// "'name'", for messages.
std::string Quoted(const std::string& name);

// The domain named `name`: NotFound (target `name`) if there is none.
Result<libvirt::DomainHandle> LookupDomain(virConnectPtr conn, const std::string& name);
// Whether the domain runs (also paused: QEMU is up).
Result<bool> IsActive(virDomainPtr dom, const std::string& name);
// The domain's XML: the persistent definition when `inactive`, else the live one if it runs.
Result<std::string> XmlDesc(virDomainPtr dom, const std::string& name, bool inactive);
// XmlDesc parsed by ParseDomainXml; Internal if libvirt's XML does not parse.
Result<ParsedDomain> ParsedXml(virDomainPtr dom, const std::string& name, bool inactive);

inline const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

template <typename Fn>
auto LibvirtHypervisor::WithConnection(Fn&& fn)
    -> decltype(fn(static_cast<virConnectPtr>(nullptr))) {
  using R = decltype(fn(static_cast<virConnectPtr>(nullptr)));
  for (int attempt = 0;; ++attempt) {
    auto conn = Connection();
    if (!conn.ok()) return R(conn.status());
    R r = fn(conn->get());
    if (StatusOf(r).ok() || attempt > 0 || virConnectIsAlive(conn->get()) == 1) return r;
    spdlog::warn("libvirt connection to {} was lost ({}); reconnecting", options_.uri,
                 StatusOf(r).message());
    ForgetConnection(*conn);
  }
}

}  // namespace stratus::compute
