#include "compute/domain_xml.h"

#include "core/resource_id.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string_view>
#include <utility>

namespace stratus::compute {
namespace {

// ---------------------------------------------------------------------------------------------
// Rendering

// Strings XML 1.0 cannot carry at all (even escaped): control characters except \t \n \r.
Status CheckXmlChars(const std::string& s, const std::string& field) {
  for (unsigned char c : s) {
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
      return InvalidArgument("'" + field + "' contains a control character", field);
    }
  }
  return Status::Ok();
}

bool IsValidTarget(const std::string& t) {
  if (t.size() < 3 || t.size() > 4 || t[0] != 'v' || t[1] != 'd') return false;
  for (size_t i = 2; i < t.size(); ++i) {
    if (t[i] < 'a' || t[i] > 'z') return false;
  }
  return true;
}

Status ValidateDisk(const DiskAttachment& d, const std::string& field) {
  if (!IsValidTarget(d.target_dev)) {
    return InvalidArgument("disk target '" + d.target_dev + "' is not a virtio name like 'vdb'",
                           field + ".target_dev");
  }
  if (d.path.empty() || d.path[0] != '/') {
    return InvalidArgument("disk " + d.target_dev + ": path '" + d.path + "' is not absolute",
                           field + ".path");
  }
  if (d.format != "qcow2" && d.format != "raw") {
    return InvalidArgument(
        "disk " + d.target_dev + ": format '" + d.format + "' is not 'qcow2' or 'raw'",
        field + ".format");
  }
  if (d.serial.size() > 20) {
    return InvalidArgument(
        "disk " + d.target_dev + ": serial '" + d.serial + "' is longer than 20 characters",
        field + ".serial");
  }
  RETURN_IF_ERROR(CheckXmlChars(d.path, field + ".path"));
  RETURN_IF_ERROR(CheckXmlChars(d.serial, field + ".serial"));
  return Status::Ok();
}

Status ValidateOptions(const DomainXmlOptions& o) {
  if (o.domain_type != "qemu" && o.domain_type != "kvm") {
    return InvalidArgument("domain type '" + o.domain_type + "' is not 'qemu' or 'kvm'",
                           "domain_type");
  }
  if (o.machine.empty()) return InvalidArgument("machine type is empty", "machine");
  RETURN_IF_ERROR(CheckXmlChars(o.machine, "machine"));
  RETURN_IF_ERROR(CheckXmlChars(o.disk_cache, "disk_cache"));
  RETURN_IF_ERROR(CheckXmlChars(o.disk_io, "disk_io"));
  return Status::Ok();
}

void AppendDisk(std::string& x, const DiskAttachment& d, const DomainXmlOptions& o,
                const std::string& indent) {
  x += indent + "<disk type='file' device='disk'>\n";
  x += indent + "  <driver name='qemu' type='" + XmlEscape(d.format) + "'";
  if (!o.disk_cache.empty()) x += " cache='" + XmlEscape(o.disk_cache) + "'";
  if (!o.disk_io.empty()) x += " io='" + XmlEscape(o.disk_io) + "'";
  x += " discard='unmap' detect_zeroes='unmap'/>\n";
  x += indent + "  <source file='" + XmlEscape(d.path) + "'/>\n";
  x += indent + "  <target dev='" + XmlEscape(d.target_dev) + "' bus='virtio'/>\n";
  if (d.read_only) x += indent + "  <readonly/>\n";
  if (!d.serial.empty()) x += indent + "  <serial>" + XmlEscape(d.serial) + "</serial>\n";
  if (d.iotune.total_iops_sec != 0 || d.iotune.total_bytes_sec != 0) {
    x += indent + "  <iotune>\n";
    if (d.iotune.total_bytes_sec != 0) {
      x += indent + "    <total_bytes_sec>" + std::to_string(d.iotune.total_bytes_sec) +
           "</total_bytes_sec>\n";
    }
    if (d.iotune.total_iops_sec != 0) {
      x += indent + "    <total_iops_sec>" + std::to_string(d.iotune.total_iops_sec) +
           "</total_iops_sec>\n";
    }
    x += indent + "  </iotune>\n";
  }
  x += indent + "</disk>\n";
}

// ---------------------------------------------------------------------------------------------
// A small XML reader, enough for libvirt's own output: elements, attributes (either quote),
// text, entity and character references, comments, CDATA, processing instructions. No DTDs.

struct XmlElement {
  std::string name;
  std::vector<std::pair<std::string, std::string>> attrs;
  std::string text;  // concatenated character data directly inside this element
  std::vector<XmlElement> children;

