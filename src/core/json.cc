#include "core/json.h"

namespace stratus {
namespace {

// SAX handler that builds the DOM (nlohmann's own builder) while enforcing
// JsonLimits. Returning false from an event stops the parse at once.
class BoundedSax {
 public:
  BoundedSax(Json& root, const JsonLimits& limits) : dom_(root, false), limits_(limits) {}

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(Json::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(Json::number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(Json::number_float_t v, const Json::string_t& s) {
    return dom_.number_float(v, s);
  }
  bool string(Json::string_t& v) {
    if (v.size() > limits_.max_string_bytes)
      return Refuse("a string is longer than " + std::to_string(limits_.max_string_bytes) +
                    " bytes");
    return dom_.string(v);
  }
  bool binary(Json::binary_t& v) { return dom_.binary(v); }
  bool start_object(std::size_t n) { return Enter() && dom_.start_object(n); }
  bool key(Json::string_t& v) {
    if (v.size() > limits_.max_key_bytes)
      return Refuse("an object key is longer than " + std::to_string(limits_.max_key_bytes) +
                    " bytes");
    return dom_.key(v);
  }
  bool end_object() {
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) { return Enter() && dom_.start_array(n); }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t position, const std::string& last_token,
                   const nlohmann::detail::exception& ex) {
    error_byte_ = position;
    syntax_ = DescribeWithoutInput(ex.what(), last_token);
    return false;
  }

  // Set when a limit stopped the parse (the parser does not know the position then).
  const std::string& refused() const { return refused_; }
  const std::string& syntax() const { return syntax_; }
  size_t error_byte() const { return error_byte_; }

 private:
  bool Enter() {
    if (++depth_ > limits_.max_depth)
      return Refuse("the document nests deeper than " + std::to_string(limits_.max_depth) +
                    " levels");
    return true;
  }
  bool Refuse(std::string why) {
    refused_ = std::move(why);
    return false;
  }

  // nlohmann's message is "[json.exception.parse_error.101] parse error at line L, column C:
  // syntax error while parsing CONTEXT - LEXER_MESSAGE; last read: 'TOKEN'[; expected WHAT]",
  // where TOKEN is `last_token` (input) and everything else is text of the library. The exact
  // "; last read: 'TOKEN'" is cut out; if it cannot be found, everything from "; last read"
  // on is dropped.
  static std::string DescribeWithoutInput(const std::string& what, const std::string& token) {
    size_t dash = what.find(" - ");
    if (dash == std::string::npos) return "syntax error";
    std::string tail = what.substr(dash + 3);
    const std::string needle = "; last read: '" + token + "'";
    size_t at = tail.find(needle);
    if (at != std::string::npos) return tail.substr(0, at) + tail.substr(at + needle.size());
    size_t last_read = tail.find("; last read: ");
    return last_read == std::string::npos ? tail : tail.substr(0, last_read);
  }

  nlohmann::detail::json_sax_dom_parser<Json> dom_;
  JsonLimits limits_;
  size_t depth_ = 0;
  std::string refused_;
  std::string syntax_;
  size_t error_byte_ = 0;
};

// Line and column (both from 1) of byte offset `byte` (1-based, as nlohmann
// counts).
std::string Position(const std::string& text, size_t byte) {
  size_t line = 1, col = 1;
  size_t end = std::min(byte > 0 ? byte - 1 : 0, text.size());
  for (size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

}  // namespace

Result<Json> ParseJson(const std::string& text, const JsonLimits& limits) {
  Json root;
  BoundedSax sax(root, limits);
  bool ok = false;
  try {
    ok = Json::sax_parse(text, &sax, Json::input_format_t::json,
                         /*strict=*/true);
  } catch (const Json::exception&) {
    ok = false;  // not expected with a SAX handler that does not throw; treat as
                 // a syntax error
  }
  if (ok) return root;
  if (!sax.refused().empty())
    return InvalidArgument("The request body is refused: " + sax.refused() + ".", "body",
                           "InvalidRequestContent");
  std::string what = sax.syntax().empty() ? std::string("syntax error") : sax.syntax();
  return InvalidArgument("The request body is not valid JSON at byte " +
                             std::to_string(sax.error_byte()) + " (" +
                             Position(text, sax.error_byte()) + "): " + what + ".",
                         "body", "InvalidRequestContent");
}

std::string DumpJson(const Json& value, int indent) {
  return value.dump(indent, ' ', false, Json::error_handler_t::replace);
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

bool IsValidUtf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

}  // namespace stratus
