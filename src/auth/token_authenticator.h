// Bearer-token authentication.
//
// Tokens are 256-bit random strings. Only their SHA-256 is stored (store setting
// "token.<sha256hex>" -> principal JSON), so a copy of the state database reveals no token.
// The first start creates an admin token and writes it to <data_dir>/admin.token (mode 0600).
// Tokens that authenticated once are remembered in memory (by their SHA-256), so a request does
// not wait for the state store, whose lock a writer holds through its fsync. Nothing revokes a
// token today; revocation will have to drop it from that cache too. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <shared_mutex>
#include <string>

#include "core/status.h"
#include "store/store.h"

namespace stratus::auth {

struct Principal {
  std::string name;  // e.g. "admin"
  std::string role;  // built-in role, e.g. "Owner"
};

class TokenAuthenticator {
 public:
  // Loads the token table; creates the admin token file on first start.
  static Result<std::unique_ptr<TokenAuthenticator>> Init(store::Store* store,
                                                          const std::string& data_dir);
  // Unauthorized (401 "AuthenticationFailed") for a missing, malformed or unknown token.
  Result<Principal> Authenticate(const std::string& authorization_header) const;
  // Issues a new token for `principal`; returns it (shown once).
  Result<std::string> Issue(const Principal& principal);

  const std::string& admin_token_path() const { return admin_token_path_; }
  bool created_admin_token() const { return created_; }

 private:
  TokenAuthenticator(store::Store* store) : store_(store) {}
  store::Store* store_;
  mutable std::shared_mutex cache_mu_;                  // guards cache_
  mutable std::map<std::string, Principal> cache_;     // token SHA-256 -> principal
  std::string admin_token_path_;
  bool created_ = false;
};

// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(const std::string& data);

}  // namespace stratus::auth