  const std::string* Attr(std::string_view n) const {
    for (auto& [k, v] : attrs) {
      if (k == n) return &v;
    }
    return nullptr;
  }
  std::string AttrOr(std::string_view n, std::string def = {}) const {
    const std::string* v = Attr(n);
    return v ? *v : def;
  }
  const XmlElement* Child(std::string_view n) const {
    for (auto& c : children) {
      if (c.name == n) return &c;
    }
    return nullptr;
  }
};

class XmlReader {
 public:
  explicit XmlReader(std::string_view s) : s_(s) {}

  Result<XmlElement> ParseDocument() {
    SkipMisc();
    if (pos_ >= s_.size() || s_[pos_] != '<') return Error("expected root element");
    XmlElement root;
    RETURN_IF_ERROR(ParseElement(root, 0));
    SkipMisc();
    if (pos_ != s_.size()) return Error("content after the root element");
    return root;
  }

 private:
  Status Error(const std::string& what) const {
    return InvalidArgument("malformed XML at byte " + std::to_string(pos_) + ": " + what);
  }
  bool StartsWith(std::string_view p) const { return s_.substr(pos_, p.size()) == p; }
  void SkipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  // Skips whitespace, comments, processing instructions and a DOCTYPE outside the root.
  void SkipMisc() {
    for (;;) {
      SkipSpace();
      if (StartsWith("<?")) {
        size_t e = s_.find("?>", pos_);
        pos_ = e == std::string_view::npos ? s_.size() : e + 2;
      } else if (StartsWith("<!--")) {
        size_t e = s_.find("-->", pos_);
        pos_ = e == std::string_view::npos ? s_.size() : e + 3;
      } else if (StartsWith("<!DOCTYPE")) {
        size_t e = s_.find('>', pos_);
        pos_ = e == std::string_view::npos ? s_.size() : e + 1;
      } else {
        return;
      }
    }
  }
  static bool IsNameChar(char c) {
    return c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '/' && c != '>' && c != '=' &&
           c != '<' && c != '"' && c != '\'';
  }
  std::string ParseName() {
    size_t b = pos_;
    while (pos_ < s_.size() && IsNameChar(s_[pos_])) ++pos_;
    return std::string(s_.substr(b, pos_ - b));
  }
  Status Unescape(std::string_view raw, std::string& out) const {
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '&') {
        out += raw[i];
        continue;
      }
      size_t semi = raw.find(';', i);
      if (semi == std::string_view::npos) return Error("unterminated entity reference");
      std::string_view ent = raw.substr(i + 1, semi - i - 1);
      if (ent == "lt") {
        out += '<';
      } else if (ent == "gt") {
        out += '>';
      } else if (ent == "amp") {
        out += '&';
      } else if (ent == "apos") {
        out += '\'';
      } else if (ent == "quot") {
        out += '"';
      } else if (!ent.empty() && ent[0] == '#') {
        std::string num(ent.substr(1));
        int base = 10;
        if (!num.empty() && (num[0] == 'x' || num[0] == 'X')) {
          num = num.substr(1);
          base = 16;
        }
        char* end = nullptr;
        unsigned long cp = std::strtoul(num.c_str(), &end, base);
        if (num.empty() || *end != '\0' || cp > 0x10FFFF) {
          return Error("bad character reference '&" + std::string(ent) + ";'");
        }
        AppendUtf8(out, static_cast<uint32_t>(cp));
      } else {
        return Error("unknown entity '&" + std::string(ent) + ";'");
      }
      i = semi;
    }
    return Status::Ok();
  }
  static void AppendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  Status ParseElement(XmlElement& el, int depth) {
    if (depth > 64) return Error("elements nested too deeply");
    ++pos_;  // '<'
    el.name = ParseName();
    if (el.name.empty()) return Error("expected element name");
    for (;;) {
      SkipSpace();
      if (pos_ >= s_.size()) return Error("unterminated start tag <" + el.name + ">");
      if (StartsWith("/>")) {
        pos_ += 2;
        return Status::Ok();
      }
      if (s_[pos_] == '>') {
        ++pos_;
        break;
      }
      std::string attr = ParseName();
      if (attr.empty()) return Error("expected attribute name in <" + el.name + ">");
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] != '=') return Error("expected '=' after " + attr);
      ++pos_;
      SkipSpace();
      if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\'')) {
        return Error("expected quoted value for " + attr);
      }
      char q = s_[pos_++];
      size_t e = s_.find(q, pos_);
      if (e == std::string_view::npos) return Error("unterminated value of " + attr);
      std::string value;
      RETURN_IF_ERROR(Unescape(s_.substr(pos_, e - pos_), value));
      pos_ = e + 1;
      el.attrs.emplace_back(std::move(attr), std::move(value));
    }
    // Content.
    for (;;) {
      if (pos_ >= s_.size()) return Error("unterminated element <" + el.name + ">");
      if (StartsWith("</")) {
        pos_ += 2;
        std::string close = ParseName();
        if (close != el.name) {
          return Error("</" + close + "> does not close <" + el.name + ">");
        }
        SkipSpace();
        if (pos_ >= s_.size() || s_[pos_] != '>') return Error("expected '>'");
        ++pos_;
        return Status::Ok();
      }
      if (StartsWith("<!--")) {
        size_t e = s_.find("-->", pos_);
        if (e == std::string_view::npos) return Error("unterminated comment");
        pos_ = e + 3;
      } else if (StartsWith("<![CDATA[")) {
        size_t e = s_.find("]]>", pos_);
        if (e == std::string_view::npos) return Error("unterminated CDATA");
        el.text.append(s_.substr(pos_ + 9, e - pos_ - 9));
        pos_ = e + 3;
      } else if (StartsWith("<?")) {
        size_t e = s_.find("?>", pos_);
        if (e == std::string_view::npos) return Error("unterminated processing instruction");
        pos_ = e + 2;
      } else if (s_[pos_] == '<') {
        el.children.emplace_back();
        RETURN_IF_ERROR(ParseElement(el.children.back(), depth + 1));
      } else {
        size_t e = s_.find('<', pos_);
        if (e == std::string_view::npos) e = s_.size();
        RETURN_IF_ERROR(Unescape(s_.substr(pos_, e - pos_), el.text));
        pos_ = e;
      }
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
};

