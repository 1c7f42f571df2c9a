#!/bin/bash
# Run the Stratus benchmarks with already built binaries and collect their tables.
#
#   bench/run.sh [controlplane] [vm_boot] [network] [replication] [group_freeze] [plan_rto] [reprotect]   (default: all; `make bench`
#   builds first)
#
# Environment:
#   STRATUS_BUILD        build tree with stratusd and bench/*_bench   (default: <repo>/build)
#   STRATUS_GUEST_DIR    folder holding tiny/image.json               (default: $STRATUS_BUILD/guest)
#   STRATUS_BENCH_WORK   parent of the temporary state, on the file system to measure; every
#                        folder up to / must be o+x for QEMU             (default: /var/tmp)
#   STRATUS_BENCH_OUT    Markdown result file                         (default: bench/results/latest.md)
#   CONTROLPLANE_ARGS    extra arguments for controlplane_bench (e.g. "--threads 8")
#   VM_BOOT_ARGS         extra arguments for vm_boot_bench (e.g. "--count 20 --domain-type kvm")
#   NETWORK_ARGS         extra arguments for network_bench (e.g. "--rules 10,1000 --seconds 5")
#   REPLICATION_ARGS     extra arguments for replication_bench (e.g. "--seconds 120")
#   GROUP_FREEZE_ARGS    extra arguments for group_freeze_bench (e.g. "--rounds 10 --sizes 1,2,4")
#
# Tables go to stdout and to $STRATUS_BENCH_OUT (replaced only when every benchmark succeeded);
# progress goes to stderr. Whatever happens (failure, Ctrl-C), the daemons the benchmarks started
# are stopped, the libvirt domains they made are destroyed and undefined, and the temporary
# folder is removed.
set -euo pipefail

