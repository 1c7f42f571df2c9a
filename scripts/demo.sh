#!/usr/bin/env bash
# `make demo`: today's state of the two-region story (PRODUCT.md). Issue 2: one region — a
# resource group, a VM with data disks from the tiny image, running (CLI table + guest console),
# a consistent snapshot of all its disks while it runs, the daemon restarted under the VM; issue 3:
# the VM protected by a policy, a full backup, guest writes, an incremental backup, a restore as a
# new VM that boots with the data, vault verify; issue 10: the VMs have NICs in a VNET with two
# subnets (DHCP, DNS names), and a security group on db1's NIC first denies, then allows web1's
# HTTP; peering and a route table; web1 has a public IP that an "internet" namespace (made here,
# the region's uplink) reaches, and db1 reaches the internet through SNAT; issue 11 (so far):
# region B, a second stratusd on this machine, paired with region A over the peer link (mutual
# TLS, one-time token), db1 replicated into a vault of region B every 5 s (live RPO, points) and
# failed over there (unplanned: region A is not called) into the network A's network is mapped
# to, keeping its address and MAC, with the RPO and RTO printed; reprotect and failback; and a
# full clean-up.
# Everything it creates is removed on exit, even on failure.
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

# The region's network id (network::ShortRegionId): names its namespaces, bridges, taps, nft table.
rid_of() { python3 -c 'import hashlib,sys; d=hashlib.sha256((sys.argv[1]+"\n"+sys.argv[2]).encode()).digest(); b=(d[0]<<12)|(d[1]<<4)|(d[2]>>4); a="abcdefghijklmnopqrstuvwxyz234567"; print("".join(a[(b>>(5*(3-i)))&31] for i in range(4)))' "$1" "$2"; }
RID=$(rid_of regionA "$WORK/regionA")
RID_B=$(rid_of regionB "$WORK/regionB")
PID_B=""
# The network objects of region $1 (its id): router namespaces, links, nft table, dnsmasq.
region_net_objects() {
  local rid="${1:-$RID}"
  { ip netns list | awk '{print $1}' | grep "^stv-$rid-"
    ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^(sb|sg|st)$rid"
    nft list tables 2>/dev/null | grep "stratus_$rid"
    pgrep -f "/run/stratus/$rid/" ; } 2>/dev/null || true
}
# Removes them (namespaces, bridges and dnsmasq outlive a daemon by design).
remove_region_net() {
  local rid="$1"
  pkill -9 -f "/run/stratus/$rid/" 2>/dev/null
  for n in $(ip netns list | awk '{print $1}' | grep -E "^st[ve]-$rid"); do ip netns del "$n"; done
  for l in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^(sb|sg|st)$rid"); do
    ip link del "$l" 2>/dev/null
  done
  nft delete table bridge "stratus_$rid" 2>/dev/null
  rm -rf "/run/stratus/$rid"
}

# The "internet": a namespace with a web server at 198.51.100.1; the other end of its veth is the
# region's uplink, which stratusd moves into its edge namespace. The public pool 203.0.113.0/28 is
# routed to the uplink's address, as an upstream router would.
INET="sdemo-inet-$$"
UPLINK="sdup$$"
make_internet() {
  ip netns add "$INET"
  ip link add "$UPLINK" type veth peer name eth0 netns "$INET"
  ip -n "$INET" addr add 198.51.100.1/24 dev eth0
  ip -n "$INET" link set eth0 up
  ip -n "$INET" link set lo up
  ip -n "$INET" route add 203.0.113.0/28 via 198.51.100.2
  mkdir -p "$WORK/www"
  echo "hello from the internet" >"$WORK/www/index.html"
  ip netns exec "$INET" busybox httpd -p 80 -h "$WORK/www"
}
from_internet() { ip netns exec "$INET" "$@"; }

start_daemon() {
  : >"$LOG.ready"
  "$BUILD/stratusd" --region regionA --data-dir "$WORK/regionA" --listen "127.0.0.1:${PORT:-0}" \
    --platform-images "$GUEST_DIR" --cli-config "$STRATUS_CONFIG" \
    --public-pool 203.0.113.0/28 --uplink "$UPLINK" --uplink-address 198.51.100.2/24 \
    --uplink-gateway 198.51.100.1 >"$LOG.ready" 2>>"$LOG" &
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
  if [ -n "$PID_B" ] && kill -0 "$PID_B" 2>/dev/null; then kill "$PID_B"; wait "$PID_B" 2>/dev/null; fi
  remove_region_net "$RID_B"
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
  remove_region_net "$RID"
  pkill -9 -f "httpd -p 80 -h $WORK/www" 2>/dev/null
  ip netns del "ste-$RID" 2>/dev/null
  ip netns del "$INET" 2>/dev/null
  ip link del "$UPLINK" 2>/dev/null
  rm -rf "/run/stratus/$RID" "$WORK"
}
trap cleanup EXIT