uint64_t ParseU64(const XmlElement* el) {
  if (el == nullptr) return 0;
  return std::strtoull(el->text.c_str(), nullptr, 10);
}

// Whether `el` is the Stratus metadata element: local name kMetadataElement bound to
// kMetadataNamespace (declared on the element itself, as libvirt always writes it).
bool IsStratusMetadata(const XmlElement& el) {
  std::string prefix;
  std::string local = el.name;
  if (size_t colon = el.name.find(':'); colon != std::string::npos) {
    prefix = el.name.substr(0, colon);
    local = el.name.substr(colon + 1);
  }
  if (local != kMetadataElement) return false;
  const std::string* ns = el.Attr(prefix.empty() ? "xmlns" : "xmlns:" + prefix);
  return ns != nullptr && *ns == kMetadataNamespace;
}

}  // namespace

std::string XmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

Result<std::string> DiskXml(const DiskAttachment& disk, const DomainXmlOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  RETURN_IF_ERROR(ValidateDisk(disk, "disk"));
  std::string x;
  AppendDisk(x, disk, options, "");
  return x;
}

std::string DiskTargetXml(const std::string& target_dev) {
  return "<disk type='file' device='disk'><target dev='" + XmlEscape(target_dev) +
         "' bus='virtio'/></disk>";
}

std::string NicXml(const NicAttachment& nic, const std::string& indent) {
  std::string x = indent + "<interface type='bridge'>\n";
  x += indent + "  <mac address='" + XmlEscape(ToLower(nic.mac)) + "'/>\n";
  x += indent + "  <source bridge='" + XmlEscape(nic.bridge) + "'/>\n";
  x += indent + "  <target dev='" + XmlEscape(nic.tap) + "'/>\n";
  x += indent + "  <model type='virtio'/>\n";
  x += indent + "</interface>\n";
  return x;
}

