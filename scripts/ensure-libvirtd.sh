#!/bin/sh
# Makes sure a libvirtd answers on qemu:///system (or $STRATUS_LIBVIRT_URI). Idempotent.
#
# With systemd as PID 1 the units are started with systemctl; otherwise (containers, build
# machines) virtlogd and libvirtd are started as daemons by hand. virtlogd is needed too: it
# writes the serial console logs of Stratus domains. Waits until `virsh version` answers, at most
# $STRATUS_LIBVIRTD_TIMEOUT seconds (default 30).
#
# Also gives /dev/kvm the group and mode udev gives it on a normal host (root:kvm 0660) when
# there is no udev to do it: libvirt probes QEMU's capabilities as root but re-validates them
# for the QEMU user, and a /dev/kvm only root can open makes it re-probe QEMU (~40 s) on every
# domain definition. This does not make domains use KVM (that is the domain type's choice).
#
# Exit status 0 when libvirtd answers, non-zero with a message on stderr otherwise.
set -u

URI="${STRATUS_LIBVIRT_URI:-qemu:///system}"
TIMEOUT="${STRATUS_LIBVIRTD_TIMEOUT:-30}"

die() {
  echo "ensure-libvirtd: $*" >&2
  exit 1
}

answers() {
  virsh -c "$URI" version >/dev/null 2>&1
}

command -v virsh >/dev/null 2>&1 || die "virsh not found (install libvirt-clients)"

if [ "$(id -u)" -eq 0 ] && [ -c /dev/kvm ] && getent group kvm >/dev/null 2>&1; then
  if [ "$(stat -c %G /dev/kvm)" != kvm ] || [ "$(stat -c %a /dev/kvm)" != 660 ]; then
    chgrp kvm /dev/kvm && chmod 0660 /dev/kvm ||
      echo "ensure-libvirtd: warning: cannot set /dev/kvm to root:kvm 0660" >&2
  fi
fi

# Starts a daemon by hand unless a process of that name exists (one that is still shutting down
# is waited for by the loop below, which starts a fresh one once it is gone).
start_daemon() {
  pgrep -x "$1" >/dev/null 2>&1 && return 0
  [ "$(id -u)" -eq 0 ] || die "$1 is not running and only root can start it"
  command -v "$1" >/dev/null 2>&1 || die "$1 not found (install libvirt-daemon-system)"
  "$1" -d || die "$1 -d failed"
}

use_systemd=0
if [ "$(cat /proc/1/comm 2>/dev/null)" = "systemd" ] && command -v systemctl >/dev/null 2>&1; then
  use_systemd=1
  if ! answers; then
    systemctl start virtlogd.socket >/dev/null 2>&1 || true
    systemctl start libvirtd.service || die "systemctl start libvirtd failed"
  fi
else
  start_daemon virtlogd
fi

waited=0
while ! answers; do
  if [ "$use_systemd" = 0 ]; then
    start_daemon virtlogd
    start_daemon libvirtd
  fi
  if [ "$waited" -ge "$((TIMEOUT * 10))" ]; then
    err="$(virsh -c "$URI" version 2>&1 >/dev/null | head -n 3)"
    die "libvirtd did not answer on $URI within ${TIMEOUT}s: $err"
  fi
  sleep 0.1
  waited=$((waited + 1))
done
exit 0
