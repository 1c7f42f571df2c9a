#!/usr/bin/env python3
"""Tiny client for the QEMU guest agent (and QMP) on a unix socket. Standard library only.

  qga.py [-t SECS] SOCKET COMMAND [ARGUMENTS_JSON]   one agent command; prints the "return" JSON
  qga.py [-t SECS] SOCKET exec PROG [ARG...]         guest-exec + guest-exec-status polling; copies
                                                     the guest's stdout/stderr, exits with its code
  qga.py [-t SECS] --qmp SOCKET COMMAND [ARGS_JSON]  one QMP command (after qmp_capabilities)

The agent socket is the host end of the virtio-serial port org.qemu.guest_agent.0 (QEMU:
-chardev socket,path=SOCKET,server=on,wait=off). Each call resynchronises with
guest-sync-delimited, so stale replies from an earlier, interrupted client are skipped.
"""
import base64
import json
import os
import random
import socket
import sys
import time


# commands that send no reply when they succeed
NO_REPLY = ("guest-shutdown", "guest-suspend-disk", "guest-suspend-ram", "guest-suspend-hybrid")


class Error(Exception):
    pass


class Channel:
    def __init__(self, path, timeout):
        self.deadline = time.monotonic() + timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def _recv(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Error("timeout")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise Error("timeout")
        if not data:
            raise Error("connection closed")
        self.buf += data

    def send(self, obj):
        self.sock.sendall(json.dumps(obj).encode() + b"\n")

    def read_msg(self):
        """Next JSON object; replies are newline-terminated, 0xff is the agent's sync byte."""
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                line = line.replace(b"\xff", b"").strip()
                if line:
                    return json.loads(line.decode("utf-8", "replace"))
            self._recv()

    def call(self, cmd, args=None):
        msg = {"execute": cmd}
        if args is not None:
            msg["arguments"] = args
        self.send(msg)
        while True:
            r = self.read_msg()
            if "event" in r:
                continue
            if "error" in r:
                raise Error("%s: %s" % (cmd, r["error"].get("desc", r["error"])))
            return r.get("return")


def agent(path, timeout):
    ch = Channel(path, timeout)
    sync_id = random.randint(1, 2**31 - 1)
    ch.sock.sendall(b"\xff")
    ch.send({"execute": "guest-sync-delimited", "arguments": {"id": sync_id}})
    while True:  # discard anything until the 0xff sentinel and our sync id
        r = ch.read_msg()
        if r.get("return") == sync_id:
            return ch


def qmp(path, timeout):
    ch = Channel(path, timeout)
    ch.read_msg()  # greeting
    ch.call("qmp_capabilities")
    return ch


def main(argv):
    timeout = 30.0
    use_qmp = False
    while argv and argv[0].startswith("-"):
        if argv[0] in ("-t", "--timeout"):
            timeout = float(argv[1]); argv = argv[2:]
        elif argv[0] == "--qmp":
            use_qmp = True; argv = argv[1:]
        else:
            break
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    path, cmd, rest = argv[0], argv[1], argv[2:]
    try:
        if use_qmp:
            ch = qmp(path, timeout)
            print(json.dumps(ch.call(cmd, json.loads(rest[0]) if rest else None)))
            return 0
        ch = agent(path, timeout)
        if cmd == "exec":
            if not rest:
                raise Error("exec needs a program")
            pid = ch.call("guest-exec", {"path": rest[0], "arg": rest[1:], "capture-output": True})["pid"]
            while True:
                st = ch.call("guest-exec-status", {"pid": pid})
                if st.get("exited"):
                    break
                time.sleep(0.1)
            sys.stdout.buffer.write(base64.b64decode(st.get("out-data", "")))
            sys.stderr.buffer.write(base64.b64decode(st.get("err-data", "")))
            sys.stdout.flush()
            if "signal" in st:
                return 128 + st["signal"]
            return st.get("exitcode", 1)
        args = json.loads(rest[0]) if rest else None
        if cmd in NO_REPLY:  # the agent answers these only on failure
            msg = {"execute": cmd}
            if args is not None:
                msg["arguments"] = args
            ch.send(msg)
            ch.deadline = time.monotonic() + 2
            try:
                r = ch.read_msg()
            except (Error, OSError):
                r = {}  # no reply (timeout or the guest went away): accepted
            if "error" in r:
                raise Error("%s: %s" % (cmd, r["error"].get("desc", r["error"])))
            print("{}")
            return 0
        print(json.dumps(ch.call(cmd, args)))
        return 0
    except (Error, OSError, ValueError) as e:
        sys.stderr.write("qga.py: %s\n" % e)
        return 125


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
