// RegionIdentity: the key and certificate a region proves itself with on the link to its paired
// regions (site recovery's peer link: mutual TLS, each side pinning the other's certificate).
//
// Made once, at the first use, in <data_dir>/peer/: an ECDSA P-256 key (identity.key, mode 0600)
// and a self-signed X.509 certificate (identity.crt, 0600 too) valid for ten years, subject
// "CN=stratus-region <region>", with the peer listener's host names and addresses as
// subjectAltName. Self-signed on purpose: there is no shared CA between regions; pairing
// exchanges the certificates' SHA-256 fingerprints over a channel authenticated by a one-time
// secret, and every later connection is checked against the pinned fingerprint.
//
// Files are written atomically (write, fsync, rename); a crash leaves either no identity (made
// again) or a whole one. Loading checks that the key matches the certificate.
// Errors: Internal naming the file or the OpenSSL step; InvalidArgument for a malformed PEM.
// Thread-safety: pure functions over files; callers serialise the first creation.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace stratus::recovery::site {

struct RegionIdentity {
  std::string cert_file;    // PEM certificate
  std::string key_file;     // PEM private key (0600)
  std::string cert_pem;
  std::string fingerprint;  // SHA-256 of the certificate's DER, lowercase hex (64 chars)
};

// Loads the identity in `dir`, or makes it when there is none. `hosts`: the names and addresses
// the peer listener is reached at (subjectAltName; IP addresses as such).
Result<RegionIdentity> LoadOrCreateIdentity(const std::string& dir, const std::string& region,
                                            const std::vector<std::string>& hosts);

// The SHA-256 fingerprint (lowercase hex) of a PEM certificate's DER encoding.
Result<std::string> CertificateFingerprint(const std::string& cert_pem);

}  // namespace stratus::recovery::site
