#include "storage/image_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "core/json.h"
#include "core/subprocess.h"

namespace stratus::storage {
namespace {

Status Bad(const std::string& code, const std::string& msg, const std::string& field) {
  return InvalidArgument(msg, field, code);
}

uint64_t Be(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

// The format from the file's own bytes (qcow2 magic, else raw), and for qcow2 the header fields
// that would make qemu open another file: read here so that qemu-img never probes a format or
// follows a reference.
Result<std::string> FormatOf(const std::string& path, const std::string& field) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Bad("InvalidImage", "The image file cannot be read.", field);
  unsigned char h[104] = {};
  ssize_t n = ::pread(fd, h, sizeof h, 0);
  ::close(fd);
  if (n < 4 || std::memcmp(h, "QFI\xfb", 4) != 0) return std::string("raw");
  if (n < 72) return Bad("InvalidImage", "The qcow2 header is truncated.", field);
  uint64_t version = Be(h + 4, 4);
  if (version < 2 || version > 3)
    return Bad("InvalidImage", "qcow2 version " + std::to_string(version) + " is not supported.",
               field);
  if (Be(h + 8, 8) != 0)
    return Bad("InvalidImage",
               "The image has a backing file; import a self-contained image (qemu-img convert "
               "it first).",
               field);
  if (Be(h + 32, 4) != 0) return Bad("InvalidImage", "Encrypted images cannot be imported.", field);
  if (version == 3) {
    if (n < 80) return Bad("InvalidImage", "The qcow2 header is truncated.", field);
    uint64_t incompatible = Be(h + 72, 8);
    if (incompatible & 0x4)
      return Bad("InvalidImage",
                 "The image keeps its data in an external file; import a self-contained image.",
                 field);
  }
  return std::string("qcow2");
}

}  // namespace

Result<ImageFileInfo> InspectImageFile(const std::string& path, const std::string& field) {
  ASSIGN_OR_RETURN(std::string format, FormatOf(path, field));
  // The format is pinned (-f): no probing, no other format's references. Bounded in time and
  // memory: a crafted image must not hang or exhaust the daemon's host.
  auto info = RunProcess({"timeout", "60", "prlimit", "--as=4294967296", "--cpu=60", "qemu-img",
                          "info", "-U", "-f", format, "--output=json", path});
  Json j = Json();
  if (info.ok() && info->exit_code == 0) {
    auto parsed = ParseJson(info->out);
    if (parsed.ok()) j = std::move(parsed).value();
  }
  if (!j.is_object())
    return Bad("InvalidImage", "The file is not a readable qcow2 or raw image.", field);
  ImageFileInfo out;
  out.format = format;
  // Belt and braces: what qemu-img reports must agree with the header checks above.
  if (j.contains("backing-filename") || j.contains("full-backing-filename"))
    return Bad("InvalidImage",
               "The image has a backing file; import a self-contained image (qemu-img convert "
               "it first).",
               field);
  if (JsonPath(j, "format-specific.data.data-file"))
    return Bad("InvalidImage",
               "The image keeps its data in an external file; import a self-contained image.",
               field);
  if (j.value("encrypted", false))
    return Bad("InvalidImage", "Encrypted images cannot be imported.", field);
  const Json* vs = JsonPath(j, "virtual-size");
  if (!vs || !vs->is_number_unsigned())
    return Bad("InvalidImage", "The image has no virtual size.", field);
  out.virtual_size = vs->get<uint64_t>();
  return out;
}

}  // namespace stratus::storage
