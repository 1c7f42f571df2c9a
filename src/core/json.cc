#include "core/json.h"

namespace stratus {

Result<Json> ParseJson(const std::string& text) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    return InvalidArgument("The request body is not valid JSON at byte " +
                               std::to_string(e.byte) + ": " + e.what(),
                           "body", "InvalidRequestContent");
  }
}

const Json* JsonPath(const Json& doc, const std::string& dotted) {
  const Json* cur = &doc;
  size_t i = 0;
  while (i <= dotted.size()) {
    size_t j = dotted.find('.', i);
    if (j == std::string::npos) j = dotted.size();
    std::string key = dotted.substr(i, j - i);
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    cur = &*it;
    i = j + 1;
  }
  return cur;
}

}  // namespace stratus
