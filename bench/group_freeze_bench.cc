// group_freeze_bench: how long a consistency group is held still to capture all its VMs at one
// instant (site recovery's group cycle), for groups of 1, 4 and 8 small VMs.
//
// The VMs are the tiny guest (256 MiB, its OS disk a qcow2 overlay), booted through libvirt and
// answering their agent. Each round captures the first N at one instant:
//   ours  LibvirtHypervisor::BeginGroupPullBackup (what a replication cycle of a group calls):
//         every VM paused at once, each one's pull backup started, each resumed as soon as its
//         own job runs; the freeze is from the first pause to the last resume.
//   peer  what an operator scripts with virsh for the same cut: `virsh suspend` of every VM,
//         `virsh backup-begin` (pull mode, a checkpoint) of each, `virsh resume` of every VM,
//         one after the other; the freeze is the same interval, timed around the commands.
// Each round's jobs are ended and checkpoints deleted before the next. Anchor: Azure Site
// Recovery's multi-VM consistency publishes no freeze figure (its crash-consistent group points
// come every 5 minutes); the target is 100 ms at 8 VMs.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "bench_util.h"
#include "compute/libvirt_hypervisor.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/subprocess.h"
#include "core/uuid.h"
#include "storage/qcow2_disk_engine.h"

using namespace stratus;
using namespace stratus::bench;

