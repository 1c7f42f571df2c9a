#!/usr/bin/env bash
# `make demo`: today's state of the two-region story (PRODUCT.md). Issue 2: one region — a
# resource group, a VM with data disks from the tiny image, running (CLI table + guest console),
# a consistent snapshot of all its disks while it runs, the daemon restarted under the VM, and a
# full clean-up. Everything it creates is removed on exit, even on failure.
set -euo pipefail

BUILD="${STRATUS_BUILD:-$(pwd)/build}"
GUEST_DIR="${STRATUS_GUEST_DIR:-$BUILD/guest}"
WORK="$(mktemp -d /var/tmp/stratus-demo.XXXXXX)"
chmod 755 "$WORK"
export STRATUS_CONFIG="$WORK/cli.json"
S="$BUILD/stratus"
PID=""
LOG="$WORK/stratusd.log"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

start_daemon() {
  : >"$LOG.ready"
  "$BUILD/stratusd" --region regionA --data-dir "$WORK/regionA" --listen "127.0.0.1:${PORT:-0}" \
    --platform-images "$GUEST_DIR" --cli-config "$STRATUS_CONFIG" >"$LOG.ready" 2>>"$LOG" &
  PID=$!
  for _ in $(seq 1 100); do
    if grep -q "stratusd ready" "$LOG.ready" 2>/dev/null; then break; fi
    kill -0 "$PID" 2>/dev/null || { cat "$LOG"; exit 1; }
    sleep 0.1
  done
  PORT=$(grep -o 'port=[0-9]*' "$LOG.ready" | tail -1 | cut -d= -f2)
}

cleanup() {
  set +e
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    "$S" group delete -n demo --yes >/dev/null 2>&1
    kill "$PID"; wait "$PID" 2>/dev/null
  fi
  # Anything left behind (a failed run): domains whose disks live in $WORK.
  for d in $(virsh -c qemu:///system list --all --name | grep '^stratus-'); do
    if virsh -c qemu:///system dumpxml "$d" | grep -q "$WORK"; then
      virsh -c qemu:///system destroy "$d" >/dev/null 2>&1
      virsh -c qemu:///system undefine "$d" >/dev/null 2>&1
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

say "Start region A (stratusd, state in $WORK/regionA)"
start_daemon
grep "stratusd ready" "$LOG.ready"

say "Create a resource group"
"$S" group create -n demo -l regionA

say "Create VM web1 (tiny image, Standard_S1) with two data disks (Standard + Premium)"
T0=$(date +%s.%N)
"$S" vm create -g demo -n web1 --image tiny --size Standard_S1 --data-disk-sizes-gb 1 1 \
  --custom-data <(printf '#!/bin/sh\necho "hello from the user script of $(hostname)"\n') -o table
"$S" disk update -g demo -n web1-data1 --sku Premium_LRS -o table >/dev/null

say "The VM runs; the guest boots"
for _ in $(seq 1 240); do
  if "$S" vm console -g demo -n web1 --tail 4000 | grep -q "STRATUS-GUEST-READY"; then break; fi
  sleep 0.5
done
T1=$(date +%s.%N)
"$S" vm list -g demo --show-details -o table
echo "guest console:"
"$S" vm console -g demo -n web1 --tail 4000 | grep -E "STRATUS-GUEST-READY|hello from" | sed 's/^/    /'
python3 -c "print('create accepted -> guest ready: %.1f s' % ($T1 - $T0))"
"$S" disk list -g demo -o table

say "Snapshot all disks of the running VM at one instant"
"$S" vm snapshot -g demo -n web1 --prefix web1-snap
"$S" snapshot list -g demo -o table

say "Restart stratusd: the VM keeps running"
BOOT=$("$S" vm get-instance-view -g demo -n web1 -o json | python3 -c 'import json,sys; print(json.load(sys.stdin).get("bootTime"))')
kill "$PID"; wait "$PID" 2>/dev/null || true
start_daemon
BOOT2=$("$S" vm get-instance-view -g demo -n web1 -o json | python3 -c 'import json,sys; print(json.load(sys.stdin).get("bootTime"))')
echo "boot time before restart: $BOOT, after: $BOOT2"
[ "$BOOT" = "$BOOT2" ] || { echo "VM was restarted!"; exit 1; }

say "Activity log (last 6 writes)"
"$S" activity-log list --top 6 -o table

say "Clean up: delete the VM with its disks, the snapshots and the group"
"$S" vm delete -g demo -n web1 --delete-disks
"$S" group delete -n demo --yes
left=$(virsh -c qemu:///system list --all --name | grep -c '^stratus-' || true)
echo "domains left: $(virsh -c qemu:///system list --all --name | while read -r d; do [ -n "$d" ] && virsh -c qemu:///system dumpxml "$d" | grep -q "$WORK" && echo "$d"; done | wc -l), disk files left: $(find "$WORK/regionA/disks" "$WORK/regionA/snapshots" -type f 2>/dev/null | wc -l)"
say "Demo finished"
