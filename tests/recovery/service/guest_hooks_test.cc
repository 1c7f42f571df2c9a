#include "recovery/service/guest_hooks.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <map>

#include "core/base64.h"
#include "core/fs.h"
#include "core/subprocess.h"
#include "../vault/vault_test_util.h"

namespace stratus::recovery::service {
namespace {

// A guest agent that runs guest-exec on this host (synchronously) and answers
// guest-exec-status like qemu-ga, so the real runner script is executed. Hooks live in a temp
// dir: the script is rewritten to use it instead of the guest's path.
class LocalAgent {
 public:
  explicit LocalAgent(std::string dir) : dir_(std::move(dir)) {}
  GuestAgentFn fn() {
    return [this](const Json& cmd, int) -> Result<Json> {
      ++calls;
      if (down) return Unavailable("guest agent is not connected");
      std::string ex = cmd.at("execute");
      if (ex == "guest-exec") {
        auto args = cmd.at("arguments");
        std::vector<std::string> argv = {args.at("path").get<std::string>()};
        for (auto& a : args.at("arg")) argv.push_back(a.get<std::string>());
        std::string& script = argv.back();
        size_t at = script.find(kGuestHookDir);
        if (at != std::string::npos) script.replace(at, std::strlen(kGuestHookDir), dir_);
        last_script = script;
        auto r = RunProcess(argv);
        if (!r.ok()) return r.status();
        int pid = next_pid_++;
        results_[pid] = *r;
        return Json{{"pid", pid}};
      }
      if (ex == "guest-exec-status") {
        int pid = cmd.at("arguments").at("pid");
        auto& r = results_.at(pid);
        return Json{{"exited", true}, {"exitcode", r.exit_code}, {"out-data", Base64Encode(r.out)}};
      }
      return InvalidArgument("unexpected command " + ex);
    };
  }
  int calls = 0;
  bool down = false;
  std::string last_script;

 private:
  std::string dir_;
  int next_pid_ = 100;
  std::map<int, ProcessResult> results_;
};

class GuestHooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    hooks_ = tmp_.Path("backup.d");
    log_ = tmp_.Path("log");
    ASSERT_TRUE(MakeDirs(hooks_).ok());
  }
  void Hook(const std::string& name, const std::string& body, bool executable = true) {
    std::string path = hooks_ + "/" + name;
    ASSERT_TRUE(WriteFileAtomic(path, "#!/bin/sh\necho \"" + name + " $1\" >> " + log_ + "\n" +
                                          body + "\n")
                    .ok());
    ::chmod(path.c_str(), executable ? 0755 : 0644);
  }
  std::string Log() {
    auto s = ReadFile(log_);
    return s.ok() ? *s : "";
  }
  vault::test::TempDir tmp_{"hooks"};
  std::string hooks_, log_;
};

TEST_F(GuestHooksTest, PreRunsInNameOrderPostInReverse) {
  Hook("10-db", "exit 0");
  Hook("20-app", "exit 0");
  Hook("README", "exit 1", /*executable=*/false);  // not a hook
  LocalAgent agent(hooks_);
  GuestHookRun pre = RunGuestHooks(agent.fn(), "pre", 30);
  EXPECT_TRUE(pre.agent_ok);
  EXPECT_TRUE(pre.ok) << pre.problem;
  EXPECT_EQ(pre.hooks, 2);
  GuestHookRun post = RunGuestHooks(agent.fn(), "post", 30);
  EXPECT_TRUE(post.ok) << post.problem;
  EXPECT_EQ(Log(), "10-db pre\n20-app pre\n20-app post\n10-db post\n");
  EXPECT_EQ(pre.ToJson()["succeeded"], true);
}

TEST_F(GuestHooksTest, FailingPreStopsTheRestAndNamesTheHookWithItsOutput) {
  Hook("10-db", "echo 'database refused to flush' >&2; exit 3");
  Hook("20-app", "exit 0");
  LocalAgent agent(hooks_);
  GuestHookRun pre = RunGuestHooks(agent.fn(), "pre", 30);
  EXPECT_TRUE(pre.agent_ok);
  EXPECT_FALSE(pre.ok);
  EXPECT_EQ(pre.exit_code, 3);
  EXPECT_EQ(pre.failed_hook, hooks_ + "/10-db");
  EXPECT_NE(pre.problem.find("10-db exited with 3"), std::string::npos) << pre.problem;
  EXPECT_NE(pre.problem.find("database refused to flush"), std::string::npos) << pre.problem;
  EXPECT_EQ(Log(), "10-db pre\n");  // 20-app's pre never ran
  // post still runs every hook (an application paused by one must resume).
  Hook("05-first", "exit 0");
  GuestHookRun post = RunGuestHooks(agent.fn(), "post", 30);
  EXPECT_FALSE(post.ok);  // 10-db fails its post too
  EXPECT_EQ(post.hooks, 3);
  EXPECT_EQ(Log(), "10-db pre\n20-app post\n10-db post\n05-first post\n");
}

TEST_F(GuestHooksTest, SlowHookIsKilledAtTheTimeout) {
  Hook("10-slow", "sleep 30");
  LocalAgent agent(hooks_);
  auto t0 = std::chrono::steady_clock::now();
  GuestHookRun pre = RunGuestHooks(agent.fn(), "pre", 1);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 10);
  EXPECT_FALSE(pre.ok);
  EXPECT_EQ(pre.exit_code, 124);
  EXPECT_NE(pre.problem.find("timed out"), std::string::npos) << pre.problem;
}

TEST_F(GuestHooksTest, NoHooksOrNoAgentIsAReasonNotAnError) {
  LocalAgent agent(hooks_);
  GuestHookRun none = RunGuestHooks(agent.fn(), "pre", 30);
  EXPECT_TRUE(none.agent_ok);
  EXPECT_FALSE(none.ok);
  EXPECT_EQ(none.hooks, 0);
  EXPECT_NE(none.problem.find("no backup hooks"), std::string::npos) << none.problem;
  ASSERT_TRUE(RemoveTree(hooks_).ok());
  GuestHookRun nodir = RunGuestHooks(agent.fn(), "pre", 30);
  EXPECT_NE(nodir.problem.find("no backup hooks"), std::string::npos) << nodir.problem;
  agent.down = true;
  GuestHookRun down = RunGuestHooks(agent.fn(), "pre", 30);
  EXPECT_FALSE(down.agent_ok);
  EXPECT_NE(down.problem.find("could not run"), std::string::npos) << down.problem;
}

TEST_F(GuestHooksTest, ParsesRunnerOutput) {
  GuestHookRun r;
  r.phase = "pre";
  ParseGuestHookOutput("HOOK 0 /a\nHOOK 2 /b c\nOUTPUT-BEGIN\nl1\nl2\nOUTPUT-END\nHOOK 0 /d\n", 10, &r);
  EXPECT_EQ(r.hooks, 3);
  EXPECT_EQ(r.failed_hook, "/b c");
  EXPECT_EQ(r.output, "l1\nl2");
  EXPECT_FALSE(r.ok);
  GuestHookRun odd;
  odd.phase = "pre";
  ParseGuestHookOutput("", 2, &odd);  // e.g. /bin/sh failed
  EXPECT_FALSE(odd.ok);
  EXPECT_NE(odd.problem.find("runner exited with 2"), std::string::npos);
}

}  // namespace
}  // namespace stratus::recovery::service
