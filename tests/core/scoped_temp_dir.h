// ScopedTempDir: a fresh directory under /var/tmp for one test, removed (with everything in it)
// when the object goes away. /var/tmp rather than /tmp: qemu-img and SQLite want a real file
// system, and /tmp may be a small tmpfs.
#pragma once

#include <stdlib.h>
#include <sys/stat.h>

#include <string>

#include "core/fs.h"

namespace stratus::test {

class ScopedTempDir {
 public:
  explicit ScopedTempDir(const std::string& tag = "unit") {
    std::string tmpl = "/var/tmp/stratus-" + tag + "-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) {
      path_ = tmpl;
      ::chmod(path_.c_str(), 0755);
    }
  }
  ~ScopedTempDir() {
    if (!path_.empty()) RemoveTree(path_);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  std::string Path(const std::string& name) const { return JoinPath(path_, name); }

 private:
  std::string path_;
};

}  // namespace stratus::test
