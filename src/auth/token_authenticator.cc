#include "auth/token_authenticator.h"

#include <openssl/evp.h>

#include <mutex>

#include "core/fs.h"
#include "core/json.h"
#include "core/resource_id.h"
#include "core/uuid.h"

namespace stratus::auth {

std::string Sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

Result<std::unique_ptr<TokenAuthenticator>> TokenAuthenticator::Init(store::Store* store,
                                                                     const std::string& data_dir) {
  std::unique_ptr<TokenAuthenticator> a(new TokenAuthenticator(store));
  a->admin_token_path_ = JoinPath(data_dir, "admin.token");
  ASSIGN_OR_RETURN(auto existing, store->GetSetting("admin_token_sha256"));
  if (existing && PathExists(a->admin_token_path_)) return a;
  ASSIGN_OR_RETURN(std::string token, a->Issue({"admin", "Owner"}));
  RETURN_IF_ERROR(WriteFileAtomic(a->admin_token_path_, token + "\n", 0600));
  RETURN_IF_ERROR(store->PutSetting("admin_token_sha256", Sha256Hex(token)));
  a->created_ = true;
  return a;
}

Result<std::string> TokenAuthenticator::Issue(const Principal& principal) {
  std::string token = "stk_" + RandomHex(32);
  Json p = {{"name", principal.name}, {"role", principal.role}};
  RETURN_IF_ERROR(store_->PutSetting("token." + Sha256Hex(token), p.dump()));
  return token;
}

Result<Principal> TokenAuthenticator::Authenticate(const std::string& header) const {
  auto unauth = [](const std::string& msg) {
    return Status(StatusCode::kUnauthorized, "AuthenticationFailed", msg);
  };
  if (header.empty())
    return unauth("The request has no Authorization header; send 'Authorization: Bearer <token>'.");
  // RFC 7235: the scheme is case-insensitive and followed by one or more spaces.
  size_t sp = header.find(' ');
  if (sp == std::string::npos || !EqualsIgnoreCase(std::string_view(header).substr(0, sp), "Bearer"))
    return unauth("The Authorization header must be 'Bearer <token>'.");
  size_t start = header.find_first_not_of(' ', sp);
  if (start == std::string::npos)
    return unauth("The Authorization header must be 'Bearer <token>'.");
  std::string token = header.substr(start);
  while (!token.empty() && token.back() == ' ') token.pop_back();
  std::string hash = Sha256Hex(token);
  {
    std::shared_lock<std::shared_mutex> l(cache_mu_);
    auto it = cache_.find(hash);
    if (it != cache_.end()) return it->second;
  }
  ASSIGN_OR_RETURN(auto stored, store_->GetSetting("token." + hash));
  if (!stored) return unauth("The bearer token is not valid for this region.");
  Json p = Json::parse(*stored, nullptr, false);
  if (!p.is_object()) return Internal("token table entry is corrupt");
  Principal principal{p.value("name", ""), p.value("role", "")};
  std::unique_lock<std::shared_mutex> l(cache_mu_);
  cache_[hash] = principal;  // only tokens the store knows: the cache cannot be grown at will
  return principal;
}

}  // namespace stratus::auth
