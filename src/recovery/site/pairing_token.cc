#include "recovery/site/pairing_token.h"

#include <cctype>

#include "core/base64.h"
#include "core/clock.h"
#include "core/json.h"

namespace stratus::recovery::site {

namespace {

constexpr char kPrefix[] = "SP1.";
constexpr char kField[] = "properties.pairingToken";

Status Bad(const std::string& why) {
  return InvalidArgument("The pairing token is not valid: " + why +
                             ". Ask the peer region for a new one (stratus recovery pair token).",
                         kField, "InvalidPairingToken");
}

bool IsLowerHex(const std::string& s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f')) return false;
  return true;
}

}  // namespace

bool ValidRegionName(const std::string& name) {
  if (name.empty() || name.size() > 64 || !std::isalnum(static_cast<unsigned char>(name[0])))
    return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return false;
  return true;
}

std::string EncodePairingToken(const PairingToken& t) {
  Json j = {{"v", 1},
            {"region", t.region},
            {"host", t.host},
            {"port", t.port},
            {"fingerprint", t.fingerprint},
            {"secret", t.secret},
            {"expiresOn", FormatIso8601(t.expires_ms)}};
  return std::string(kPrefix) + Base64Encode(j.dump());
}

Result<PairingToken> DecodePairingToken(const std::string& text) {
  if (text.rfind(kPrefix, 0) != 0 || text.size() > 4096)
    return Bad("it does not start with 'SP1.' (a Stratus pairing token)");
  auto raw = Base64Decode(std::string_view(text).substr(sizeof(kPrefix) - 1));
  if (!raw.ok()) return Bad("it was cut or changed (" + raw.status().message() + ")");
  auto parsed = ParseJson(*raw);
  if (!parsed.ok() || !parsed->is_object()) return Bad("its content is not a JSON object");
  const Json& j = *parsed;
  if (!j.contains("v") || !j["v"].is_number_integer() || j["v"].get<int>() != 1)
    return Bad("it is of an unknown version");
  auto str = [&](const char* k) -> std::string {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : "";
  };
  PairingToken t;
  t.region = str("region");
  t.host = str("host");
  t.fingerprint = str("fingerprint");
  t.secret = str("secret");
  if (!ValidRegionName(t.region)) return Bad("its region name is missing or malformed");
  if (t.host.empty() || t.host.size() > 253) return Bad("its host is missing");
  auto port = j.find("port");
  if (port == j.end() || !port->is_number_integer() || port->get<int64_t>() < 1 ||
      port->get<int64_t>() > 65535)
    return Bad("its port is missing or out of range");
  t.port = port->get<int>();
  if (!IsLowerHex(t.fingerprint, 64)) return Bad("its certificate fingerprint is malformed");
  if (!IsLowerHex(t.secret, 64)) return Bad("its secret is malformed");
  auto expires = ParseIso8601(str("expiresOn"), kField);
  if (!expires.ok()) return Bad("its expiry is malformed");
  t.expires_ms = *expires;
  return t;
}

}  // namespace stratus::recovery::site
