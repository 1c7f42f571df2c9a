// JSON is nlohmann::json throughout Stratus.
#pragma once

#include <cstddef>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"

namespace stratus {

using Json = nlohmann::json;

// Bounds a parse must stay within. A document that nests deeper than
// `max_depth` (objects and arrays count one level each) or holds a longer
// string or object key is refused while it is being read, before any value is
// built: nothing deeper than `max_depth` ever exists in memory, so copying,
// printing or destroying a parsed value cannot exhaust the stack.
struct JsonLimits {
  size_t max_depth = 64;
  size_t max_string_bytes = std::numeric_limits<size_t>::max();
  size_t max_key_bytes = std::numeric_limits<size_t>::max();

  // What every API request body is held to (docs/api.md, "Limits").
  static JsonLimits Request() { return {64, 128 * 1024, 1024}; }
};

// Parses `text` within `limits`. On failure a 400 "InvalidRequestContent"
// (target "body") that gives the line, column and byte offset and what was
// expected there, never the input itself: the message may reach logs, and the
// input may hold a secret. Strings must be valid UTF-8.
Result<Json> ParseJson(const std::string& text, const JsonLimits& limits = JsonLimits{});

// Serialises without ever throwing: invalid UTF-8 (possible only in values
// built from non-JSON input such as a URL or a header) is replaced with U+FFFD.
std::string DumpJson(const Json& value, int indent = -1);

// Looks up a dotted path ("properties.hardwareProfile.vmSize"); nullptr if
// absent.
const Json* JsonPath(const Json& doc, const std::string& dotted);

// True if `s` is well-formed UTF-8 (no overlong forms, surrogates or code
// points > U+10FFFF).
bool IsValidUtf8(const std::string& s);

}  // namespace stratus
