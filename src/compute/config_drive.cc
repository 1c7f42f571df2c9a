#include "compute/config_drive.h"

#include <cstdlib>
#include <unistd.h>

#include "core/fs.h"
#include "core/subprocess.h"

namespace stratus::compute {

Status BuildConfigDrive(const std::string& path, const ConfigDriveContent& c) {
  char tmpl[] = "/tmp/stratus-cfgdrive-XXXXXX";
  if (!mkdtemp(tmpl)) return Internal("cannot create a temp dir for the config drive");
  std::string dir = tmpl;
  auto cleanup = [&] { RemoveTree(dir); };
  Status st = WriteFileAtomic(JoinPath(dir, "hostname"), c.hostname + "\n");
  if (st.ok() && !c.user_script.empty())
    st = WriteFileAtomic(JoinPath(dir, "user-script"), c.user_script, 0755);
  if (st.ok() && !c.network.empty()) st = WriteFileAtomic(JoinPath(dir, "network"), c.network);
  for (size_t i = 0; st.ok() && i < c.more_networks.size(); ++i)
    st = WriteFileAtomic(JoinPath(dir, "network." + std::to_string(i + 1)), c.more_networks[i]);
  if (st.ok() && !c.meta_json.empty())
    st = WriteFileAtomic(JoinPath(dir, "meta.json"), c.meta_json);
  if (!st.ok()) {
    cleanup();
    return st;
  }
  std::string tmp_img = path + ".tmp";
  RemoveFile(tmp_img);
  auto r = RunChecked({"mke2fs", "-q", "-F", "-t", "ext2", "-L", "cidata", "-d", dir, tmp_img,
                       "4M"});
  cleanup();
  if (!r.ok()) return r.status();
  if (::rename(tmp_img.c_str(), path.c_str()) != 0)
    return Internal("rename config drive to '" + path + "' failed");
  return Status::Ok();
}

}  // namespace stratus::compute
