// API paths of Stratus resources and the resolution of names given where an id is expected.
//
// Options such as `--source`, `--attach-data-disks` or `vm disk attach --name` take either a full
// resource id (`/subscriptions/...`) or a bare name, which is resolved within `-g` to the full id
// of the right type. Ids of the wrong type are usage errors (exit 2).
#pragma once

#include <string>

#include "cli/cli_error.h"
#include "cli/client.h"
#include "core/json.h"

namespace stratus::cli {

enum class ResourceKind { kVirtualMachine, kDisk, kSnapshot, kImage };

// "Stratus.Compute", "virtualMachines", "virtual machine".
const char* ProviderNamespace(ResourceKind kind);
const char* TypeSegment(ResourceKind kind);
const char* Noun(ResourceKind kind);

std::string SubscriptionPath(const std::string& sub);
std::string GroupPath(const std::string& sub, const std::string& rg);
// `.../resourceGroups/{rg}/providers/{ns}/{type}` and `.../{name}`.
std::string CollectionPath(const std::string& sub, const std::string& rg, ResourceKind kind);
std::string ResourcePath(const std::string& sub, const std::string& rg, ResourceKind kind,
                         const std::string& name);
// An operation given by id ("3f2a...") or by its URL/path as printed by --no-wait.
std::string OperationPath(const std::string& sub, const std::string& id_or_url);

// True for "/subscriptions/..." (case-insensitive).
bool LooksLikeResourceId(const std::string& s);

// The full id of `name_or_id` as a `kind`: an id is checked for its type; a name needs `rg`
// (usage error naming `option` otherwise). No request is made.
CliResult<std::string> ResolveResourceId(const std::string& sub, const std::string& rg,
                                         const std::string& name_or_id, ResourceKind kind,
                                         const std::string& option);

// The id of a snapshot or disk to copy from. A name is looked up in `rg` as a snapshot and as a
// disk: exactly one must exist (404 if neither, usage error if both).
CliResult<std::string> ResolveCopySource(ApiClient& client, const std::string& sub,
                                         const std::string& rg, const std::string& name_or_id,
                                         const std::string& option);

// An `imageReference` object. A platform image name ("tiny") is referenced by name; an image
// id is used as is; another name is looked up as an image in `rg`. Unknown -> 404 ImageNotFound.
CliResult<Json> ResolveImageReference(ApiClient& client, const std::string& sub,
                                      const std::string& rg, const std::string& name_or_id);

// The platform images collection.
std::string PlatformImagesPath(const std::string& sub);

}  // namespace stratus::cli
