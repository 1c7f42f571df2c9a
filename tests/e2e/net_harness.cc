#include "net_harness.h"

#include <signal.h>

#include <filesystem>

#include "core/fs.h"
#include "core/subprocess.h"
#include "network/kernel_names.h"
#include "network/linux_network_engine.h"

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

namespace {
// The engine stratusd uses, opened on the region's id: it knows where everything of the region
// lives (namespaces, links, dnsmasq, nft table) and how to remove it.
std::unique_ptr<network::LinuxNetworkEngine> EngineFor(const std::string& rid) {
  network::LinuxNetworkEngineOptions o;
  o.region_id = rid;
  auto e = network::LinuxNetworkEngine::Open(o);
  return e.ok() ? std::move(e).value() : nullptr;
}
}  // namespace

RegionNetwork ListRegionNetwork(const std::string& rid) {
  RegionNetwork out;
  auto engine = EngineFor(rid);
  auto objs = engine ? engine->List() : Result<network::RegionObjects>(Internal("no engine"));
  if (!objs.ok()) return out;
  out.namespaces = objs->namespaces;
  out.links = objs->links;
  out.dnsmasq = objs->dns_pids;
  out.nft_tables = objs->nft_tables;
  return out;
}

void RemoveRegionNetwork(const std::string& rid) {
  if (auto engine = EngineFor(rid)) {
    engine->ApplySecurity({"stratus_" + rid, "st" + rid, {}, {}, {}});
    engine->Sweep({});
    engine->RemoveEdge();
  }
  // What the sweep cannot reach: taps of domains still defined, a dnsmasq without pid file.
  RegionNetwork left = ListRegionNetwork(rid);
  for (int p : left.dnsmasq) ::kill(p, SIGKILL);
  for (auto& l : left.links) RunProcess({"ip", "link", "del", l});
  std::error_code ec;
  fs::remove_all("/run/stratus/" + rid, ec);
}

bool HostHasAddressWithPrefix(const std::string& prefix) {
  auto r = RunProcess({"ip", "-4", "-o", "addr", "show"});
  if (!r.ok()) return false;
  return r->out.find("inet " + prefix) != std::string::npos;
}

}  // namespace stratus::e2e
