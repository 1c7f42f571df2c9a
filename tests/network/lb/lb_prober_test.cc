#include "network/lb/lb_prober.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "network/fake_probe_runner.h"

namespace stratus::network {
namespace {

class Listener final : public LbHealthListener {
 public:
  void HealthChanged(const std::string& netns) override {
    std::lock_guard<std::mutex> l(mu_);
    changed_.push_back(netns);
  }
  std::vector<std::string> changed() {
    std::lock_guard<std::mutex> l(mu_);
    return changed_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> changed_;
};

ProbeTarget Target(const std::string& ip, int interval = 5, int threshold = 2) {
  ProbeTarget t;
  t.netns = "stv-test-0001";
  t.probe =
      "/subscriptions/s/resourceGroups/rg/providers/Stratus.Network/loadBalancers/lb/probes/p";
  t.backend = *ParseIpv4(ip, "");
  t.config.port = 80;
  t.config.interval_seconds = interval;
  t.config.threshold = threshold;
  return t;
}

// The state machine, driven by hand (RunDue) on a fake clock.
TEST(LbProberTest, UnknownUntilAnsweredDownAfterThresholdFailuresUpAtTheNextAnswer) {
  FakeClock clock(1000000);
  FakeProbeRunner runner;
  Listener listener;
  LbProber prober(&clock, &runner, &listener);
  ProbeTarget a = Target("10.0.1.4"), b = Target("10.0.1.5");
  runner.SetDown("10.0.1.5", true);
  prober.Stop();  // before any target: no thread, this test runs the rounds itself
  prober.SetTargets(a.netns, {a, b});
  EXPECT_EQ(prober.State(a.Key())->health, ProbeHealth::kUnknown);
  EXPECT_FALSE(prober.Up(a.Key())) << "no flows before a first answer";
  prober.RunDue();
  EXPECT_TRUE(prober.Up(a.Key()));
  EXPECT_EQ(prober.State(b.Key())->health, ProbeHealth::kUnknown) << "one failure of two";
  EXPECT_EQ(listener.changed().size(), 1u);
  prober.RunDue();  // not due yet: nothing runs
  EXPECT_EQ(runner.probes(), 2);
  clock.AdvanceMs(5000);
  prober.RunDue();
  EXPECT_EQ(prober.State(b.Key())->health, ProbeHealth::kDown);
  EXPECT_EQ(prober.State(b.Key())->failures, 2);
  // a fails once: still Up (threshold 2); twice: Down, and the router is told.
  runner.SetDown("10.0.1.4", true);
  clock.AdvanceMs(5000);
  prober.RunDue();
  EXPECT_TRUE(prober.Up(a.Key()));
  clock.AdvanceMs(5000);
  prober.RunDue();
  EXPECT_FALSE(prober.Up(a.Key()));
  EXPECT_EQ(prober.State(a.Key())->changed_ms, clock.NowMs());
  EXPECT_EQ(listener.changed().size(), 2u);
  // Back at its next answer.
  runner.SetDown("10.0.1.4", false);
  clock.AdvanceMs(5000);
  prober.RunDue();
  EXPECT_TRUE(prober.Up(a.Key()));
  // A target that stays keeps its state; one that goes is forgotten; a new one is Unknown.
  ProbeTarget c = Target("10.0.1.6");
  prober.SetTargets(a.netns, {a, c});
  EXPECT_TRUE(prober.Up(a.Key()));
  EXPECT_FALSE(prober.State(b.Key()).has_value());
  EXPECT_EQ(prober.State(c.Key())->health, ProbeHealth::kUnknown);
  // A probe changed to another port starts again.
  a.config.port = 81;
  prober.SetTargets(a.netns, {a, c});
  EXPECT_EQ(prober.State(a.Key())->health, ProbeHealth::kUnknown);
}

// Its own thread probes every 100 ms what is due.
TEST(LbProberTest, ItsThreadProbesWhatIsDue) {
  FakeClock clock(1000000);
  FakeProbeRunner runner;
  Listener listener;
  LbProber prober(&clock, &runner, &listener);
  ProbeTarget a = Target("10.0.1.4");
  prober.SetTargets(a.netns, {a});
  for (int i = 0; i < 300 && !prober.Up(a.Key()); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(prober.Up(a.Key()));
  ASSERT_EQ(listener.changed().size(), 1u);
  EXPECT_EQ(listener.changed()[0], a.netns);
}

}  // namespace
}  // namespace stratus::network

namespace stratus::network {
namespace {

// After a restart: what the router had stays in until the probes say otherwise.
TEST(LbProberTest, TargetsAssumedUpStayUntilTheirProbesFail) {
  FakeClock clock(1000000);
  FakeProbeRunner runner;
  Listener listener;
  LbProber prober(&clock, &runner, &listener);
  prober.Stop();
  ProbeTarget a = Target("10.0.1.4");
  runner.SetDown("10.0.1.4", true);
  prober.SetTargets(a.netns, {a}, /*assume_up=*/true);
  EXPECT_TRUE(prober.Up(a.Key()));
  prober.RunDue();
  EXPECT_TRUE(prober.Up(a.Key())) << "one failure of two";
  clock.AdvanceMs(5000);
  prober.RunDue();
  EXPECT_FALSE(prober.Up(a.Key()));
}

}  // namespace
}  // namespace stratus::network