Result<std::string> DomainXml(const DomainSpec& spec, const DomainXmlOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  if (spec.name.empty()) return InvalidArgument("domain name is empty", "name");
  if (spec.name.find('/') != std::string::npos) {
    return InvalidArgument("domain name '" + spec.name + "' contains '/'", "name");
  }
  RETURN_IF_ERROR(CheckXmlChars(spec.name, "name"));
  RETURN_IF_ERROR(CheckXmlChars(spec.uuid, "uuid"));
  if (spec.vcpus < 1) {
    return InvalidArgument(
        "domain " + spec.name + ": vcpus " + std::to_string(spec.vcpus) + " is less than 1",
        "vcpus");
  }
  if (spec.memory_mib < 16) {
    return InvalidArgument("domain " + spec.name + ": memory " + std::to_string(spec.memory_mib) +
                               " MiB is less than 16 MiB",
                           "memory_mib");
  }
  if (spec.kernel.empty() && (!spec.initrd.empty() || !spec.cmdline.empty())) {
    return InvalidArgument("domain " + spec.name + ": initrd/cmdline given without a kernel",
                           "kernel");
  }
  RETURN_IF_ERROR(CheckXmlChars(spec.kernel, "kernel"));
  RETURN_IF_ERROR(CheckXmlChars(spec.initrd, "initrd"));
  RETURN_IF_ERROR(CheckXmlChars(spec.cmdline, "cmdline"));
  RETURN_IF_ERROR(CheckXmlChars(spec.console_log_path, "console_log_path"));
  RETURN_IF_ERROR(CheckXmlChars(spec.metadata_json, "metadata_json"));
  std::set<std::string> targets;
  for (size_t i = 0; i < spec.disks.size(); ++i) {
    std::string field = "disks[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(ValidateDisk(spec.disks[i], field));
    if (!targets.insert(spec.disks[i].target_dev).second) {
      return InvalidArgument(
          "domain " + spec.name + ": disk target '" + spec.disks[i].target_dev + "' is used twice",
          field + ".target_dev");
    }
  }

  std::set<std::string> taps, macs;
  for (size_t i = 0; i < spec.nics.size(); ++i) {
    const NicAttachment& n = spec.nics[i];
    std::string field = "nics[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(CheckXmlChars(n.bridge, field + ".bridge"));
    RETURN_IF_ERROR(CheckXmlChars(n.tap, field + ".tap"));
    bool mac_ok = n.mac.size() == 17;
    for (size_t k = 0; mac_ok && k < 17; ++k)
      mac_ok = k % 3 == 2 ? n.mac[k] == ':' : std::isxdigit(static_cast<unsigned char>(n.mac[k]));
    if (!mac_ok || n.bridge.empty() || n.tap.empty() || n.tap.size() > 15)
      return InvalidArgument("domain " + spec.name + ": NIC " + std::to_string(i) +
                                 " needs a MAC aa:bb:cc:dd:ee:ff, a bridge and a tap name of at "
                                 "most 15 characters",
                             field);
    if (!taps.insert(n.tap).second || !macs.insert(ToLower(n.mac)).second)
      return InvalidArgument("domain " + spec.name + ": NIC tap '" + n.tap + "' or MAC '" + n.mac +
                                 "' is used twice",
                             field);
  }

  std::string x;
  x += "<domain type='" + XmlEscape(options.domain_type) + "'>\n";
  x += "  <name>" + XmlEscape(spec.name) + "</name>\n";
  if (!spec.uuid.empty()) x += "  <uuid>" + XmlEscape(spec.uuid) + "</uuid>\n";
  if (!spec.metadata_json.empty()) {
    x += "  <metadata>\n";
    x += std::string("    <") + kMetadataPrefix + ":" + kMetadataElement +
         " xmlns:" + kMetadataPrefix + "='" + kMetadataNamespace + "'>" +
         XmlEscape(spec.metadata_json) + "</" + kMetadataPrefix + ":" + kMetadataElement + ">\n";
    x += "  </metadata>\n";
  }
  x += "  <memory unit='MiB'>" + std::to_string(spec.memory_mib) + "</memory>\n";
  x += "  <vcpu placement='static'>" + std::to_string(spec.vcpus) + "</vcpu>\n";
  x += "  <os>\n";
  x += "    <type arch='x86_64' machine='" + XmlEscape(options.machine) + "'>hvm</type>\n";
  if (!spec.kernel.empty()) {
    x += "    <kernel>" + XmlEscape(spec.kernel) + "</kernel>\n";
    if (!spec.initrd.empty()) x += "    <initrd>" + XmlEscape(spec.initrd) + "</initrd>\n";
    if (!spec.cmdline.empty()) x += "    <cmdline>" + XmlEscape(spec.cmdline) + "</cmdline>\n";
  } else {
    x += "    <boot dev='hd'/>\n";
  }
  x += "  </os>\n";
  x += "  <features>\n    <acpi/>\n    <apic/>\n  </features>\n";
  if (options.domain_type == "kvm") x += "  <cpu mode='host-passthrough'/>\n";
  x += "  <clock offset='utc'/>\n";
  x += "  <on_poweroff>destroy</on_poweroff>\n";
  x += "  <on_reboot>restart</on_reboot>\n";
  x += "  <on_crash>destroy</on_crash>\n";
  x += "  <devices>\n";
  for (const auto& d : spec.disks) AppendDisk(x, d, options, "    ");
  for (const auto& n : spec.nics) x += NicXml(n, "    ");
  x += "    <serial type='pty'>\n";
  if (!spec.console_log_path.empty()) {
    x += "      <log file='" + XmlEscape(spec.console_log_path) + "' append='on'/>\n";
  }
  x += "      <target port='0'/>\n";
  x += "    </serial>\n";
  x += "    <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>\n";
  x += "    <channel type='unix'>\n";
  x += std::string("      <target type='virtio' name='") + kGuestAgentChannel + "'/>\n";
  x += "    </channel>\n";
  x += "    <controller type='usb' model='none'/>\n";
  x += "    <memballoon model='none'/>\n";
  x += "    <rng model='virtio'>\n      <backend model='random'>/dev/urandom</backend>\n"
       "    </rng>\n";
  x += "  </devices>\n";
  x += "</domain>\n";
  return x;
}

