// PairingToken: what region A hands out so that region B can pair with it (site recovery's peer
// link). It says where A's peer listener is, which certificate A will present there (its SHA-256
// fingerprint, which B pins) and a one-time secret that proves to A that B was given the token.
// A keeps only the secret's SHA-256, its expiry and whether it was used.
//
// Text form: "SP1." + base64 of a JSON object {"v":1,"region","host","port","fingerprint",
// "secret","expiresOn"}. Whoever holds the text may pair once before it expires: treat it as a
// password (the CLI prints it once; the daemon never logs it).
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace stratus::recovery::site {

struct PairingToken {
  std::string region;       // A's region (location) name
  std::string host;         // A's peer listener
  int port = 0;
  std::string fingerprint;  // A's peer certificate, SHA-256 lowercase hex
  std::string secret;       // 64 hex characters (32 random bytes)
  int64_t expires_ms = 0;   // Unix ms
};

std::string EncodePairingToken(const PairingToken& t);

// InvalidArgument "InvalidPairingToken" (target "properties.pairingToken") naming what is wrong:
// not a Stratus pairing token, damaged, a field missing or malformed.
Result<PairingToken> DecodePairingToken(const std::string& text);

// A region name as the peer link accepts it: 1-64 of [A-Za-z0-9._-], starting with a letter or
// digit.
bool ValidRegionName(const std::string& name);

}  // namespace stratus::recovery::site
