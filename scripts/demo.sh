#!/usr/bin/env bash
# `make demo`: today's state of the two-region story (PRODUCT.md). Issue 2: one region — a
# resource group, a VM with data disks from the tiny image, running (CLI table + guest console),
# a consistent snapshot of all its disks while it runs, the daemon restarted under the VM; issue 3:
# the VM protected by a policy, a full backup, guest writes, an incremental backup, a restore as a
# new VM that boots with the data, vault verify; and a full clean-up. Everything it creates is
# removed on exit, even on failure.
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

# The guest's user script (runs at every boot): greets, shows data a restore brought back, then
# keeps writing a new generation of /var/lib/demo/generation every 3 s (the guest's writes).
cat >"$WORK/user-script.sh" <<'EOS'
#!/bin/sh
echo "hello from the user script of $(hostname)"
[ -f /var/lib/demo/generation ] && echo "DATA-FROM-BACKUP: $(cat /var/lib/demo/generation)"
mkdir -p /var/lib/demo
i=0
while true; do
  i=$((i + 1))
  echo "generation $i written by $(hostname)" >/var/lib/demo/generation.tmp
  mv /var/lib/demo/generation.tmp /var/lib/demo/generation
  sync
  sleep 3
done
EOS

say "Create VM web1 (tiny image, Standard_S1) with two data disks (Standard + Premium)"
T0=$(date +%s.%N)
"$S" vm create -g demo -n web1 --image tiny --size Standard_S1 --data-disk-sizes-gb 1 1 \
  --custom-data "$WORK/user-script.sh" -o table
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

say "Protect web1: a vault (platform key), a daily policy with GFS retention, protection"
"$S" backup vault create -g demo -n vault1 -o table
"$S" backup policy create -g demo --vault vault1 -n daily --daily 02:00 --keep-daily 7 \
  --keep-weekly 4 --keep-monthly 12 -o table
"$S" backup protection enable -g demo --vault vault1 --vm web1 --policy daily -o table

say "Backup now: the first backup is full (libvirt checkpoint + pull-mode NBD, guest frozen)"
"$S" backup now -g demo --vault vault1 --item web1 2>/dev/null
echo "(the guest writes a new generation every 3 s; waiting 7 s)"
sleep 7

say "The guest kept writing; the next backup is incremental: only changed blocks are read"
"$S" backup now -g demo --vault vault1 --item web1 2>/dev/null
"$S" backup recoverypoint list -g demo --vault vault1 --item web1 -o table

say "Restore the newest point as a new VM (web1-restored) and boot it"
RP=$("$S" backup recoverypoint list -g demo --vault vault1 --item web1 -o json |
  python3 -c 'import json,sys; p=json.load(sys.stdin); print(max(p, key=lambda x: x["properties"]["recoveryPointTime"])["name"])')
"$S" backup restore -g demo --vault vault1 --item web1 --recovery-point "$RP" \
  --as-new-vm web1-restored 2>/dev/null
for _ in $(seq 1 240); do
  if "$S" vm console -g demo -n web1-restored --tail 4000 | grep -q "DATA-FROM-BACKUP"; then break; fi
  sleep 0.5
done
echo "console of web1-restored:"
"$S" vm console -g demo -n web1-restored --tail 4000 |
  grep -E "STRATUS-GUEST-READY|DATA-FROM-BACKUP" | sed 's/^/    /'
"$S" vm console -g demo -n web1-restored --tail 4000 | grep -q "DATA-FROM-BACKUP: generation" ||
  { echo "the restored VM does not hold the guest's data"; exit 1; }

say "Verify every chunk of the vault; the job history"
"$S" backup vault verify -g demo -n vault1
"$S" backup job list -g demo --vault vault1 -o table

say "Activity log (last 6 writes)"
"$S" activity-log list --top 6 -o table

say "Clean up: delete the VM with its disks, the snapshots and the group"
"$S" vm delete -g demo -n web1 --delete-disks
"$S" backup protection disable -g demo --vault vault1 -n web1 --delete-backup-data >/dev/null
"$S" group delete -n demo --yes
left=$(virsh -c qemu:///system list --all --name | grep -c '^stratus-' || true)
echo "domains left: $(virsh -c qemu:///system list --all --name | while read -r d; do [ -n "$d" ] && virsh -c qemu:///system dumpxml "$d" | grep -q "$WORK" && echo "$d"; done | wc -l), disk files left: $(find "$WORK/regionA/disks" "$WORK/regionA/snapshots" -type f 2>/dev/null | wc -l)"
say "Demo finished"
