#include "recovery/service/file_restore.h"

#include <sstream>

#include "api/resource_util.h"
#include "core/fs.h"
#include "core/subprocess.h"
#include "core/uuid.h"
#include "recovery/datapath/restore_disk.h"
#include "core/base64.h"

namespace stratus::recovery::service {

using api::ApiRequest;
using api::ApiResponse;

Result<ApiResponse> FileRestore::Post(const ApiRequest& req, const ResourceId& point_id,
                                      const std::string& action) {
  const bool list = EqualsIgnoreCase(action, "listFiles");
  const Json& b = req.body.is_object() ? req.body : Json::object();
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      b,
      list ? std::vector<std::string>{"disk", "path"} : std::vector<std::string>{"disk", "paths"},
      ""));
  ASSIGN_OR_RETURN(std::string disk, api::GetString(b, "disk"));
  std::vector<std::string> paths;
  if (list) {
    ASSIGN_OR_RETURN(std::string p, api::GetString(b, "path", "/"));
    paths.push_back(p);
  } else {
    if (!b.contains("paths") || !b["paths"].is_array() || b["paths"].empty() ||
        b["paths"].size() > 100)
      return InvalidArgument("'paths' must list 1 to 100 file paths.", "paths");
    for (auto& p : b["paths"]) {
      if (!p.is_string()) return InvalidArgument("'paths' must be strings.", "paths");
      paths.push_back(p.get<std::string>());
    }
  }
  for (auto& p : paths)
    if (p.empty() || p[0] != '/' || p.find('"') != std::string::npos ||
        p.find('\n') != std::string::npos)
      return InvalidArgument("'" + p + "' must be an absolute path without quotes.",
                             list ? "path" : "paths");
  ASSIGN_OR_RETURN(store::Record point_rec, ctx_.store->Get(point_id.Key()));
  ASSIGN_OR_RETURN(vault::Vault * v, vaults_->Open(point_id.Parent().Parent()));
  ASSIGN_OR_RETURN(vault::RecoveryPoint point, v->ReadPoint(point_rec.body.value("name", "")));
  if (!point.FindDisk(disk))
    return NotFound("The recovery point has no disk '" + disk + "'.", "disk", "DiskNotFound");
  std::string dir = JoinPath(ctx_.data_dir, "scratch/files-" + NewUuid());
  RETURN_IF_ERROR(MakeDirs(dir, 0700));
  struct Cleanup {
    std::string d;
    ~Cleanup() { RemoveTree(d); }
  } cleanup{dir};
  std::string raw = JoinPath(dir, "disk.raw");
  datapath::RestoreOptions ro;
  ro.format = datapath::DiskFormat::kRaw;
  RETURN_IF_ERROR(datapath::RestoreDisk(*v, point, disk, raw, ro).status());
  auto debugfs = [&](const std::string& cmd) -> Result<ProcessResult> {
    return RunProcess({"debugfs", "-R", cmd, raw});
  };
  auto not_found = [&](const ProcessResult& r, const std::string& p) -> Status {
    if (r.err.find("not found") != std::string::npos ||
        r.err.find("File not found") != std::string::npos)
      return NotFound("'" + p + "' does not exist on disk " + disk + " of the point.", p,
                      "FileNotFound");
    if (r.err.find("Bad magic") != std::string::npos ||
        r.err.find("Can't find") != std::string::npos ||
        r.err.find("superblock") != std::string::npos)
      return InvalidArgument("Disk " + disk +
                                 " of the point does not hold an ext2/3/4 file system "
                                 "(only those can be browsed).",
                             "disk", "UnsupportedFileSystem");
    return Status::Ok();
  };
  if (list) {
    ASSIGN_OR_RETURN(ProcessResult r, debugfs("ls -p \"" + paths[0] + "\""));
    RETURN_IF_ERROR(not_found(r, paths[0]));
    Json entries = Json::array();
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) {
      // "/inode/mode/uid/gid/name/size/"
      std::vector<std::string> f;
      size_t pos = 0;
      while (pos < line.size()) {
        size_t next = line.find('/', pos + 1);
        if (next == std::string::npos) break;
        f.push_back(line.substr(pos + 1, next - pos - 1));
        pos = next;
      }
      if (f.size() < 6 || f[4] == "." || f[4] == ".." || f[4].empty()) continue;
      unsigned mode = static_cast<unsigned>(std::strtoul(f[1].c_str(), nullptr, 8));
      std::string type = (mode & 0170000) == 0040000   ? "Directory"
                         : (mode & 0170000) == 0120000 ? "SymbolicLink"
                         : (mode & 0170000) == 0100000 ? "File"
                                                       : "Other";
      entries.push_back({{"name", f[4]},
                         {"type", type},
                         {"size", std::strtoull(f[5].c_str(), nullptr, 10)},
                         {"mode", f[1]}});
    }
    if (entries.empty() && !r.err.empty()) {
      RETURN_IF_ERROR(not_found(r, paths[0]));
    }
    return ApiResponse::Json200({{"disk", disk}, {"path", paths[0]}, {"entries", entries}});
  }
  Json files = Json::array();
  uint64_t total = 0;
  int n = 0;
  for (auto& p : paths) {
    std::string out = JoinPath(dir, "file-" + std::to_string(n++));
    ASSIGN_OR_RETURN(ProcessResult r, debugfs("dump \"" + p + "\" " + out));
    RETURN_IF_ERROR(not_found(r, p));
    auto content = ReadFile(out);
    if (!content.ok())
      return NotFound("'" + p + "' could not be read from disk " + disk + " (not a regular file?).",
                      p, "FileNotFound");
    total += content->size();
    if (total > (16u << 20))
      return InvalidArgument(
          "The files are larger than 16 MiB together; restore the disk "
          "(RestoreDisks) instead.",
          "paths", "ResultTooLarge");
    files.push_back(
        {{"path", p}, {"size", content->size()}, {"contentBase64", Base64Encode(*content)}});
  }
  return ApiResponse::Json200({{"disk", disk}, {"files", files}});
}

}  // namespace stratus::recovery::service
