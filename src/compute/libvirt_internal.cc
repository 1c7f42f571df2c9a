#include "compute/libvirt_internal.h"

namespace stratus::compute {

LastError GetLastError() {
  LastError e;
  virErrorPtr err = virGetLastError();
  if (err != nullptr) {
    e.code = err->code;
    if (err->message != nullptr) e.message = err->message;
  }
  return e;
}

Status StatusFromError(const LastError& e, const std::string& what) {
  std::string msg = "cannot " + what + ": " + e.message;
  switch (e.code) {
    case VIR_ERR_NO_DOMAIN:
      return NotFound(msg);
    case VIR_ERR_OPERATION_INVALID:
      return Conflict(msg);
    case VIR_ERR_INVALID_ARG:
    case VIR_ERR_XML_ERROR:
    case VIR_ERR_XML_DETAIL:
    case VIR_ERR_CONFIG_UNSUPPORTED:
      return InvalidArgument(msg);
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_INVALID_CONN:
    case VIR_ERR_RPC:
    case VIR_ERR_AUTH_FAILED:
    case VIR_ERR_AGENT_UNRESPONSIVE:
    case VIR_ERR_AGENT_UNSYNCED:
    case VIR_ERR_OPERATION_TIMEOUT:
      return Unavailable(msg);
    default:
      return Internal(msg);
  }
}

Status LibvirtFailure(const std::string& what) { return StatusFromError(GetLastError(), what); }

std::string Quoted(const std::string& name) { return "'" + name + "'"; }

Result<libvirt::DomainHandle> LookupDomain(virConnectPtr conn, const std::string& name) {
  virDomainPtr d = virDomainLookupByName(conn, name.c_str());
  if (d == nullptr) {
    LastError e = GetLastError();
    if (e.code == VIR_ERR_NO_DOMAIN) {
      return NotFound("domain " + Quoted(name) + " not found", name);
    }
    return StatusFromError(e, "look up domain " + Quoted(name));
  }
  return libvirt::DomainHandle(d);
}

Result<bool> IsActive(virDomainPtr dom, const std::string& name) {
  int r = virDomainIsActive(dom);
  if (r < 0) return LibvirtFailure("get the state of domain " + Quoted(name));
  return r == 1;
}

Result<std::string> XmlDesc(virDomainPtr dom, const std::string& name, bool inactive) {
  libvirt::CString xml(virDomainGetXMLDesc(dom, inactive ? VIR_DOMAIN_XML_INACTIVE : 0));
  if (!xml) return LibvirtFailure("get the XML of domain " + Quoted(name));
  return std::string(xml.get());
}

Result<ParsedDomain> ParsedXml(virDomainPtr dom, const std::string& name, bool inactive) {
  ASSIGN_OR_RETURN(std::string xml, XmlDesc(dom, name, inactive));
  auto parsed = ParseDomainXml(xml);
  if (!parsed.ok()) {
    return Internal("cannot parse the XML of domain " + Quoted(name) + ": " +
                    parsed.status().message());
  }
  return std::move(parsed).value();
}

}  // namespace stratus::compute
