// OpenImageSource: how a backup reads an offline image (a stopped VM's disk, the benchmark's
// disk): qemu-nbd serves block status (allocation, the persistent dirty bitmap) and the few
// ranges that cannot be read directly; the data itself is read from the image's files through
// a Qcow2DirectReader. Falls back to NBD for everything when the image cannot be mapped.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "recovery/datapath/nbd_source.h"
#include "recovery/datapath/qemu_nbd_export.h"

namespace stratus::recovery::datapath {

struct ImageSourceOptions {
  std::string image;
  std::string bitmap;       // persistent dirty bitmap to expose ("" = none)
  std::string socket_dir;   // "" = a fresh dir under /tmp
  int connections = 3;
  bool direct_reads = true;
  bool force_share = false;  // QemuNbdOptions::force_share
};

struct ImageSource {
  std::unique_ptr<QemuNbdExport> exp;
  std::unique_ptr<NbdSource> source;
  std::string direct_unavailable;  // why direct reads are off ("" when on)
  // Disconnects, then stops qemu-nbd.
  Status Close();
};

Result<ImageSource> OpenImageSource(const ImageSourceOptions& options);

}  // namespace stratus::recovery::datapath