std::string BackupXml(const std::vector<std::string>& all_disks,
                      const std::vector<SnapshotTarget>& targets) {
  std::string x = "<domainbackup mode='push'>\n  <disks>\n";
  for (const auto& dev : all_disks) {
    const SnapshotTarget* t = nullptr;
    for (const auto& cand : targets) {
      if (cand.target_dev == dev) t = &cand;
    }
    if (t == nullptr) {
      x += "    <disk name='" + XmlEscape(dev) + "' backup='no'/>\n";
    } else {
      x += "    <disk name='" + XmlEscape(dev) + "' backup='yes' type='file'>\n";
      x += "      <target file='" + XmlEscape(t->dest_path) + "'/>\n";
      x += "      <driver type='qcow2'/>\n";
      x += "    </disk>\n";
    }
  }
  x += "  </disks>\n</domainbackup>\n";
  return x;
}

std::string PullBackupXml(const std::vector<std::string>& all_disks,
                          const std::vector<PullBackupDiskXml>& disks,
                          const std::string& incremental_from, const std::string& socket_path) {
  std::string x = "<domainbackup mode='pull'>\n";
  if (!incremental_from.empty()) {
    x += "  <incremental>" + XmlEscape(incremental_from) + "</incremental>\n";
  }
  x += "  <server transport='unix' socket='" + XmlEscape(socket_path) + "'/>\n";
  x += "  <disks>\n";
  for (const auto& dev : all_disks) {
    const PullBackupDiskXml* d = nullptr;
    for (const auto& cand : disks) {
      if (cand.target_dev == dev) d = &cand;
    }
    if (d == nullptr) {
      x += "    <disk name='" + XmlEscape(dev) + "' backup='no'/>\n";
      continue;
    }
    x += "    <disk name='" + XmlEscape(dev) + "' backup='yes' type='file'";
    // Per-disk backupmode (libvirt >= 7.6) lets one job mix incremental and full exports.
    if (!incremental_from.empty() && d->full) x += " backupmode='full'";
    x += ">\n";
    x += "      <scratch file='" + XmlEscape(d->scratch_path) + "'/>\n";
    x += "    </disk>\n";
  }
  x += "  </disks>\n</domainbackup>\n";
  return x;
}

std::string CheckpointXml(const std::string& name, const std::vector<std::string>& all_disks,
                          const std::vector<std::string>& bitmap_disks) {
  std::string x = "<domaincheckpoint>\n  <name>" + XmlEscape(name) + "</name>\n  <disks>\n";
  for (const auto& dev : all_disks) {
    bool bitmap = std::find(bitmap_disks.begin(), bitmap_disks.end(), dev) != bitmap_disks.end();
    x += "    <disk name='" + XmlEscape(dev) + "' checkpoint='" + (bitmap ? "bitmap" : "no") +
         "'/>\n";
  }
  x += "  </disks>\n</domaincheckpoint>\n";
  return x;
}

