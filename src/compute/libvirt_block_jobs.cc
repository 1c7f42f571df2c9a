// LibvirtHypervisor as BlockJobs: virDomainBlockPull and virDomainGetBlockJobInfo.

#include "compute/libvirt_hypervisor.h"
#include "compute/libvirt_internal.h"

namespace stratus::compute {

namespace {

using libvirt::DomainHandle;

}  // namespace

Status LibvirtHypervisor::BlockPull(const std::string& name, const std::string& disk) {
  return WithConnection([&](virConnectPtr conn) -> Status {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    ASSIGN_OR_RETURN(bool active, IsActive(d.get(), name));
    if (!active)
      return Conflict(
          "domain " + Quoted(name) + " is not running; its disk " + disk + " cannot be pulled now",
          disk, "OperationNotAllowed");
    if (virDomainBlockPull(d.get(), disk.c_str(), 0, 0) < 0)
      return LibvirtFailure("start a block pull of disk " + disk + " of domain " + Quoted(name));
    return Status::Ok();
  });
}

Result<BlockJobProgress> LibvirtHypervisor::GetBlockJob(const std::string& name,
                                                        const std::string& disk) {
  BlockJobProgress out;
  Status st = WithConnection([&](virConnectPtr conn) -> Status {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    ASSIGN_OR_RETURN(bool active, IsActive(d.get(), name));
    if (!active) return Status::Ok();
    virDomainBlockJobInfo info{};
    int r = virDomainGetBlockJobInfo(d.get(), disk.c_str(), &info, 0);
    if (r < 0)
      return LibvirtFailure("read the block job of disk " + disk + " of domain " + Quoted(name));
    out.active = r == 1;
    out.cur = info.cur;
    out.end = info.end;
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return out;
}

}  // namespace stratus::compute
