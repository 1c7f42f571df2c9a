// QemuNbdExport: qemu-nbd serving a disk image on a unix socket, for as long as the object lives.
// Used to read stopped VMs' qcow2 disks (optionally with a persistent dirty bitmap exposed as
// "qemu:dirty-bitmap:<name>") and to write restored qcow2 images. Running VMs are exported by
// libvirt's pull-mode backup instead; NbdSource reads both the same way.
//
// qemu-nbd runs as a direct child (not --fork) with PR_SET_PDEATHSIG, so it can be waited for and
// dies with its owner even on kill -9. Caveat of PDEATHSIG: it fires when the *thread* that
// started the export exits, so start and use an export on one thread (an operation's thread).
//
// The persistent dirty bitmaps it exposes (how a stopped VM's disk tracks changes between
// backups) are kept by the disk engine (storage::DiskEngine::AddBitmap and friends).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace stratus::recovery::datapath {

struct QemuNbdOptions {
  std::string image;               // path of the image file
  std::string format = "qcow2";    // "qcow2" | "raw"
  bool read_only = true;
  // Read-only without taking the image's locks (qemu-nbd --force-share): a VM may start on the
  // image meanwhile, so the reader must check afterwards that nothing wrote it (replication of a
  // stopped VM does).
  bool force_share = false;
  std::string bitmap;              // persistent dirty bitmap to expose ("" = none)
  int shared = 8;                  // max simultaneous clients (NbdSource connections)
  std::string cache;               // --cache (e.g. "writeback", "none"); "" = qemu's default
  std::string aio;                 // --aio (e.g. "threads", "io_uring"); "" = default
  std::string socket_dir;          // where to create the socket; "" = a fresh dir under /tmp
  int start_timeout_ms = 10000;
};

class QemuNbdExport {
 public:
  // Starts qemu-nbd and waits until its socket accepts connections. On failure the error
  // includes qemu-nbd's own message (e.g. bitmap not found, image locked).
  static Result<std::unique_ptr<QemuNbdExport>> Start(const QemuNbdOptions& options);
  ~QemuNbdExport();  // Stop()
  QemuNbdExport(const QemuNbdExport&) = delete;
  QemuNbdExport& operator=(const QemuNbdExport&) = delete;

  // SIGTERM, wait up to 10 s, then SIGKILL; removes the socket (and the dir if it made it).
  Status Stop();
  const std::string& socket_path() const { return socket_; }
  // "nbd+unix:///?socket=<path>" for NbdSource.
  std::string uri() const { return "nbd+unix:///?socket=" + socket_; }
  pid_t pid() const { return pid_; }

 private:
  QemuNbdExport() = default;
  pid_t pid_ = -1;
  std::string socket_;
  std::string log_;
  std::string made_dir_;  // removed on Stop() when not empty
};

}  // namespace stratus::recovery::datapath