Result<ParsedBackup> ParseBackupXml(const std::string& xml) {
  ASSIGN_OR_RETURN(XmlElement root, XmlReader(xml).ParseDocument());
  if (root.name != "domainbackup") {
    return InvalidArgument("expected <domainbackup>, found <" + root.name + ">");
  }
  ParsedBackup out;
  out.mode = root.AttrOr("mode", "push");
  if (auto* inc = root.Child("incremental")) out.incremental = inc->text;
  if (auto* server = root.Child("server")) out.socket_path = server->AttrOr("socket");
  if (auto* disks = root.Child("disks")) {
    for (const auto& d : disks->children) {
      if (d.name != "disk") continue;
      ParsedBackupDisk disk;
      disk.target_dev = d.AttrOr("name");
      disk.backup = d.AttrOr("backup", "yes") == "yes";
      disk.mode = d.AttrOr("backupmode");
      disk.export_name = d.AttrOr("exportname");
      disk.export_bitmap = d.AttrOr("exportbitmap");
      if (auto* s = d.Child("scratch")) disk.scratch_path = s->AttrOr("file");
      out.disks.push_back(std::move(disk));
    }
  }
  return out;
}

Result<ParsedCheckpoint> ParseCheckpointXml(const std::string& xml) {
  ASSIGN_OR_RETURN(XmlElement root, XmlReader(xml).ParseDocument());
  if (root.name != "domaincheckpoint") {
    return InvalidArgument("expected <domaincheckpoint>, found <" + root.name + ">");
  }
  ParsedCheckpoint out;
  if (auto* n = root.Child("name")) out.name = n->text;
  if (auto* p = root.Child("parent")) {
    if (auto* n = p->Child("name")) out.parent = n->text;
  }
  out.creation_time = static_cast<int64_t>(ParseU64(root.Child("creationTime")));
  if (auto* disks = root.Child("disks")) {
    for (const auto& d : disks->children) {
      if (d.name != "disk" || d.AttrOr("checkpoint", "bitmap") != "bitmap") continue;
      ParsedCheckpointDisk disk;
      disk.target_dev = d.AttrOr("name");
      // libvirt names the bitmap after the checkpoint unless told otherwise.
      disk.bitmap = d.AttrOr("bitmap", out.name);
      out.disks.push_back(std::move(disk));
    }
  }
  return out;
}

Result<ParsedDomain> ParseDomainXml(const std::string& xml) {
  ASSIGN_OR_RETURN(XmlElement root, XmlReader(xml).ParseDocument());
  if (root.name != "domain") {
    return InvalidArgument("expected <domain>, found <" + root.name + ">");
  }
  ParsedDomain out;
  out.type = root.AttrOr("type");
  if (auto* n = root.Child("name")) out.name = n->text;
  if (auto* u = root.Child("uuid")) out.uuid = u->text;
  if (auto* md = root.Child("metadata")) {
    for (const auto& c : md->children) {
      if (IsStratusMetadata(c)) out.metadata_json = c.text;
    }
  }
  for (const auto& c : root.children) {
    if (c.name != "seclabel" || c.AttrOr("model") != "dac") continue;
    if (auto* label = c.Child("label")) out.dac_label = label->text;
  }
  if (auto* devices = root.Child("devices")) {
    for (const auto& d : devices->children) {
      if (d.name == "interface") {
        if (auto* m = d.Child("mac")) out.nic_macs.push_back(ToLower(m->AttrOr("address")));
        continue;
      }
      if (d.name != "disk") continue;
      ParsedDisk disk;
      disk.device = d.AttrOr("device", "disk");
      if (auto* t = d.Child("target")) disk.target_dev = t->AttrOr("dev");
      if (auto* s = d.Child("source")) {
        disk.path = s->AttrOr("file");
        if (disk.path.empty()) disk.path = s->AttrOr("dev");
      }
      if (auto* drv = d.Child("driver")) disk.format = drv->AttrOr("type");
      disk.read_only = d.Child("readonly") != nullptr;
      if (auto* s = d.Child("serial")) disk.serial = s->text;
      if (auto* io = d.Child("iotune")) {
        disk.iotune.total_iops_sec = ParseU64(io->Child("total_iops_sec"));
        disk.iotune.total_bytes_sec = ParseU64(io->Child("total_bytes_sec"));
      }
      out.disks.push_back(std::move(disk));
    }
  }
  return out;
}

Result<std::string> ParseMetadataElement(const std::string& xml) {
  ASSIGN_OR_RETURN(XmlElement root, XmlReader(xml).ParseDocument());
  return root.text;
}

const ParsedDisk* FindDisk(const ParsedDomain& domain, const std::string& target_dev) {
  for (const auto& d : domain.disks) {
    if (d.target_dev == target_dev) return &d;
  }
  return nullptr;
}

}  // namespace stratus::compute