say "Start region A (stratusd, state in $WORK/regionA), its uplink to an \"internet\" namespace"
make_internet
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

# Runs `sh -c CMD` in VM $1's guest through the guest agent; prints its output.
guest_sh() {
  local dom
  dom="stratus-$("$S" vm show -g demo -n "$1" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["properties"]["vmId"])')"
  python3 - "$dom" "$2" <<'EOP'
import base64, json, subprocess, sys, time
dom, cmd = sys.argv[1], sys.argv[2]
def qga(req):
    out = subprocess.run(["virsh", "-c", "qemu:///system", "qemu-agent-command", dom, json.dumps(req)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["return"]
pid = qga({"execute": "guest-exec", "arguments": {"path": "sh", "arg": ["-c", cmd], "capture-output": True}})["pid"]
for _ in range(200):
    st = qga({"execute": "guest-exec-status", "arguments": {"pid": pid}})
    if st.get("exited"):
        sys.stdout.write(base64.b64decode(st.get("out-data", "")).decode(errors="replace"))
        break
    time.sleep(0.1)
EOP
}

say "A virtual network with two subnets, and a security group for the back end"
"$S" network vnet create -g demo -n demo-vnet --address-prefixes 10.20.0.0/16 \
  --subnet-name front --subnet-prefix 10.20.1.0/24 -o table
"$S" network vnet subnet create -g demo --vnet-name demo-vnet -n back --address-prefix 10.20.2.0/24 -o table
"$S" network nsg create -g demo -n db-nsg -o table
"$S" network nsg rule create -g demo --nsg-name db-nsg -n no-http-from-front --priority 200 \
  --access Deny --protocol Tcp --source-address-prefixes 10.20.1.0/24 --destination-port-ranges 80 -o table

say "Create VM web1 (tiny image, Standard_S1, NIC in subnet front) with two data disks (Standard + Premium)"
T0=$(date +%s.%N)
"$S" vm create -g demo -n web1 --image tiny --size Standard_S1 --data-disk-sizes-gb 1 1 \
  --custom-data "$WORK/user-script.sh" --vnet demo-vnet --subnet front \
  --public-ip-address web1-ip -o table
"$S" vm create -g demo -n db1 --image tiny --size Standard_S1 --vnet demo-vnet --subnet back \
  --nsg db-nsg -o table >/dev/null
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

say "Networking: NICs with their addresses (DHCP and the config drive agree), names in the VNET"
"$S" network nic list -g demo -o table
for _ in $(seq 1 240); do
  if "$S" vm console -g demo -n db1 --tail 4000 | grep -q "STRATUS-GUEST-READY"; then break; fi
  sleep 0.5
done
echo "web1: nslookup db1 ->"; guest_sh web1 "nslookup db1 2>&1 | grep -E '^(Name|Address)' | tail -n 2" | sed 's/^/    /'
say "db1's NSG denies HTTP from subnet front: web1 cannot fetch db1's page"
out=$(guest_sh web1 "timeout 3 wget -q -O - http://db1/ 2>/dev/null || echo DENIED")
echo "    web1 -> http://db1/: $out"
echo "$out" | grep -q DENIED || { echo "the Deny did not hold"; exit 1; }
say "Allow web1 (priority 100, before the Deny): the same fetch passes at once"
"$S" network nsg rule create -g demo --nsg-name db-nsg -n web1-ok --priority 100 --access Allow \
  --protocol Tcp --source-address-prefixes 10.20.1.4 --destination-port-ranges 80 -o table
out=$(guest_sh web1 "timeout 3 wget -q -O - http://db1/ 2>/dev/null || echo DENIED")
echo "    web1 -> http://db1/: $out"
echo "$out" | grep -q "db1" || { echo "the Allow did not open"; exit 1; }
"$S" network nic show-effective-nsg -g demo -n db1VMNic -o table | head -n 6
say "What each rule of db-nsg matched: the Deny the refused SYNs, the Allow the fetch"
"$S" network nsg show-rule-counters -g demo -n db-nsg -o table | head -n 5
"$S" network nsg show-rule-counters -g demo -n db-nsg -o json | python3 -c '
import json, sys
hits = {r["name"]: r["packets"] for r in json.load(sys.stdin)["value"]}
assert hits["securityRules/no-http-from-front"] > 0, hits
assert hits["securityRules/web1-ok"] > 0, hits' || { echo "the rule counters missed the flows"; exit 1; }

say "Public IP: the internet reaches web1 at its public address; db1 (none) gets out through SNAT"
"$S" network public-ip list -g demo -o table
PUB=$("$S" network public-ip show -g demo -n web1-ip -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["properties"]["ipAddress"])')
out=$(from_internet timeout 5 busybox wget -q -O - "http://$PUB/" 2>/dev/null || echo UNREACHED)
echo "    internet -> http://$PUB/: $out"
echo "$out" | grep -q "web1" || { echo "the public IP did not reach web1"; exit 1; }
from_internet busybox ping -c 1 -W 2 "$PUB" >/dev/null && echo "    internet -> ping $PUB: answered"
out=$(from_internet timeout 5 busybox wget -q -O - "http://10.20.1.4/" 2>/dev/null || echo UNREACHED)
echo "    internet -> http://10.20.1.4/ (private): $out"
[ "$out" = UNREACHED ] || { echo "a private address was reached from outside"; exit 1; }
out=$(guest_sh db1 "timeout 5 wget -q -O - http://198.51.100.1/ 2>/dev/null || echo UNREACHED")
echo "    db1 -> http://198.51.100.1/: $out"
echo "$out" | grep -q "internet" || { echo "db1 did not get out"; exit 1; }
echo "    the host holds no public or uplink address: $(ip -4 -o addr show | grep -cE '203\.0\.113\.|198\.51\.100\.' || true) found"

say "Peering: a second VNET is out of reach until both sides peer (its router answers at 10.21.1.1)"
"$S" network vnet create -g demo -n hub-vnet --address-prefixes 10.21.0.0/16 \
  --subnet-name s --subnet-prefix 10.21.1.0/24 -o table >/dev/null
ping_hub() { guest_sh web1 "ping -c 1 -W 2 10.21.1.1 >/dev/null 2>&1 && echo REACHED || echo UNREACHABLE"; }
echo "    web1 -> 10.21.1.1: $(ping_hub)"
"$S" network vnet peering create -g demo --vnet-name demo-vnet -n to-hub --remote-vnet hub-vnet -o table
"$S" network vnet peering create -g demo --vnet-name hub-vnet -n to-demo --remote-vnet demo-vnet -o table
out=$(ping_hub); echo "    web1 -> 10.21.1.1: $out"
[ "$out" = REACHED ] || { echo "the peering did not connect"; exit 1; }
say "A route table on subnet front: the hub's space to None; web1's effective routes"
"$S" network route-table create -g demo -n front-rt -o table >/dev/null
"$S" network route-table route create -g demo --route-table-name front-rt -n no-hub \
  --address-prefix 10.21.0.0/16 --next-hop-type None -o table
"$S" network vnet subnet update -g demo --vnet-name demo-vnet -n front --route-table front-rt -o table
"$S" network nic show-effective-route-table -g demo -n web1VMNic -o table
out=$(ping_hub); echo "    web1 -> 10.21.1.1: $out"
[ "$out" = UNREACHABLE ] || { echo "the None route did not hold"; exit 1; }
"$S" network vnet subnet update -g demo --vnet-name demo-vnet -n front --route-table "" -o table >/dev/null
out=$(ping_hub); echo "    without the route table, web1 -> 10.21.1.1: $out"
[ "$out" = REACHED ] || { echo "removing the route table did not restore the route"; exit 1; }

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
echo "web1-restored got a NIC like web1's (same subnet, security group, forwarding); web1 still holds its address and"
echo "public IP, so the copy has the next free address and no public IP, as the job's notes say:"
"$S" network nic show -g demo -n web1-restored-nic0 -o table
"$S" backup job list -g demo --vault vault1 -o json | python3 -c '
import json, sys
jobs = [j for j in json.load(sys.stdin) if j["properties"].get("operation") == "Restore"]
for n in jobs[-1]["properties"].get("result", {}).get("notes", []): print("    note:", n)'

say "Verify every chunk of the vault; the job history"
"$S" backup vault verify -g demo -n vault1
"$S" backup job list -g demo --vault vault1 -o table

say "Region B: a second stratusd on this machine (own data dir, API port, peer link), paired with A"
: >"$LOG.b"
"$BUILD/stratusd" --region regionB --data-dir "$WORK/regionB" --listen 127.0.0.1:0 \
  --platform-images "$GUEST_DIR" --cli-config "$STRATUS_CONFIG" >"$LOG.b" 2>>"$LOG" &
PID_B=$!
for _ in $(seq 1 100); do
  grep -q "stratusd ready" "$LOG.b" 2>/dev/null && break
  kill -0 "$PID_B" 2>/dev/null || { cat "$LOG"; exit 1; }
  sleep 0.1
done
grep "stratusd ready" "$LOG.b"
echo "A makes a one-time pairing token (its peer endpoint, its certificate's SHA-256, a secret):"
TOKEN=$("$S" --region regionA recovery pair token --expires-in-minutes 10)
echo "    ${TOKEN:0:24}... (${#TOKEN} characters; a password until used)"
echo "B pairs with it: B calls A over mutual TLS, pinning A's certificate; A records B's:"
"$S" --region regionB recovery pair create --token "$TOKEN"
echo "A lists B (initiated by the peer):"
"$S" --region regionA recovery pair list
"$S" --region regionB recovery pair check --peer regionA
"$S" --region regionA recovery pair check --peer regionB

say "Replicate db1 (running in A) into a vault of region B: a point every 5 s, only changed blocks"
"$S" --region regionB group create -n dr -l regionB >/dev/null
"$S" --region regionB backup vault create -g dr -n drvault >/dev/null
DB1_ID=$("$S" vm show -g demo -n db1 -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
"$S" --region regionB recovery replication enable -g dr --vault drvault -n db1 \
  --source-region regionA --source-vm "$DB1_ID" --frequency 5
for _ in $(seq 1 120); do
  n=$("$S" --region regionB recovery replication show -g dr --vault drvault -n db1 -o json |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["properties"].get("recoveryPointCount", 0))')
  [ "$n" -ge 3 ] && break
  sleep 1
done
"$S" --region regionB recovery replication show -g dr --vault drvault -n db1
echo "points in B (the first carried db1's allocated data, the next ones what changed):"
"$S" --region regionB recovery point list -g dr --vault drvault --item db1

say "Network mapping: A's demo-vnet fails over to B's dr-vnet (same address space)"
"$S" --region regionB network vnet create -g dr -n dr-vnet --address-prefixes 10.20.0.0/16 \
  --subnet-name back --subnet-prefix 10.20.2.0/24 -o table
VNET_A=$("$S" network vnet show -g demo -n demo-vnet -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
"$S" --region regionB recovery network-mapping create -g dr --vault drvault -n demo-to-dr \
  --source-network "$VNET_A" --target-network dr-vnet
echo "where db1's NIC goes on a failover (its address and MAC kept) and on a test failover:"
"$S" --region regionB recovery replication nic-show -g dr --vault drvault -n db1

say "Unplanned failover of db1 into region B (no call to region A): RPO and RTO"
RPO_AT=$("$S" --region regionB recovery replication show -g dr --vault drvault -n db1 -o json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["properties"].get("rpoInSeconds", "?"))')
T0=$(date +%s.%N)
"$S" --region regionB recovery replication failover -g dr --vault drvault -n db1
T1=$(date +%s.%N)
for _ in $(seq 1 600); do
  "$S" --region regionB vm console -g dr -n db1 --tail 4000 2>/dev/null | grep -q "STRATUS-GUEST-READY" && break
  sleep 0.2
done
T2=$(date +%s.%N)
"$S" --region regionB vm console -g dr -n db1 --tail 4000 2>/dev/null | grep -q "STRATUS-GUEST-READY" ||
  { echo "db1 did not boot in region B"; exit 1; }
python3 - "$RPO_AT" "$T0" "$T1" "$T2" <<'EOP'
import sys
rpo, t0, t1, t2 = sys.argv[1], *map(float, sys.argv[2:])
print(f"    RPO at the failover: {rpo} s (age of the newest point in B)")
print(f"    RTO: {t2 - t0:.1f} s from the failover call to db1's guest booted in B "
      f"= Stratus {t1 - t0:.1f} s (point -> disks -> VM) + guest boot {t2 - t1:.1f} s (TCG)")
EOP
"$S" --region regionB vm list -g dr
echo "db1's NIC in B (dr-vnet/back) and in A (demo-vnet/back): the same address and MAC:"
nic_of() {
  "$S" --region "$1" network nic list -g "$2" -o json | python3 -c '
import json, sys
for n in json.load(sys.stdin):
    vm = (n["properties"].get("virtualMachine") or {}).get("id", "")
    if vm.lower().endswith("/virtualmachines/db1"):
        c = n["properties"]["ipConfigurations"][0]["properties"]
        where = c["subnet"]["id"].split("/virtualNetworks/")[1]
        print("    " + sys.argv[1] + ":", n["name"], c["privateIPAddress"], n["properties"]["macAddress"], "in", where)' "$1"
}
nic_of regionB dr
nic_of regionA demo

say "Reprotect: db1 (now running in B) replicates back to A, onto A's old copy, sending only what differs"
echo "A keeps the reverse item in a vault of its own; A's old db1 is stopped and held meanwhile."
"$S" --region regionA backup vault create -g demo -n drvault >/dev/null
"$S" --region regionB recovery replication reprotect -g dr --vault drvault -n db1 -o json |
  python3 -c '
import json, sys
text = sys.stdin.read()
p = json.loads(text[text.index("{"):])["properties"]
sent, changed, by_a = p["bytesSent"], p["bytesChanged"], p["sourceWrittenBytes"]
inc, ms = p["incremental"], p["durationMs"]
print(f"    first cycle back to A: {sent} bytes sent for {changed} bytes of changed extents "
      f"({by_a} of them written by A after its last shipped point), incremental: {inc}, {ms} ms")
for d, c in sorted(p["disks"].items()):
    ds, dc = c["bytesSent"], c["bytesChanged"]
    print(f"      {d}: {ds} sent of {dc} changed")'
"$S" --region regionA vm start -g demo -n db1 2>&1 | sed 's/^/    A refuses to start its old copy: /' | head -n 2 || true
for _ in $(seq 1 60); do
  n=$("$S" --region regionA recovery replication show -g demo --vault drvault -n db1 -o json |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["properties"].get("recoveryPointCount", 0))')
  [ "$n" -ge 2 ] && break
  sleep 1
done
"$S" --region regionA recovery replication show -g demo --vault drvault -n db1

say "Failback: a planned failover from A; B stops db1 and sends its last cycle, A's own db1 takes it"
T0=$(date +%s.%N)
"$S" --region regionA recovery replication failover -g demo --vault drvault -n db1 --planned
T1=$(date +%s.%N)
"$S" --region regionA vm show -g demo -n db1 -o table
python3 - "$T0" "$T1" <<'EOP'
import sys
t0, t1 = map(float, sys.argv[1:])
print(f"    failback: {t1 - t0:.1f} s (B's shutdown and last cycle, the blocks that differ committed into "
      f"db1's own disks in A, db1 started)")
EOP
"$S" --region regionA recovery replication disable -g demo --vault drvault -n db1
"$S" --region regionB recovery replication disable -g dr --vault drvault -n db1
"$S" --region regionB group delete -n dr --yes
left_b=$(region_net_objects "$RID_B" | wc -l)
echo "network objects of region B left after its group's deletion: $left_b"
[ "$left_b" = 0 ] || { region_net_objects "$RID_B"; exit 1; }

say "Activity log (last 6 writes)"
"$S" activity-log list --top 6 -o table

say "Clean up: delete the VM with its disks, the snapshots and the group"
"$S" vm delete -g demo -n web1 --delete-disks
"$S" vm delete -g demo -n db1 --delete-disks
"$S" backup protection disable -g demo --vault vault1 -n web1 --delete-backup-data >/dev/null
"$S" group delete -n demo --yes
left=$(virsh -c qemu:///system list --all --name | grep -c '^stratus-' || true)
left_net=$(region_net_objects | wc -l)
echo "network objects of the region left (namespaces, links, nft table, dnsmasq): $left_net"
[ "$left_net" = 0 ] || { region_net_objects; exit 1; }
echo "domains left: $(virsh -c qemu:///system list --all --name | while read -r d; do [ -n "$d" ] && virsh -c qemu:///system dumpxml "$d" | grep -q "$WORK" && echo "$d"; done | wc -l), disk files left: $(find "$WORK/regionA/disks" "$WORK/regionA/snapshots" -type f 2>/dev/null | wc -l)"
say "Demo finished"