HERE=$(cd "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname -- "$HERE")
BUILD=$(realpath -m -- "${STRATUS_BUILD:-$ROOT/build}")
GUEST=$(realpath -m -- "${STRATUS_GUEST_DIR:-$BUILD/guest}")
WORK_PARENT=$(realpath -m -- "${STRATUS_BENCH_WORK:-/var/tmp}")
OUT=$(realpath -m -- "${STRATUS_BENCH_OUT:-$HERE/results/latest.md}")
read -r -a CP_ARGS <<<"${CONTROLPLANE_ARGS:-}"
read -r -a VB_ARGS <<<"${VM_BOOT_ARGS:-}"
read -r -a NET_ARGS <<<"${NETWORK_ARGS:-}"
read -r -a REPL_ARGS <<<"${REPLICATION_ARGS:-}"
read -r -a GF_ARGS <<<"${GROUP_FREEZE_ARGS:-}"

die() { echo "bench/run.sh: $*" >&2; exit 1; }

WHICH=("$@")
[ ${#WHICH[@]} -gt 0 ] || WHICH=(controlplane vm_boot network replication group_freeze plan_rto reprotect)
for w in "${WHICH[@]}"; do
  case "$w" in controlplane|vm_boot|network|replication|group_freeze|plan_rto|reprotect) ;; *) die "unknown benchmark '$w' (controlplane, vm_boot, network, replication, group_freeze, plan_rto, reprotect)";; esac
done

STRATUSD="$BUILD/stratusd"
[ -x "$STRATUSD" ] || die "$STRATUSD not found: build first (make build, or make bench)"
for w in "${WHICH[@]}"; do
  exe=$w
  [ "$w" = plan_rto ] && exe=replication  # its plan mode
  [ "$w" = reprotect ] && exe=replication  # its reprotect mode
  [ -x "$BUILD/bench/${exe}_bench" ] || die "$BUILD/bench/${exe}_bench not found: build first (make bench)"
done
if [[ " ${WHICH[*]} " == *" vm_boot "* || " ${WHICH[*]} " == *" replication "* ||
      " ${WHICH[*]} " == *" group_freeze "* || " ${WHICH[*]} " == *" plan_rto "* ||
      " ${WHICH[*]} " == *" reprotect "* ]]; then
  [ -f "$GUEST/tiny/image.json" ] ||
    die "$GUEST/tiny/image.json not found: make guest (or bash guest/build-tiny-image.sh $GUEST)"
fi
[ -d "$WORK_PARENT" ] || die "STRATUS_BENCH_WORK=$WORK_PARENT does not exist"
command -v virsh >/dev/null || die "virsh not found (libvirt-clients)"

WORK=$(mktemp -d "$WORK_PARENT/stratus-bench.XXXXXX")
chmod 755 "$WORK"
BENCH_PIDS=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  # 1. The benchmark processes (they delete their VMs and stop their daemon on SIGTERM).
  local p
  for p in "${BENCH_PIDS[@]}"; do
    if tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q -- "_bench "; then
      kill -TERM "$p" 2>/dev/null || true
      for _ in $(seq 600); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
  wait 2>/dev/null || true
  # 2. Any stratusd they started that is still alive (pid files under $WORK, checked by cmdline).
  local f pid
  while IFS= read -r f; do
    pid=$(cat "$f" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "--data-dir $WORK/"; then
      echo "bench/run.sh: stopping leftover stratusd $pid" >&2
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done < <(find "$WORK" -name stratusd.pid 2>/dev/null)
  # 3. libvirt domains made by this run: VMs whose files live under $WORK, and the benchmarks'
  #    own domains (named after their pids).
  local d
  while IFS= read -r d; do
    [ -n "$d" ] || continue
    local mine=0
    for p in "${BENCH_PIDS[@]}"; do
      case "$d" in "bench-lookup-$p"|"bench-peer-$p-"*) mine=1 ;; esac
    done
    if [ $mine = 0 ] && virsh -q dumpxml --inactive "$d" 2>/dev/null | grep -qF -- "$WORK/"; then
      mine=1
    fi
    if [ $mine = 1 ]; then
      echo "bench/run.sh: removing leftover domain $d" >&2
      virsh -q destroy "$d" >/dev/null 2>&1 || true
      # Replicated VMs carry checkpoints: their metadata goes with the domain.
      virsh -q undefine "$d" --checkpoints-metadata >/dev/null 2>&1 || true
    fi
  done < <(virsh -q list --all --name 2>/dev/null)
  rm -rf -- "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Every benchmark runs the same stratusd, even if the build tree is rebuilt meanwhile.
cp -- "$STRATUSD" "$WORK/stratusd"
STRATUSD_BUILT=$(date -u -r "$STRATUSD" '+%Y-%m-%d %H:%M UTC')
STRATUSD="$WORK/stratusd"

# Runs one benchmark in the background (so a signal reaches the trap at once) into $WORK/$1.md.
run_bench() {
  local name=$1
  shift
  echo "bench/run.sh: running $name ..." >&2
  "$BUILD/bench/${name}_bench" "$@" >"$WORK/$name.md" &
  BENCH_PIDS+=($!)
  wait $!
}

for w in "${WHICH[@]}"; do
  case "$w" in
    controlplane)
      run_bench controlplane --stratusd "$STRATUSD" --work-dir "$WORK" ${CP_ARGS[@]+"${CP_ARGS[@]}"} ;;
    vm_boot)
      run_bench vm_boot --stratusd "$STRATUSD" --platform-images "$GUEST" --work-dir "$WORK" \
        ${VB_ARGS[@]+"${VB_ARGS[@]}"} ;;
    network)
      # Cleans up its own namespaces, links, nft table and iptables chain, also on failure.
      run_bench network ${NET_ARGS[@]+"${NET_ARGS[@]}"} ;;
    replication)
      run_bench replication --stratusd "$STRATUSD" --guest-dir "$GUEST" --work "$WORK" \
        ${REPL_ARGS[@]+"${REPL_ARGS[@]}"} ;;
    plan_rto|reprotect)
      # The replication benchmark's plan and reprotect modes (their own two regions and VMs).
      echo "bench/run.sh: running $w ..." >&2
      mode=$w; [ "$w" = plan_rto ] && mode=plan
      "$BUILD/bench/replication_bench" --mode "$mode" --stratusd "$STRATUSD" --guest-dir "$GUEST" \
        --work "$WORK" >"$WORK/$w.md" &
      BENCH_PIDS+=($!)
      wait $! ;;
    group_freeze)
      # Its domains' disks live under $WORK (removed by the trap if it cannot).
      run_bench group_freeze --guest-dir "$GUEST" --work "$WORK" ${GF_ARGS[@]+"${GF_ARGS[@]}"} ;;
  esac
done

{
  echo "# Stratus benchmark results"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- stratusd: built $STRATUSD_BUILT, sha256 $(sha256sum "$STRATUSD" | cut -c1-12)"
  echo "- commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(
    git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' (src/ has uncommitted changes)')"
  echo "- host: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(
    uname -sr), $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "- CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
  echo "- file system of the state: $(df -T "$WORK_PARENT" | awk 'NR==2 {print $2}') ($WORK_PARENT)"
  echo "- libvirt $(virsh -v 2>/dev/null || echo '?'), $(qemu-system-x86_64 --version 2>/dev/null | head -n1 || echo 'qemu ?')"
  echo
  for w in "${WHICH[@]}"; do
    cat "$WORK/$w.md"
    echo
  done
} >"$WORK/all.md"

cat "$WORK/all.md"
mkdir -p "$(dirname -- "$OUT")"
cp "$WORK/all.md" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
echo "bench/run.sh: wrote $OUT" >&2
