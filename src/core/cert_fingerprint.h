// The SHA-256 fingerprint of an X.509 certificate (of its DER encoding), as lowercase hex: how
// the peer link names a region's certificate (pinned at pairing, checked on every connection).
#pragma once

#include <string>

typedef struct x509_st X509;

namespace stratus {

// "" for a null certificate or when OpenSSL cannot hash it.
std::string CertificateSha256(X509* cert);

}  // namespace stratus
