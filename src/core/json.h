// JSON is nlohmann::json throughout Stratus.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"

namespace stratus {

using Json = nlohmann::json;

// Parses `text`; on failure a 400 "InvalidRequestContent" naming the byte offset.
Result<Json> ParseJson(const std::string& text);

// Looks up a dotted path ("properties.hardwareProfile.vmSize"); nullptr if absent.
const Json* JsonPath(const Json& doc, const std::string& dotted);

}  // namespace stratus
