// Application-consistent backups: the guest's pre/post backup scripts, run through the guest
// agent around the instant a running VM's disks are captured.
//
// Inside the guest, every executable file in /etc/stratus/backup.d/ is a hook. Before the
// instant each one runs as `<hook> pre` (name order; the first failure stops the rest), after it
// as `<hook> post` (reverse name order, all of them, even when `pre` failed or the capture
// failed, so an application that paused always resumes). A hook that runs longer than the
// timeout is killed (coreutils `timeout` in the guest). Stratus then records the point as:
//   ApplicationConsistent  every `pre` succeeded and the file systems were frozen;
//   FileSystemConsistent   no hooks, a failed/late `pre`, or no agent answering guest-exec — with
//                          the reason (the script's name, exit code and last lines of output);
// a failing `post` does not lower the point (its data was captured after `pre`) but is reported.
//
// Unlike Azure's VMSnapshotPluginConfig.json there is nothing to configure on the platform side:
// dropping a script in the directory is enough, and the job shows what ran.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "compute/hypervisor.h"
#include "core/json.h"
#include "core/status.h"

namespace stratus::recovery::service {

inline constexpr char kGuestHookDir[] = "/etc/stratus/backup.d";

struct GuestHookRun {
  std::string phase;        // "pre" | "post"
  bool agent_ok = false;    // the agent ran the runner and reported its end
  int hooks = 0;            // hooks that ran
  bool ok = false;          // every hook that ran exited 0 (false when none ran)
  std::string failed_hook;  // the first that failed ("" if none)
  int exit_code = 0;        // its exit code (124 = timed out)
  std::string output;       // last lines of its output
  std::string problem;      // human summary when !ok ("" if ok)
  Json ToJson() const;
};

// Sends one guest-agent command and returns its "return" (Hypervisor::AgentCommand of a domain).
using GuestAgentFn = std::function<Result<Json>(const Json& command, int timeout_s)>;
GuestAgentFn AgentOf(compute::Hypervisor* hv, const std::string& domain);

// Runs `/bin/sh -c script` in the guest (guest-exec, output captured) and waits up to wait_s
// for it to end. Errors by ARM code: "GuestExecFailed" (the agent would not start it),
// "GuestAgentLost" (it stopped answering), "GuestExecTimeout" (still running at wait_s).
struct GuestExecResult {
  int exit_code = -1;
  std::string out;  // stdout
};
Result<GuestExecResult> RunGuestShell(const GuestAgentFn& agent, const std::string& script,
                                      int wait_s);

// Runs the hooks of `phase` through `agent`; waits at most timeout_s per hook (+ slack).
// Never fails: problems are described in the result.
GuestHookRun RunGuestHooks(const GuestAgentFn& agent, const std::string& phase, int timeout_s);

// The shell script the agent runs (exposed for tests).
std::string GuestHookScript(const std::string& phase, int timeout_s,
                            const std::string& dir = kGuestHookDir);
// Parses the runner's output and exit code into `run` (exposed for tests).
void ParseGuestHookOutput(const std::string& out, int exit_code, GuestHookRun* run);

}  // namespace stratus::recovery::service
