#include "recovery/site/region_identity.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <functional>
#include <memory>

#include "core/cert_fingerprint.h"
#include "core/fs.h"

namespace stratus::recovery::site {

namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct ExtFree {
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Bio = std::unique_ptr<BIO, BioFree>;

Status SslError(const std::string& what) { return Internal("peer identity: " + what + " failed"); }

Result<Pkey> NewKey() {
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr));
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) <= 0 ||
      EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx.get(), NID_X9_62_prime256v1) <= 0)
    return SslError("preparing an EC P-256 key");
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_keygen(ctx.get(), &raw) <= 0) return SslError("generating an EC P-256 key");
  return Pkey(raw);
}

bool IsIp(const std::string& h) {
  unsigned char buf[16];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

Result<Cert> SelfSigned(EVP_PKEY* key, const std::string& region,
                        const std::vector<std::string>& hosts) {
  Cert cert(X509_new());
  if (!cert) return SslError("allocating a certificate");
  X509_set_version(cert.get(), 2);
  // A random 128-bit serial (RFC 5280: positive, at most 20 octets).
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return SslError("drawing a serial number");
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()))) {
    BN_free(bn);
    return SslError("setting the serial number");
  }
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  std::string cn = "stratus-region " + region;
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  std::string san;
  for (auto& h : hosts) {
    if (h.empty()) continue;
    if (!san.empty()) san += ",";
    san += (IsIp(h) ? "IP:" : "DNS:") + h;
  }
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  std::vector<std::pair<int, std::string>> exts = {
      {NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
      {NID_key_usage, "critical,digitalSignature,keyCertSign"},
      {NID_ext_key_usage, "serverAuth,clientAuth"}};
  if (!san.empty()) exts.emplace_back(NID_subject_alt_name, san);
  for (auto& [nid, value] : exts) {
    std::unique_ptr<X509_EXTENSION, ExtFree> ext(
        X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str()));
    if (!ext || X509_add_ext(cert.get(), ext.get(), -1) != 1)
      return SslError("adding extension " + value);
  }
  if (X509_sign(cert.get(), key, EVP_sha256()) <= 0) return SslError("signing the certificate");
  return cert;
}

Result<std::string> ToPem(const std::function<int(BIO*)>& write) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) return SslError("writing PEM");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<Cert> ParseCert(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Cert cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) return InvalidArgument("peer identity: not a PEM certificate");
  return cert;
}

}  // namespace

Result<std::string> CertificateFingerprint(const std::string& cert_pem) {
  ASSIGN_OR_RETURN(Cert cert, ParseCert(cert_pem));
  std::string hex = CertificateSha256(cert.get());
  if (hex.empty()) return SslError("hashing a certificate");
  return hex;
}

Result<RegionIdentity> LoadOrCreateIdentity(const std::string& dir, const std::string& region,
                                            const std::vector<std::string>& hosts) {
  RegionIdentity id;
  id.cert_file = JoinPath(dir, "identity.crt");
  id.key_file = JoinPath(dir, "identity.key");
  if (!PathExists(id.cert_file) || !PathExists(id.key_file)) {
    RETURN_IF_ERROR(MakeDirs(dir, 0700));
    ASSIGN_OR_RETURN(Pkey key, NewKey());
    ASSIGN_OR_RETURN(Cert cert, SelfSigned(key.get(), region, hosts));
    ASSIGN_OR_RETURN(std::string key_pem, ToPem([&](BIO* b) {
                       return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr,
                                                       nullptr);
                     }));
    ASSIGN_OR_RETURN(std::string cert_pem,
                     ToPem([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); }));
    // The key first: a certificate on disk always has its key.
    RETURN_IF_ERROR(WriteFileAtomic(id.key_file, key_pem, 0600));
    RETURN_IF_ERROR(WriteFileAtomic(id.cert_file, cert_pem, 0600));
  }
  ASSIGN_OR_RETURN(id.cert_pem, ReadFile(id.cert_file));
  ASSIGN_OR_RETURN(std::string key_pem, ReadFile(id.key_file));
  ASSIGN_OR_RETURN(Cert cert, ParseCert(id.cert_pem));
  Bio bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  Pkey key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) return Internal("peer identity: " + id.key_file + " holds no private key");
  if (X509_check_private_key(cert.get(), key.get()) != 1)
    return Internal("peer identity: " + id.key_file + " is not the key of " + id.cert_file);
  ASSIGN_OR_RETURN(id.fingerprint, CertificateFingerprint(id.cert_pem));
  return id;
}

}  // namespace stratus::recovery::site