namespace {

struct Options {
  std::string work = "/var/tmp";
  std::string guest_dir;
  std::vector<int> sizes = {1, 4, 8};
  int rounds = 5;
};

std::string Virsh() { return "virsh"; }

Result<std::string> Run(const std::vector<std::string>& argv) { return RunChecked(argv); }

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Max(const std::vector<double>& v) {
  return v.empty() ? 0 : *std::max_element(v.begin(), v.end());
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Consistency-group freeze: Stratus's group capture vs a virsh script"};
  app.add_option("--work", o.work, "Scratch directory (the VMs' disks)")->capture_default_str();
  app.add_option("--guest-dir", o.guest_dir, "The tiny guest (build/guest)")->required();
  app.add_option("--sizes", o.sizes, "Group sizes")->capture_default_str();
  app.add_option("--rounds", o.rounds, "Captures per size and side")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  InstallStopHandlers();

  const std::string img = JoinPath(o.guest_dir, "tiny");
  std::string cmdline = "console=ttyS0 root=/dev/vda";
  if (auto meta = ReadFile(JoinPath(img, "image.json")); meta.ok()) {
    auto j = ParseJson(*meta);
    if (j.ok() && j->contains("cmdline")) cmdline = (*j)["cmdline"].get<std::string>();
  }
  std::string dir = JoinPath(o.work, "stratus-freeze-bench-" + RandomHex(4));
  if (!MakeDirs(dir, 0755).ok() || chmod(dir.c_str(), 0755) != 0) {
    std::fprintf(stderr, "cannot make %s\n", dir.c_str());
    return 1;
  }
  storage::Qcow2DiskEngine engine;
  auto opened = compute::LibvirtHypervisor::Open("qemu:///system", "qemu", &engine);
  if (!opened.ok()) {
    std::fprintf(stderr, "libvirt: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  auto& hv = **opened;
  const int n_max = *std::max_element(o.sizes.begin(), o.sizes.end());
  std::vector<std::string> names;
  auto cleanup = [&] {
    for (auto& n : names) {
      (void)hv.EndPullBackup(n);
      (void)hv.PowerOff(n);
      (void)hv.Undefine(n);
    }
    RemoveTree(dir);
  };
  int rc = 0;
  Status st = [&]() -> Status {
    RETURN_IF_ERROR(Run({"cp", JoinPath(img, "vmlinuz"), JoinPath(dir, "vmlinuz")}).status());
    RETURN_IF_ERROR(Run({"cp", JoinPath(img, "initrd.img"), JoinPath(dir, "initrd.img")}).status());
    RETURN_IF_ERROR(Run({"qemu-img", "convert", "-O", "qcow2", JoinPath(img, "rootfs.qcow2"),
                         JoinPath(dir, "base.qcow2")})
                        .status());
    std::string prefix = "stratus-freeze-" + RandomHex(3) + "-";
    for (int i = 0; i < n_max; ++i) {
      std::string name = prefix + std::to_string(i);
      std::string os = JoinPath(dir, "os" + std::to_string(i) + ".qcow2");
      RETURN_IF_ERROR(Run({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                           JoinPath(dir, "base.qcow2"), os})
                          .status());
      compute::DomainSpec spec;
      spec.name = name;
      spec.uuid = NewUuid();
      spec.vcpus = 1;
      spec.memory_mib = 256;
      compute::DiskAttachment d;
      d.target_dev = "vda";
      d.path = os;
      d.serial = "os" + std::to_string(i);
      spec.disks.push_back(d);
      spec.kernel = JoinPath(dir, "vmlinuz");
      spec.initrd = JoinPath(dir, "initrd.img");
      spec.cmdline = cmdline;
      spec.console_log_path = JoinPath(dir, name + ".console.log");
      RETURN_IF_ERROR(hv.Define(spec));
      names.push_back(name);
      RETURN_IF_ERROR(hv.Start(name));
    }
    std::fprintf(stderr, "booting %d tiny guests...\n", n_max);
    for (auto& n : names) {
      Result<Json> ping = Unavailable("not tried");
      for (int i = 0; i < 600 && !ping.ok(); ++i) {
        if (StopRequested()) return Interrupted();
        ping = hv.AgentCommand(n, {{"execute", "guest-ping"}}, 2);
        if (!ping.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
      if (!ping.ok()) return Unavailable(n + " never answered its agent");
    }

    std::printf("# Consistency-group freeze (one instant across N VMs)\n\n");
    std::printf("%d rounds per size; tiny guests (256 MiB, 1 vCPU, TCG) on this host; load %s\n\n",
                o.rounds, LoadAverage().c_str());
    std::printf("| VMs | peer: virsh suspend / backup-begin / resume, p50 | ours p50 | ours max | "
                "ratio (ours ÷ peer) | target |\n|---:|---:|---:|---:|---:|---:|\n");
    int round_id = 0;
    for (int n : o.sizes) {
      std::vector<double> ours, peer;
      for (int r = 0; r < o.rounds; ++r) {
        if (StopRequested()) return Interrupted();
        std::string cp = "fz-" + std::to_string(++round_id);
        std::vector<compute::GroupPullMember> members;
        for (int i = 0; i < n; ++i) {
          compute::GroupPullMember m;
          m.domain = names[i];
          m.spec.target_devs = {"vda"};
          m.spec.checkpoint = cp;
          m.spec.socket_path = JoinPath(dir, "s" + std::to_string(i) + "/nbd.sock");
          m.spec.scratch_dir = JoinPath(dir, "scratch" + std::to_string(i));
          members.push_back(m);
        }
        auto g = hv.BeginGroupPullBackup(members);
        if (!g.ok()) return g.status();
        ours.push_back(g->freeze_us / 1000.0);
        for (int i = 0; i < n; ++i) {
          RETURN_IF_ERROR(hv.EndPullBackup(names[i]));
          RETURN_IF_ERROR(hv.DeleteCheckpoint(names[i], cp));
        }
        // The peer: the same cut with virsh, one command after the other.
        std::string pcp = "fzp-" + std::to_string(round_id);
        std::vector<std::string> xmls;
        for (int i = 0; i < n; ++i) {
          std::string sock_dir = JoinPath(dir, "p" + std::to_string(i));
          (void)MakeDirs(sock_dir, 0777);
          chmod(sock_dir.c_str(), 0777);
          std::string bx = JoinPath(dir, "backup" + std::to_string(i) + ".xml");
          std::string cx = JoinPath(dir, "checkpoint" + std::to_string(i) + ".xml");
          RETURN_IF_ERROR(WriteFileAtomic(
              bx, "<domainbackup mode='pull'><server transport='unix' socket='" +
                      JoinPath(sock_dir, "nbd.sock") + "'/><disks><disk name='vda' backup='yes' "
                      "type='file'><scratch file='" + JoinPath(sock_dir, "scratch.qcow2") +
                      "'/></disk></disks></domainbackup>"));
          RETURN_IF_ERROR(WriteFileAtomic(cx, "<domaincheckpoint><name>" + pcp +
                                                  "</name></domaincheckpoint>"));
          xmls.push_back(bx);
          xmls.push_back(cx);
        }
        const std::string uri = "qemu:///system";
        auto t0 = Now();
        for (int i = 0; i < n; ++i)
          RETURN_IF_ERROR(Run({Virsh(), "-q", "-c", uri, "suspend", names[i]}).status());
        for (int i = 0; i < n; ++i)
          RETURN_IF_ERROR(Run({Virsh(), "-q", "-c", uri, "backup-begin", names[i], "--backupxml",
                               xmls[2 * i], "--checkpointxml", xmls[2 * i + 1]})
                              .status());
        for (int i = 0; i < n; ++i)
          RETURN_IF_ERROR(Run({Virsh(), "-q", "-c", uri, "resume", names[i]}).status());
        peer.push_back(MsBetween(t0, Now()));
        for (int i = 0; i < n; ++i) {
          RETURN_IF_ERROR(hv.EndPullBackup(names[i]));
          RETURN_IF_ERROR(hv.DeleteCheckpoint(names[i], pcp));
        }
      }
      double p = Median(peer), us = Median(ours);
      std::printf("| %d | %s | %s | %s | %s | %s |\n", n, FormatMs(p).c_str(), FormatMs(us).c_str(),
                  FormatMs(Max(ours)).c_str(), FormatRatio(us / p).c_str(),
                  n == 8 ? "≤ 100 ms" : "");
      std::fflush(stdout);
    }
    std::printf("\nThe freeze is libvirt's job start (virDomainBackupBegin) while the VMs are "
                "paused; one alone takes about the 1-VM figure here, and N of them share this "
                "host's 2 cores with N running TCG guests.\n");
    return Status::Ok();
  }();
  if (!st.ok()) {
    std::fprintf(stderr, "group_freeze_bench: %s\n", st.ToString().c_str());
    rc = 1;
  }
  cleanup();
  return rc;
}
