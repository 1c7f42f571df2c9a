// stratusd start-up configuration against the real daemon: the CLI config it writes, and that
// writing it never makes the data directory unreachable for QEMU.
#include <sys/stat.h>

#include "harness.h"

namespace stratus::e2e {
namespace {

// Each test starts its daemon with the flags it checks.
using DaemonConfigTest = DaemonTest;

TEST_F(DaemonConfigTest, WritesCliConfig) {
  ASSERT_TRUE(StartDaemon(DaemonOptions("regionCfg")));
  Daemon& d = this->d();
  std::string text = ReadWholeFile(d.cli_config_path());
  ASSERT_FALSE(text.empty()) << "no CLI config at " << d.cli_config_path();
  Json cfg = Json::parse(text, nullptr, false);
  ASSERT_TRUE(cfg.is_object()) << text;
  EXPECT_EQ(cfg.value("version", 0), 1);
  EXPECT_EQ(cfg.value("default", ""), "regionCfg");
  ASSERT_TRUE(cfg["regions"].contains("regionCfg")) << text;
  const Json& r = cfg["regions"]["regionCfg"];
  EXPECT_EQ(r.value("endpoint", ""), "http://127.0.0.1:" + std::to_string(d.port()));
  EXPECT_EQ(r.value("subscription", ""), d.subscription());
  EXPECT_EQ(r.value("location", ""), "regionCfg");
  std::string token = ReadWholeFile(r.value("tokenFile", "/nonexistent"));
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  EXPECT_EQ(token, d.token());
  struct stat st {};
  ASSERT_EQ(::stat(d.cli_config_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "the CLI config names the admin token file";
}

// --cli-config inside the data directory (e.g. one folder per region holding everything) must
// leave the data directory traversable for QEMU, which runs as an unprivileged user.
TEST_F(DaemonConfigTest, CliConfigInsideDataDirKeepsVmsStartable) {
  ASSERT_TRUE(StartDaemon(DaemonOptions("regionCfg2").CliConfig("data/cli.json")));
  Daemon& d = this->d();
  struct stat st {};
  ASSERT_EQ(::stat(d.data_dir().c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXOTH)
      << "stratusd changed its data dir " << d.data_dir() << " to mode " << std::oct
      << (st.st_mode & 07777) << ": QEMU can no longer reach the disks";
  // The consequence: a VM cannot start.
  ASSERT_EQ(d.Put(d.GroupPath("rg-cfg"), {{"location", d.region()}}).status, 201);
  auto put = d.Put(d.VmPath("rg-cfg", "cfgvm"), TinyVm().Size("Standard_S0"));
  ASSERT_EQ(put.status, 201) << put.Describe();
  EXPECT_SUCCEEDED(d.WaitFor(put, Seconds(180)));
  auto del = d.Act("DELETE", d.GroupPath("rg-cfg"));
  ASSERT_EQ(del.status, 202) << del.Describe();
  EXPECT_SUCCEEDED(d.WaitFor(del));
  EXPECT_TRUE(d.OwnedDomains().empty());
}

}  // namespace
}  // namespace stratus::e2e
