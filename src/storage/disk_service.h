// DiskService: managed disks and snapshots as resources — the logic the Stratus.Storage API
// and the compute controller share (the compute controller creates OS/data disks of a VM).
//
// Files: <data_dir>/disks/<uniqueId>.qcow2 and <data_dir>/snapshots/<uniqueId>.qcow2; the path
// is kept in the record's internal state. Every create is idempotent so that an operation
// resumed after a daemon crash can run it again. Thread-safe; callers hold the resource locks.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "api/provider.h"
#include "storage/disk_engine.h"
#include "storage/disk_tiers.h"

namespace stratus::storage {

// kAdopt: `source_path` is a finished qcow2 file (a restore) on the disks' file system; it is
// renamed into place, not copied.
enum class CreateOption { kEmpty, kFromImage, kCopy, kAdopt };

struct DiskSpec {
  ResourceId id;
  std::string location;
  Json tags = Json::object();
  std::string sku = "Standard_LRS";
  int64_t size_gb = 0;          // 0 = size of the source
  CreateOption option = CreateOption::kEmpty;
  std::string source_path;      // image file (FromImage) or disk/snapshot file (Copy)
  Json creation_data = Json::object();  // echoed in properties.creationData
};

// What the disk service needs of the VMs that own disks: implemented by compute::VmService,
// handed in by the daemon's wiring (storage does not depend on compute). Thread-safe.
class DiskOwners {
 public:
  virtual ~DiskOwners() = default;
  // Copies of disks that belong to a running VM are taken by the VM's engine (one instant for
  // all of them). Given (disk key -> destination file) pairs, returns whether the guest file
  // system was frozen, or NotFound when no running VM holds the disks (copy offline then).
  virtual Result<bool> LiveSnapshot(
      const std::string& vm_id, const std::vector<std::pair<std::string, std::string>>& targets,
      bool quiesce) = 0;
  // Whether VM `vm_id` (a resource id) runs; resize of an in-use disk is refused then.
  virtual bool IsRunning(const std::string& vm_id) = 0;
  // Re-applies a disk's caps on the VM it is attached to (tier change).
  virtual Status ApplyTier(const std::string& vm_id, const ResourceId& disk) = 0;
};

// What storage needs of the images compute owns: the disk file a new disk is copied from
// (`creationData.imageReference`). Implemented by compute::ImageCatalog, handed in by the
// daemon's wiring. Thread-safe.
class ImageFiles {
 public:
  virtual ~ImageFiles() = default;
  // The disk file of image `image_id` (a platform image name or an image resource id) as seen
  // from `subscription`; NotFound "ImageNotFound" (target imageReference.id) when there is none.
  virtual Result<std::string> ImageFile(const std::string& image_id,
                                        const std::string& subscription) const = 0;
};

class DiskService {
 public:
  DiskService(api::RegionContext ctx, DiskEngine* engine) : ctx_(std::move(ctx)), engine_(engine) {}

  // 400 DiskTooLarge / InvalidParameter when `size_gb` is out of range or larger than the free
  // space of the host file system holding the disks.
  Status ValidateSize(int64_t size_gb) const;
  // Resolves a source for Copy: a disk or snapshot id in the region. Returns its file and size.
  Result<std::pair<std::string, uint64_t>> ResolveCopySource(const std::string& source_id) const;

  // Creates record (provisioningState Creating) + file, then marks Succeeded. Idempotent.
  Result<store::Record> EnsureDisk(const DiskSpec& spec, const std::string& caller);
  // Records `vm_id` as the disk's owner ("" = detach). NotFound if the disk is gone.
  Status SetAttachment(const ResourceId& disk, const std::string& vm_id, int lun = -1);
  Result<std::string> PathOf(const ResourceId& disk) const;
  // Deletes file and record. Conflict ("DiskAttached") if attached, unless `force`.
  Status DeleteDisk(const ResourceId& disk, bool force = false);

  // Snapshot of one disk (live through the hook when its VM runs). Idempotent.
  Result<store::Record> EnsureSnapshot(const ResourceId& snap, const std::string& location,
                                       const Json& tags, const ResourceId& source_disk,
                                       const std::string& caller);
  // Writes a snapshot record for a file the caller already made (multi-disk VM snapshots).
  Result<store::Record> RecordSnapshot(const ResourceId& snap, const std::string& location,
                                       const ResourceId& source_disk, const std::string& path,
                                       const std::string& consistency, const std::string& caller);
  Status DeleteSnapshot(const ResourceId& snap);
  std::string NewSnapshotPath(std::string* unique_id) const;

  // Grows a disk / changes its tier (validated by the caller).
  Result<store::Record> Update(const ResourceId& disk, int64_t new_size_gb,
                               const std::string& new_sku, const std::string& caller);

  // Fills properties from the tier (caps) and the engine (allocated bytes).
  void DecorateDisk(Json& body, const std::string& path) const;

  DiskEngine* engine() const { return engine_; }
  // The VMs that own disks (set once by the wiring, before serving; may stay null in tests of
  // storage alone: disks then count as owned by stopped VMs).
  void SetOwners(DiskOwners* owners) { owners_ = owners; }
  DiskOwners* owners() const { return owners_; }

 private:
  api::RegionContext ctx_;
  DiskEngine* engine_;
  DiskOwners* owners_ = nullptr;
};

}  // namespace stratus::storage
