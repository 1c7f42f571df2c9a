#include "core/base64.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>

namespace stratus {
namespace {

// OpenSSL's block functions take an int length; longer input goes through in slices of these
// sizes (whole three-byte and four-character groups, so the slices join seamlessly).
constexpr size_t kEncodeSlice = size_t{3} << 28;
constexpr size_t kDecodeSlice = size_t{4} << 28;

bool InAlphabet(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Checks `text` against the contract in base64.h (EVP_DecodeBlock alone would trim whitespace
// and decode a '=' anywhere as zero bits) and returns how many '=' end it.
Result<size_t> CheckedPadding(std::string_view text) {
  if (text.size() % 4 != 0)
    return InvalidArgument("base64 text of " + std::to_string(text.size()) +
                           " characters: the length is not a multiple of 4");
  size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
  for (size_t i = 0; i < text.size() - padding; ++i) {
    if (InAlphabet(text[i])) continue;
    if (text[i] == '=')
      return InvalidArgument("base64 text: '=' at offset " + std::to_string(i) +
                             " comes before the final padding");
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(text[i]));
    return InvalidArgument("base64 text: character " + std::string(hex) + " at offset " +
                           std::to_string(i) +
                           " is not in the standard alphabet (A-Z a-z 0-9 + /)");
  }
  return padding;
}

}  // namespace

std::string Base64Encode(std::string_view data) {
  // EVP_EncodeBlock writes a NUL after its output: one spare byte.
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  size_t written = 0;
  for (size_t at = 0; at < data.size(); at += kEncodeSlice) {
    size_t n = std::min(kEncodeSlice, data.size() - at);
    written += static_cast<size_t>(EVP_EncodeBlock(
        reinterpret_cast<unsigned char*>(out.data() + written),
        reinterpret_cast<const unsigned char*>(data.data() + at), static_cast<int>(n)));
  }
  out.resize(written);
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  ASSIGN_OR_RETURN(size_t padding, CheckedPadding(text));
  // EVP_DecodeBlock writes three bytes per group, the padding decoded as zero bytes.
  std::string out(3 * (text.size() / 4), '\0');
  size_t written = 0;
  for (size_t at = 0; at < text.size(); at += kDecodeSlice) {
    size_t n = std::min(kDecodeSlice, text.size() - at);
    int got = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data() + written),
                              reinterpret_cast<const unsigned char*>(text.data() + at),
                              static_cast<int>(n));
    // Cannot happen: the text was checked above.
    if (got < 0) return Internal("EVP_DecodeBlock refused checked base64 text");
    written += static_cast<size_t>(got);
  }
  out.resize(written - padding);
  return out;
}

}  // namespace stratus
