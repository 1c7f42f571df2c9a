// Base64 (RFC 4648 section 4, the standard alphabet with '=' padding), by OpenSSL (libcrypto).
// The one codec of the tree: vault keys and manifests, guest-agent output, extracted files.
//
// Thread-safety: both functions are pure and safe to call from any thread.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace stratus {

// `data` as base64: the standard alphabet (A-Z a-z 0-9 + /), padded with '=' to a multiple of
// four characters, on one line (no line breaks). "" for empty `data`.
std::string Base64Encode(std::string_view data);

// The bytes `text` encodes; exactly as many as were encoded (padding is not decoded as bytes).
//
// Accepted: what Base64Encode writes. `text` is a whole number of four-character groups of the
// standard alphabet, where only the last group may end in one or two '='. "" decodes to "".
// Nothing else is skipped or tolerated: no whitespace or line breaks (leading, trailing or
// inside), no URL-safe alphabet ('-', '_'), no missing padding, no '=' before the end, no text
// after the padding. The unused low bits of the last character before padding are ignored, as
// OpenSSL does ("Zh==" decodes like "Zg==").
//
// Errors: InvalidArgument (arm code "InvalidParameter"), naming the fault but never echoing the
// text (it may be key material):
//   "base64 text of N characters: the length is not a multiple of 4"
//   "base64 text: '=' at offset K comes before the final padding"
//   "base64 text: character 0xHH at offset K is not in the standard alphabet (A-Z a-z 0-9 + /)"
Result<std::string> Base64Decode(std::string_view text);

}  // namespace stratus
