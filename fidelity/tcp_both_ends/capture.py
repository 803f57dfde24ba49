#!/usr/bin/env python3
"""Count the calls the host kernel makes into a BPF congestion control on both ends of a connection.

Registers bpf/obj/tcp_ca_count.bpf.o (struct_ops `so_count`, TCP_CONG_NEEDS_ECN) with bpftool, sets it
on a listener and on a client over loopback, sends --bytes from the client, closes both sockets, then
dumps the counter map (socket address, callback, argument -> calls) and writes, per socket, its role
(the one that accepted is the receiver) and its counts as JSON. Needs root and bpftool; exits 77 (skip)
otherwise. The registration is removed afterwards.

  fidelity/tcp_both_ends/capture.py --bytes 2000000 --out test/fixtures/tcp/host_both_ends.json
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time

SKIP = 77
TCP_CONGESTION = 13
OPS = {1: "init", 2: "release", 3: "ssthresh", 4: "cong_avoid", 5: "set_state", 6: "cwnd_event",
       7: "in_ack_event", 8: "pkts_acked", 9: "undo_cwnd"}


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--obj", default=os.path.join(os.path.dirname(__file__), "../../bpf/obj/tcp_ca_count.bpf.o"))
    ap.add_argument("--bytes", type=int, default=2_000_000)
    ap.add_argument("--out")
    a = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("bpftool"):
        print("needs root and bpftool", file=sys.stderr)
        return SKIP
    sh("bpftool", "struct_ops", "unregister", "name", "so_count", check=False)
    r = sh("bpftool", "struct_ops", "register", a.obj, check=False)
    if r.returncode != 0:
        print(f"bpftool struct_ops register: {r.stderr.strip()}", file=sys.stderr)
        return SKIP
    try:
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, b"so_count")
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, b"so_count")
        c.connect(ls.getsockname())
        s, _ = ls.accept()
        ls.close()
        data = b"x" * 65536
        sent = 0
        got = 0
        s.setblocking(False)
        while sent < a.bytes:
            sent += c.send(data[: min(len(data), a.bytes - sent)])
            try:
                got += len(s.recv(1 << 20))
            except BlockingIOError:
                pass
        s.setblocking(True)
        while got < a.bytes:
            got += len(s.recv(1 << 20))
        c.close()
        s.close()
        time.sleep(0.5)
        dump = json.loads(sh("bpftool", "-j", "map", "dump", "name", "so_count_calls").stdout)
    finally:
        sh("bpftool", "struct_ops", "unregister", "name", "so_count", check=False)
    socks = {}
    for e in dump:
        k = bytes(int(x, 16) for x in e["key"])
        v = int.from_bytes(bytes(int(x, 16) for x in e["value"]), "little")
        sk = int.from_bytes(k[0:8], "little")
        op = OPS[int.from_bytes(k[8:12], "little")]
        arg = int.from_bytes(k[12:16], "little")
        socks.setdefault(sk, {})[f"{op}/{arg}"] = v
    # The receiver is the socket that sent no data: no CA_EVENT_TX_START (0) on it.
    out = {"kernel": os.uname().release, "bytes": a.bytes, "sockets": []}
    for counts in socks.values():
        role = "sender" if "cwnd_event/0" in counts else "receiver"
        out["sockets"].append({"role": role, "calls": dict(sorted(counts.items()))})
    out["sockets"].sort(key=lambda x: x["role"])
    text = json.dumps(out, indent=1) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
