// NbdSource: a disk read (or written) over NBD with libnbd, the way every backup reads a disk.
//
// The same client serves offline images (QemuNbdExport runs qemu-nbd on a qcow2 file) and
// running VMs (libvirt pull-mode backup exports the disks over an NBD unix socket). It opens
// several connections so that workers read in parallel (one libnbd handle per worker: a handle
// serialises its own commands), and asks the first one for block-status meta contexts:
//   "base:allocation"           which extents are holes / read as zeroes (never stored)
//   "qemu:dirty-bitmap:<name>"  which extents changed since the bitmap (checkpoint) was created
//
// Thread-safety: Read/Write on distinct connection indices may run concurrently; Extents() uses
// connection 0 and must not run concurrently with other calls on connection 0.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "recovery/datapath/qcow2_direct_reader.h"

struct nbd_handle;

namespace stratus::recovery::datapath {

inline constexpr char kBaseAllocation[] = "base:allocation";
inline constexpr uint32_t kStateHole = 1;   // base:allocation: not allocated
inline constexpr uint32_t kStateZero = 2;   // base:allocation: reads as zeroes
inline constexpr uint32_t kStateDirty = 1;  // qemu:dirty-bitmap:*: changed
// "qemu:dirty-bitmap:<bitmap>"
std::string DirtyBitmapContext(const std::string& bitmap);

struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint32_t flags = 0;
};

// `extents` sorted by offset with overlapping or touching ones joined (flags of a joined extent:
// the first one's). Empty extents are dropped.
std::vector<Extent> MergeExtents(std::vector<Extent> extents);
// The sum of the extents' lengths.
uint64_t TotalBytes(const std::vector<Extent>& extents);

// RAII owner of one libnbd handle.
class NbdConnection {
 public:
  explicit NbdConnection(nbd_handle* h) : h_(h) {}
  ~NbdConnection();
  NbdConnection(const NbdConnection&) = delete;
  NbdConnection& operator=(const NbdConnection&) = delete;
  nbd_handle* get() const { return h_; }

 private:
  nbd_handle* h_;
};

class NbdSource {
 public:
  struct Options {
    // "nbd+unix:///<export>?socket=/path", "nbd://host:port/<export>", or a unix socket path.
    std::string address;
    std::string export_name;  // used with a socket path only
    int connections = 1;      // the server must accept that many clients (qemu-nbd --shared)
    // Meta contexts requested on connection 0; HasMetaContext() says which the server granted.
    std::vector<std::string> meta_contexts = {kBaseAllocation};
    bool need_writable = false;  // fail when the export is read-only
  };
  // Connects all connections. Unavailable ("NbdConnectFailed") naming the address on failure.
  static Result<std::unique_ptr<NbdSource>> Connect(const Options& options);
  ~NbdSource();

  uint64_t size() const { return size_; }
  int connections() const { return static_cast<int>(conns_.size()); }
  bool read_only() const { return read_only_; }
  const std::string& address() const { return address_; }
  bool HasMetaContext(const std::string& context) const;

  // The extents of `context` over the whole disk, in order, adjacent ones with equal flags
  // merged. FailedPrecondition-like InvalidArgument when the context was not granted.
  Result<std::vector<Extent>> Extents(const std::string& context);

  // Reads/writes `len` bytes at `offset` on connection `connection` (0 <= c < connections()).
  Status Read(int connection, uint64_t offset, void* buf, size_t len);
  Status Write(int connection, uint64_t offset, const void* buf, size_t len);
  // Writes `len` zero bytes at `offset` (the server may punch a hole).
  Status Zero(int connection, uint64_t offset, uint64_t len);
  // Flushes every connection (the server writes its caches to stable storage).
  Status Flush();

  // Reads are served from `reader` (the exported image's files, mapped) where it can, and
  // over NBD where it cannot (compressed clusters). Block status still comes from NBD.
  void AttachDirectReader(std::unique_ptr<Qcow2DirectReader> reader);
  bool has_direct_reader() const { return direct_ != nullptr; }

 private:
  NbdSource() = default;
  std::string address_;
  uint64_t size_ = 0;
  bool read_only_ = true;
  std::vector<std::string> granted_;
  std::vector<std::unique_ptr<NbdConnection>> conns_;
  std::unique_ptr<Qcow2DirectReader> direct_;
};

}  // namespace stratus::recovery::datapath
