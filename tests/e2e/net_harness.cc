#include "net_harness.h"

#include <signal.h>

#include <filesystem>

#include "core/fs.h"
#include "core/json.h"
#include "core/subprocess.h"
#include "network/kernel_names.h"

namespace stratus::e2e {

namespace fs = std::filesystem;

std::string RegionNetworkId(const std::string& region, const std::string& data_dir) {
  return network::ShortRegionId(region, data_dir);
}

std::string RegionNetwork::Describe() const {
  std::string s;
  for (auto& n : namespaces) s += " netns:" + n;
  for (auto& l : links) s += " link:" + l;
  for (int p : dnsmasq) s += " dnsmasq:" + std::to_string(p);
  for (auto& t : nft_tables) s += " nft:" + t;
  return s.empty() ? "(nothing)" : s;
}

RegionNetwork ListRegionNetwork(const std::string& rid) {
  RegionNetwork out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator("/run/netns", ec)) {
    std::string n = e.path().filename().string();
    if (network::BelongsToRegion(n, rid)) out.namespaces.push_back(n);
  }
  auto links = RunProcess({"ip", "-json", "link", "show"});
  if (links.ok()) {
    auto j = ParseJson(links->out);
    if (j.ok() && j->is_array())
      for (auto& l : *j) {
        std::string n = l.value("ifname", "");
        if (network::BelongsToRegion(n, rid)) out.links.push_back(n);
      }
  }
  const std::string marker = "/run/stratus/" + rid + "/";
  for (auto& e : fs::directory_iterator("/proc", ec)) {
    std::string pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    auto cmd = ReadFile("/proc/" + pid + "/cmdline");
    if (cmd.ok() && cmd->find("dnsmasq") != std::string::npos &&
        cmd->find(marker) != std::string::npos)
      out.dnsmasq.push_back(std::stoi(pid));
  }
  auto tables = RunProcess({"nft", "list", "tables"});
  if (tables.ok()) {
    std::string want = "stratus_" + rid;
    size_t at = tables->out.find(want);
    if (at != std::string::npos) out.nft_tables.push_back(want);
  }
  return out;
}

void RemoveRegionNetwork(const std::string& rid) {
  RegionNetwork left = ListRegionNetwork(rid);
  for (int p : left.dnsmasq) ::kill(p, SIGKILL);
  for (auto& n : left.namespaces) RunProcess({"ip", "netns", "del", n});
  for (auto& l : ListRegionNetwork(rid).links) RunProcess({"ip", "link", "del", l});
  for (auto& t : left.nft_tables) RunProcess({"nft", "delete", "table", "bridge", t});
  std::error_code ec;
  fs::remove_all("/run/stratus/" + rid, ec);
}

bool HostHasAddressWithPrefix(const std::string& prefix) {
  auto r = RunProcess({"ip", "-4", "-o", "addr", "show"});
  if (!r.ok()) return false;
  return r->out.find("inet " + prefix) != std::string::npos;
}

}  // namespace stratus::e2e
