#include "network/kernel_names.h"

#include <openssl/evp.h>

#include <cstdio>

namespace stratus::network {
namespace {

constexpr char kBase32[] = "abcdefghijklmnopqrstuvwxyz234567";

bool ValidRid(const std::string& rid) {
  if (rid.size() != 4) return false;
  for (char c : rid)
    if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'))) return false;
  return true;
}

Status BadRid(const std::string& rid) {
  return InvalidArgument("'" + rid.substr(0, 16) + "' is not a short region id (4 of [a-z2-7])",
                         "rid");
}

std::string Hex(uint32_t v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%0*x", digits, v);
  return buf;
}

Result<std::string> Indexed(const std::string& prefix, const std::string& rid, uint32_t index,
                            int digits, const std::string& sep = "") {
  if (!ValidRid(rid)) return BadRid(rid);
  uint32_t max = digits == 4 ? 0xffff : 0xffffff;
  if (index > max)
    return InvalidArgument("index " + std::to_string(index) + " does not fit a kernel name",
                           "index");
  return prefix + rid + sep + Hex(index, digits);
}

}  // namespace

std::string ShortRegionId(const std::string& region, const std::string& data_dir) {
  std::string input = region + "\n" + data_dir;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(input.data(), input.size(), md, &n, EVP_sha256(), nullptr);
  // The first 20 bits, 5 at a time.
  uint32_t bits = (uint32_t{md[0]} << 12) | (uint32_t{md[1]} << 4) | (md[2] >> 4);
  std::string out(4, 'a');
  for (int i = 3; i >= 0; --i) {
    out[i] = kBase32[bits & 31];
    bits >>= 5;
  }
  return out;
}

Result<std::string> VnetNamespace(const std::string& rid, uint32_t vnet) {
  return Indexed("stv-", rid, vnet, 4, "-");
}

Result<std::string> EdgeNamespace(const std::string& rid) {
  if (!ValidRid(rid)) return BadRid(rid);
  return "ste-" + rid;
}

Result<std::string> SubnetBridge(const std::string& rid, uint32_t subnet) {
  return Indexed("sb", rid, subnet, 6);
}

Result<std::string> GatewayVethOnBridge(const std::string& rid, uint32_t subnet) {
  return Indexed("sg", rid, subnet, 6);
}

Result<std::string> GatewayVethInRouter(uint32_t subnet) {
  if (subnet > 0xffffff)
    return InvalidArgument("index " + std::to_string(subnet) + " does not fit a kernel name",
                           "index");
  return "gw" + Hex(subnet, 6);
}

Result<std::string> NicTap(const std::string& rid, uint32_t nic) {
  return Indexed("st", rid, nic, 6);
}

Result<std::string> NftTable(const std::string& rid) {
  if (!ValidRid(rid)) return BadRid(rid);
  return "stratus_" + rid;
}

Result<std::string> PeeringVeth(uint32_t remote_vnet) {
  if (remote_vnet == 0 || remote_vnet > 0xffff)
    return InvalidArgument("index " + std::to_string(remote_vnet) + " is not a VNET index",
                           "index");
  return "pr" + Hex(remote_vnet, 4);
}

Result<std::string> UplinkVethInEdge(uint32_t vnet) {
  if (vnet == 0 || vnet > 0xffff)
    return InvalidArgument("index " + std::to_string(vnet) + " is not a VNET index", "index");
  return "ex" + Hex(vnet, 4);
}

Result<Ipv4> TransitAddress(uint32_t vnet) {
  if (vnet == 0 || vnet > 0xffff)
    return InvalidArgument("index " + std::to_string(vnet) + " is not a VNET index", "index");
  return Ipv4{0xa9fe0000u | vnet};
}

bool BelongsToRegion(const std::string& name, const std::string& rid) {
  if (!ValidRid(rid)) return false;
  for (const char* p : {"stv-", "ste-", "sb", "sg", "st", "stratus_"}) {
    std::string prefix = std::string(p) + rid;
    if (name.compare(0, prefix.size(), prefix) == 0) return true;
  }
  return false;
}

}  // namespace stratus::network
