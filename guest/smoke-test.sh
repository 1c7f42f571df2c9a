#!/bin/bash
# Boot the tiny guest image with plain QEMU (TCG) and check it end to end:
# READY marker, config drive (hostname, network by MAC, user-script), online growth of the root
# filesystem, guest agent (ping, guest-exec with PATH lookup, HTML from httpd, fsfreeze freeze/thaw
# on /), a hot-plugged disk formatted in the guest, ACPI power-off with a clean unmount.
#
#   guest/smoke-test.sh OUTDIR          (OUTDIR as given to build-tiny-image.sh)
#
# Environment: SMOKE_KEEP=1 keeps the temp dir; SMOKE_MACHINE (default pc) picks -machine;
# SMOKE_APPEND adds kernel arguments (e.g. stratus.trace=1 prints per-step uptimes).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
OUTDIR=$(realpath -- "$1")
HERE=$(cd "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
IMG="$OUTDIR/tiny"
QGA="python3 $HERE/qga.py"
BOOT_TIMEOUT=${SMOKE_BOOT_TIMEOUT:-60}
[ -f "$IMG/image.json" ] || { echo "no image in $IMG: run guest/build-tiny-image.sh $OUTDIR" >&2; exit 2; }

T=$(mktemp -d /tmp/stratus-smoke.XXXXXX)
QPID=
cleanup() {
  if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then
    kill "$QPID" 2>/dev/null; sleep 0.5; kill -9 "$QPID" 2>/dev/null || true
  fi
  if [ "${SMOKE_KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
fail() {
  echo "SMOKE FAIL: $*" >&2
  echo "---- serial console (last 40 lines) ----" >&2
  tail -n 40 "$T/serial.log" >&2 2>/dev/null || true
  exit 1
}
ok() { echo "ok   $*"; }

json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$IMG/image.json" "$1"; }
CMDLINE="$(json cmdline)${SMOKE_APPEND:+ $SMOKE_APPEND}"
MAC=52:54:00:5a:3c:01
HOST=smoke-vm-1

# ---- config drive: hostname, network (by MAC, renamed to eth7), user-script
cat > "$T/network" <<EOF
# test network config
MAC=$MAC
IFACE=eth7
ADDRESS=10.99.0.4/24
GATEWAY=10.99.0.1
DNS=10.99.0.1
EOF
cat > "$T/user-script" <<'EOF'
#!/bin/sh
echo "hello from user-script on $(hostname)"
echo ran > /run/user-script-ran
EOF
"$HERE/make-config-drive.sh" "$T/config.img" "$HOST" "$T/network" "$T/user-script" >/dev/null

# ---- throwaway overlay, made 1 GiB like a VM disk created from the image (guest grows its fs)
qemu-img create -q -f qcow2 -F qcow2 -b "$IMG/rootfs.qcow2" "$T/root.qcow2" 1G

start=$(date +%s.%N)
qemu-system-x86_64 \
  -machine "${SMOKE_MACHINE:-pc}" -accel tcg -m 256 -smp 1 \
  -nodefaults -no-user-config -display none \
  -kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" -append "$CMDLINE" \
  -drive file="$T/root.qcow2",if=none,id=root,format=qcow2 \
  -device virtio-blk-pci,drive=root,addr=0x4 \
  -drive file="$T/config.img",if=none,id=cfg,format=raw,readonly=on \
  -device virtio-blk-pci,drive=cfg,serial=stratus-config,addr=0x5 \
  -device virtio-serial-pci,addr=0x6 \
  -chardev socket,id=qga,path="$T/qga.sock",server=on,wait=off \
  -device virtserialport,chardev=qga,name=org.qemu.guest_agent.0 \
  -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0,mac=$MAC,addr=0x3 \
  -chardev socket,id=qmp,path="$T/qmp.sock",server=on,wait=off -mon chardev=qmp,mode=control \
  -serial file:"$T/serial.log" \
  >"$T/qemu.log" 2>&1 &
QPID=$!

# ---- wait for the READY marker
marker="STRATUS-GUEST-READY hostname=$HOST"
while :; do
  if [ -f "$T/serial.log" ] && grep -q "^$marker\$" <(tr -d '\r' < "$T/serial.log"); then break; fi
  kill -0 $QPID 2>/dev/null || { cat "$T/qemu.log" >&2; fail "QEMU exited during boot"; }
  now=$(date +%s.%N)
  awk -v a="$start" -v b="$now" -v t="$BOOT_TIMEOUT" 'BEGIN { exit !(b - a > t) }' && fail "no READY marker after ${BOOT_TIMEOUT}s"
  sleep 0.05
done
boot=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
read -r -a pst < "/proc/$QPID/stat"
cpu=$(awk -v u="${pst[13]}" -v s="${pst[14]}" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (u + s) / hz }')
load=$(cut -d' ' -f1 /proc/loadavg)
guest_up=$(tr -d '\r' < "$T/serial.log" | sed -n 's/^stratus: boot finished after \(.*\)s$/\1/p' | tail -n1)
ok "READY marker after ${boot}s (QEMU start to marker; guest uptime ${guest_up}s; QEMU CPU ${cpu}s; host load ${load} on $(nproc) cores)"

# ---- guest agent
$QGA -t 20 "$T/qga.sock" guest-ping > "$T/ping.json" || fail "guest-ping"
ok "guest-ping"

out=$($QGA "$T/qga.sock" exec sh -c 'echo hi') || fail "guest-exec sh -c 'echo hi'"
[ "$out" = hi ] || fail "guest-exec printed '$out'"
ok "guest-exec with PATH lookup (sh -c 'echo hi')"

html=$($QGA "$T/qga.sock" exec /bin/sh -c "wget -qO- http://127.0.0.1/") || fail "wget in guest"
grep -q "Stratus tiny guest: $HOST" <<<"$html" || fail "unexpected page: $html"
ok "httpd serves: $(grep -o "Stratus tiny guest: $HOST" <<<"$html")"

gname=$($QGA "$T/qga.sock" exec hostname) || fail "hostname"
[ "$gname" = "$HOST" ] || fail "hostname is '$gname'"
ok "hostname from config drive"

addr=$($QGA "$T/qga.sock" exec ip -4 -o addr show dev eth7) || fail "no eth7 (network by MAC + rename)"
grep -q '10.99.0.4/24' <<<"$addr" || fail "eth7 address: $addr"
route=$($QGA "$T/qga.sock" exec ip route show default)
grep -q 'via 10.99.0.1' <<<"$route" || fail "default route: $route"
dns=$($QGA "$T/qga.sock" exec cat /etc/resolv.conf)
grep -q 'nameserver 10.99.0.1' <<<"$dns" || fail "resolv.conf: $dns"
ok "network: eth7 (MAC $MAC) 10.99.0.4/24 via 10.99.0.1, DNS 10.99.0.1"

for _ in $(seq 1 50); do
  grep -q '^STRATUS-USER-SCRIPT-DONE rc=0' <(tr -d '\r' < "$T/serial.log") && break; sleep 0.1
done
grep -q "^user-script: hello from user-script on $HOST" <(tr -d '\r' < "$T/serial.log") || fail "user-script output not on console"
grep -q '^STRATUS-USER-SCRIPT-DONE rc=0' <(tr -d '\r' < "$T/serial.log") || fail "user-script not done"
[ "$($QGA "$T/qga.sock" exec cat /run/user-script-ran)" = ran ] || fail "user-script effect missing"
ok "user-script ran (console prefix + STRATUS-USER-SCRIPT-DONE rc=0)"

size_kb=$($QGA "$T/qga.sock" exec sh -c "df -k / | awk 'NR==2 {print \$2}'")
[ "${size_kb:-0}" -gt 900000 ] || fail "root fs not grown to the 1 GiB disk: ${size_kb} KiB"
ok "root filesystem grown online to ${size_kb} KiB"

# ---- hot-plugged data disk: appears with its serial, mkfs.ext4 + mount inside the guest
qemu-img create -q -f raw "$T/data.img" 64M
python3 "$HERE/qga.py" --qmp "$T/qmp.sock" blockdev-add \
  "{\"driver\":\"raw\",\"node-name\":\"data1\",\"file\":{\"driver\":\"file\",\"filename\":\"$T/data.img\"}}" >/dev/null ||
  fail "QMP blockdev-add"
python3 "$HERE/qga.py" --qmp "$T/qmp.sock" device_add \
  '{"driver":"virtio-blk-pci","drive":"data1","id":"data1","serial":"data-1"}' >/dev/null || fail "QMP device_add"
dev=
for _ in $(seq 1 100); do
  dev=$($QGA "$T/qga.sock" exec sh -c 'for s in /sys/block/*/serial; do [ "$(cat $s)" = data-1 ] && { d=${s%/serial}; echo /dev/${d##*/}; }; done' 2>/dev/null) || true
  [ -n "$dev" ] && break; sleep 0.1
done
[ -n "$dev" ] || fail "hot-plugged disk with serial data-1 did not appear"
out=$($QGA "$T/qga.sock" exec sh -c "mkfs.ext4 -q -F $dev && mkdir -p /mnt/data && mount $dev /mnt/data && echo ok > /mnt/data/f && cat /mnt/data/f && umount /mnt/data" 2>&1) ||
  fail "mkfs.ext4/mount of $dev: $out"
[ "$out" = ok ] || fail "data disk: $out"
ok "hot-plugged disk $dev (serial data-1): mkfs.ext4, mount, write, umount"

# ---- fsfreeze on /
n=$($QGA "$T/qga.sock" guest-fsfreeze-freeze) || fail "guest-fsfreeze-freeze"
[ "${n:-0}" -ge 1 ] || fail "froze $n filesystems"
st=$($QGA "$T/qga.sock" guest-fsfreeze-status)
[ "$st" = '"frozen"' ] || fail "status after freeze: $st"
n2=$($QGA "$T/qga.sock" guest-fsfreeze-thaw) || fail "guest-fsfreeze-thaw"
st=$($QGA "$T/qga.sock" guest-fsfreeze-status)
[ "$st" = '"thawed"' ] || fail "status after thaw: $st"
$QGA "$T/qga.sock" exec sh -c 'echo after-thaw > /root/t && sync && cat /root/t' | grep -q after-thaw || fail "write after thaw"
hook=$($QGA "$T/qga.sock" exec cat /run/stratus/fsfreeze.log)
grep -q 'freeze end rc=0' <<<"$hook" && grep -q 'thaw end rc=0' <<<"$hook" || fail "fsfreeze hook did not run: $hook"
ok "fsfreeze: froze $n, thawed $n2 filesystems; hook ran; / writable again"

# ---- ACPI power button -> clean power-off
t0=$(date +%s.%N)
python3 "$HERE/qga.py" --qmp "$T/qmp.sock" system_powerdown >/dev/null || fail "QMP system_powerdown"
for _ in $(seq 1 300); do kill -0 $QPID 2>/dev/null || break; sleep 0.1; done
kill -0 $QPID 2>/dev/null && fail "guest did not power off within 30 s of the ACPI power button"
wait $QPID || true; QPID=
down=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
grep -q '^STRATUS-GUEST-SHUTDOWN clean' <(tr -d '\r' < "$T/serial.log") || fail "no clean shutdown marker"
qemu-img convert -q -O raw "$T/root.qcow2" "$T/root.raw"
state=$(dumpe2fs -h "$T/root.raw" 2>/dev/null | sed -n 's/^Filesystem state: *//p')
feat=$(dumpe2fs -h "$T/root.raw" 2>/dev/null | sed -n 's/^Filesystem features: *//p')
[ "$state" = clean ] || fail "root fs state after power-off: $state"
grep -qw needs_recovery <<<"$feat" && fail "root fs journal needs recovery after power-off"
ok "ACPI power-off in ${down}s; root filesystem clean"

echo "SMOKE PASS: tiny guest booted in ${boot}s under TCG (QEMU CPU ${cpu}s, load ${load}; kernel $(json kernelVersion))"
