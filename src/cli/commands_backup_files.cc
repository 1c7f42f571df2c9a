// stratus backup files list|extract
#include <cstdint>

#include "cli/backup_common.h"
#include "core/base64.h"
#include "core/fs.h"

namespace stratus::cli::backup {
namespace {

const TableSpec& FileEntryTable() {
  static const TableSpec kSpec = {
      FieldColumn("Name", "name"),
      FieldColumn("Type", "type"),
      FieldColumn("Size", "size"),
  };
  return kSpec;
}

const TableSpec& ExtractedFileTable() {
  static const TableSpec kSpec = {
      FieldColumn("Path", "path"),
      FieldColumn("Size", "size"),
      FieldColumn("LocalPath", "localPath"),
  };
  return kSpec;
}

// POSTs a synchronous recovery point action; also follows an operation if the server starts one.
CliResult<Json> PointAction(Context& ctx, const BackupArgs& a, const std::string& action,
                            const Json& body, bool* pending) {
  CLI_ASSIGN_OR_RETURN(std::string point, RecoveryPointPath(ctx, a));
  CLI_ASSIGN_OR_RETURN(Context::WriteOutcome outcome,
                       ctx.Write("POST", point + "/" + action, &body));
  *pending = outcome.pending;
  if (outcome.operation.has_value()) return ActionResult(outcome);
  return outcome.response.body;
}

CliStatus FilesList(Context& ctx, const BackupArgs& a) {
  Json body = {{"disk", a.disk}, {"path", a.dir}};
  bool pending = false;
  CLI_ASSIGN_OR_RETURN(Json result, PointAction(ctx, a, "listFiles", body, &pending));
  if (pending) return CliStatus::Ok();
  const Json* entries = JsonPath(result, "entries");
  std::vector<Json> rows;
  if (entries != nullptr && entries->is_array()) rows.assign(entries->begin(), entries->end());
  PrintMany(ctx.out(), ctx.format(), FileEntryTable(), rows);
  return CliStatus::Ok();
}

// Where the file at `remote` (an absolute path in the guest) goes under `dir`: dir + remote, as
// tar and restic restore do. A path that would leave `dir` ("..") is refused.
CliResult<std::string> LocalPathFor(const std::string& dir, const std::string& remote) {
  std::string out = dir;
  size_t pos = 0;
  int parts = 0;
  while (pos <= remote.size()) {
    size_t end = remote.find('/', pos);
    if (end == std::string::npos) end = remote.size();
    std::string part = remote.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..")
      return CliError(ExitCode::kUnavailable, "InvalidResponse",
                      "extractFiles returned the path '" + remote +
                          "', which would be written outside --to; nothing more was written.");
    out = JoinPath(out, part);
    ++parts;
  }
  if (parts == 0)
    return CliError(ExitCode::kUnavailable, "InvalidResponse",
                    "extractFiles returned a file without a path ('" + remote + "').");
  return out;
}

CliStatus FilesExtract(Context& ctx, const BackupArgs& a) {
  Json body = {{"disk", a.disk}, {"paths", StringList(a.paths)}};
  bool pending = false;
  CLI_ASSIGN_OR_RETURN(Json result, PointAction(ctx, a, "extractFiles", body, &pending));
  if (pending) return CliStatus::Ok();
  const Json* files = JsonPath(result, "files");
  std::vector<Json> written;
  if (files != nullptr && files->is_array()) {
    for (const Json& file : *files) {
      std::string remote = Str(file, "path");
      CLI_ASSIGN_OR_RETURN(std::string local, LocalPathFor(a.to, remote));
      auto data = Base64Decode(Str(file, "contentBase64"));
      if (!data.ok())
        return CliError(ExitCode::kUnavailable, "InvalidResponse",
                        "extractFiles returned contentBase64 that is not base64.");
      size_t slash = local.find_last_of('/');
      if (slash != std::string::npos && slash > 0) {
        Status made = MakeDirs(local.substr(0, slash));
        if (!made.ok()) return LocalError(made);
      }
      // 0600: the guest's permissions are not known; never make a restored file wider.
      Status wrote = WriteFileAtomic(local, *data, 0600);
      if (!wrote.ok()) return LocalError(wrote);
      written.push_back(
          {{"path", remote}, {"size", static_cast<int64_t>(data->size())}, {"localPath", local}});
    }
  }
  PrintMany(ctx.out(), ctx.format(), ExtractedFileTable(), written);
  return CliStatus::Ok();
}

}  // namespace

void RegisterFiles(CLI::App* backup, Action* selected) {
  CLI::App* files = AddNoun(*backup, "files", "Browse and extract files of a recovery point");
  CLI::App* cmd = nullptr;
  auto common = [](CLI::App* c, BackupArgs& a) {
    c->add_option("--item", a.name, "Protected item name")->required();
    c->add_option("--recovery-point", a.recovery_point, "Recovery point id")->required();
    c->add_option("--disk", a.disk, "Disk of the point: osdisk, lun0, ...")->required();
  };

  auto list = AddVaultLeaf(files, selected, "list", "List a directory", FilesList, &cmd);
  common(cmd, *list);
  cmd->add_option("--path", list->dir, "Directory")->capture_default_str();

  auto extract =
      AddVaultLeaf(files, selected, "extract", "Copy files out of a recovery point (to DIR/<path>)",
                   FilesExtract, &cmd);
  common(cmd, *extract);
  cmd->add_option("--path", extract->paths, "File or directory to extract (repeatable)")
      ->required();
  cmd->add_option("--to", extract->to, "Local directory to write into")->required();
}

}  // namespace stratus::cli::backup
