#include "recovery/datapath/qcow2_direct_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/json.h"
#include "core/subprocess.h"

namespace stratus::recovery::datapath {
namespace {

Status NotDirect(const std::string& image, const std::string& why) {
  return Status(StatusCode::kInvalidArgument, "ImageNotDirectlyReadable",
                "image '" + image + "' cannot be read directly: " + why, image);
}

}  // namespace

Result<std::vector<Qcow2DirectReader::MapExtent>> ParseImageMap(const std::string& json_text) {
  ASSIGN_OR_RETURN(Json j, ParseJson(json_text));
  if (!j.is_array()) return Internal("qemu-img map output is not a JSON array");
  std::vector<Qcow2DirectReader::MapExtent> out;
  try {
    for (const auto& e : j) {
      Qcow2DirectReader::MapExtent x;
      x.start = e.at("start").get<uint64_t>();
      x.length = e.at("length").get<uint64_t>();
      x.depth = e.value("depth", 0);
      // "present": false means no layer holds it (reads as zeroes); "zero": reads as zeroes.
      bool zero = e.value("zero", false) || !e.value("present", true);
      x.data = e.value("data", false) && !zero;
      if (x.data && e.contains("offset")) x.host_offset = e.at("offset").get<int64_t>();
      if (x.length == 0) continue;
      if (!out.empty() && out.back().start + out.back().length != x.start)
        return Internal("qemu-img map output is not contiguous at offset " +
                        std::to_string(x.start));
      out.push_back(x);
    }
  } catch (const std::exception& e) {
    return Internal(std::string("qemu-img map output is malformed: ") + e.what());
  }
  return out;
}

Qcow2DirectReader::~Qcow2DirectReader() {
  for (int fd : fds_)
    if (fd >= 0) ::close(fd);
}

Result<std::unique_ptr<Qcow2DirectReader>> Qcow2DirectReader::FromMap(
    std::vector<MapExtent> extents, const std::vector<std::string>& files, uint64_t size) {
  std::unique_ptr<Qcow2DirectReader> r(new Qcow2DirectReader());
  uint64_t pos = 0;
  for (const auto& e : extents) {
    if (e.start != pos) return Internal("image map is not contiguous at " + std::to_string(pos));
    if (e.data && e.host_offset >= 0 &&
        (e.depth < 0 || e.depth >= static_cast<int>(files.size())))
      return Internal("image map names layer " + std::to_string(e.depth) + " of a chain of " +
                      std::to_string(files.size()));
    pos += e.length;
  }
  if (pos != size)
    return Internal("image map covers " + std::to_string(pos) + " bytes of " +
                    std::to_string(size));
  r->extents_ = std::move(extents);
  r->files_ = files;
  r->size_ = size;
  for (const auto& f : files) {
    int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return Internal("open '" + f + "' failed: " + std::strerror(errno));
    r->fds_.push_back(fd);
  }
  return r;
}

Result<std::unique_ptr<Qcow2DirectReader>> Qcow2DirectReader::Open(const std::string& image,
                                                                   const std::string& format) {
  if (format != "qcow2" && format != "raw") return NotDirect(image, "format '" + format + "'");
  ASSIGN_OR_RETURN(std::string info_text,
                   RunChecked({"qemu-img", "info", "-U", "--backing-chain", "--output=json", "-f",
                               format, image}));
  ASSIGN_OR_RETURN(Json chain, ParseJson(info_text));
  if (!chain.is_array() || chain.empty()) return Internal("qemu-img info gave no chain");
  std::vector<std::string> files;
  uint64_t size = 0;
  try {
    for (size_t i = 0; i < chain.size(); ++i) {
      const Json& layer = chain[i];
      std::string fmt = layer.value("format", "");
      if (fmt != "qcow2" && fmt != "raw")
        return NotDirect(image, "layer " + std::to_string(i) + " has format '" + fmt + "'");
      if (layer.value("encrypted", false)) return NotDirect(image, "it is encrypted");
      if (layer.contains("format-specific")) {
        const Json& fsd = layer["format-specific"];
        if (fsd.contains("data") && fsd["data"].is_object() && fsd["data"].contains("data-file"))
          return NotDirect(image, "it has an external data file");
      }
      if (i == 0) {
        files.push_back(image);
        size = layer.at("virtual-size").get<uint64_t>();
      } else {
        const Json& above = chain[i - 1];
        std::string f = above.value("full-backing-filename", layer.value("filename", ""));
        if (f.empty() || f.find("://") != std::string::npos || f.rfind("json:", 0) == 0)
          return NotDirect(image, "backing layer " + std::to_string(i) + " is not a local file");
        files.push_back(f);
      }
    }
  } catch (const std::exception& e) {
    return Internal(std::string("qemu-img info output is malformed: ") + e.what());
  }
  ASSIGN_OR_RETURN(std::string map_text,
                   RunChecked({"qemu-img", "map", "-U", "--output=json", "-f", format, image}));
  ASSIGN_OR_RETURN(auto extents, ParseImageMap(map_text));
  return FromMap(std::move(extents), files, size);
}

Result<bool> Qcow2DirectReader::Read(uint64_t offset, void* buf, size_t len) const {
  if (offset > size_ || len > size_ - offset) return false;
  // The first extent that ends after `offset`.
  auto it = std::upper_bound(extents_.begin(), extents_.end(), offset,
                             [](uint64_t off, const MapExtent& e) { return off < e.start + e.length; });
  // Check first, so a partly readable range does no I/O.
  uint64_t end = offset + len;
  for (auto e = it; e != extents_.end() && e->start < end; ++e)
    if (e->data && e->host_offset < 0) return false;
  auto* out = static_cast<uint8_t*>(buf);
  uint64_t pos = offset;
  for (auto e = it; pos < end; ++e) {
    uint64_t piece = std::min(end, e->start + e->length) - pos;
    if (!e->data) {
      std::memset(out + (pos - offset), 0, piece);
    } else {
      int fd = fds_[e->depth];
      uint64_t host = static_cast<uint64_t>(e->host_offset) + (pos - e->start);
      uint8_t* p = out + (pos - offset);
      size_t left = piece;
      while (left > 0) {
        ssize_t n = ::pread(fd, p, left, static_cast<off_t>(host));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
          return Internal("read of '" + files_[e->depth] + "' at " + std::to_string(host) +
                          " failed: " + std::strerror(errno));
        if (n == 0)
          return Internal("'" + files_[e->depth] + "' ends before offset " +
                          std::to_string(host) + " its map points to");
        p += n;
        host += static_cast<uint64_t>(n);
        left -= static_cast<size_t>(n);
      }
    }
    pos += piece;
  }
  return true;
}

}  // namespace stratus::recovery::datapath
