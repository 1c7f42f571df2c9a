// Random identifiers from the OS CSPRNG (OpenSSL RAND_bytes).
#pragma once

#include <string>

namespace stratus {

// RFC 4122 version-4 UUID, lowercase, e.g. "3f2a...-...".
std::string NewUuid();
// `n_bytes` random bytes as lowercase hex (tokens, etags).
std::string RandomHex(size_t n_bytes);

}  // namespace stratus
