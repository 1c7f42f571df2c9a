// Helpers shared by providers: ARM bodies, validation of common fields, responses.
#pragma once

#include <string>

#include "api/http_types.h"
#include "api/provider.h"
#include "core/resource_id.h"
#include "store/store.h"

namespace stratus::api {

// The resource as the API returns it (stored body + etag).
Json ToArm(const store::Record& rec);
// 200/201 with the body and an ETag header.
ApiResponse ResourceResponse(const store::Record& rec, int status = 200);
// 201/202 for a started operation: Azure-AsyncOperation + Location headers.
ApiResponse AcceptedResponse(const ApiRequest& req, const std::string& subscription,
                             const std::string& op_id, Json body = nullptr, int status = 202);
std::string OperationPath(const std::string& subscription, const std::string& op_id);

// Validates `location` (absent -> region; otherwise must equal the region, case-insensitive)
// and `tags` (object of string values, at most 50, keys <= 512 chars, values <= 256).
// Returns the normalised location.
Result<std::string> ValidateLocation(const Json& body, const std::string& region);
Status ValidateTags(const Json& body);
// Rejects top-level or property keys not in `allowed` (400 InvalidParameter naming the key).
Status RejectUnknownKeys(const Json& obj, const std::vector<std::string>& allowed,
                         const std::string& where);
// Body must be a JSON object.
Status RequireObjectBody(const ApiRequest& req);
// Write precondition from If-Match / If-None-Match headers.
store::WriteCondition ConditionFromHeaders(const ApiRequest& req);
// The request's If-Match / If-None-Match against the current record (`current` null: absent).
// PreconditionFailed (412) when they fail: If-Match (even "*") needs the record with that etag;
// If-None-Match "*" needs it absent. Checked before anything is changed, no-op writes included.
Status CheckPreconditions(const ApiRequest& req, const store::Record* current);
// NotFound "ResourceGroupNotFound" unless the subscription and group exist.
Status CheckGroupExists(store::Store* store, const ResourceId& id);
// Fresh body skeleton: id, name, type, location, tags, properties, systemData.
Json NewResourceBody(const ResourceId& id, const std::string& location, const Json& tags,
                     const std::string& caller, int64_t now_ms);
// Updates systemData.lastModified*.
void TouchSystemData(Json& body, const std::string& caller, int64_t now_ms);
// The record a PUT writes: `existing` with its systemData touched, or (when it is not there) a
// new record of resource `id` (store type TypeKey(id), NewResourceBody without tags).
store::Record RecordToWrite(const Result<store::Record>& existing, const ResourceId& id,
                            const std::string& region, const std::string& caller, int64_t now_ms);
// Store type key for an id ("stratus.compute/virtualmachines").
std::string TypeKey(const ResourceId& id);
// Reads an int field with range checking (InvalidParameter naming `name`).
Result<int64_t> GetInt(const Json& obj, const std::string& name, int64_t lo, int64_t hi,
                       std::optional<int64_t> dflt = std::nullopt);
Result<std::string> GetString(const Json& obj, const std::string& name,
                              std::optional<std::string> dflt = std::nullopt);

}  // namespace stratus::api
