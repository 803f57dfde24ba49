#!/usr/bin/env python3
"""Capture a TCP transfer to a receiver with a small receive buffer (SO_RCVBUF) over a tbf bottleneck.

As fidelity/tcp_tbf/capture.py (two network namespaces, so-rwnd-a and so-rwnd-b, a veth pair, tbf on
the sender's side, no added delay), but the receiver sets SO_RCVBUF on its listening socket before
listen() (the accepted socket inherits it, the buffer locked: no autotuning), and the sender's
TCP_INFO samples add what the window decides: the peer's advertised window (tcpi_snd_wnd), the window
scales of both ends, time spent limited by the receive window (tcpi_rwnd_limited), RTT. The
receiver's own TCP_INFO at the end gives its rcv_ssthresh, rcv_wnd and advmss.

  fidelity/tcp_rwnd/capture.py --cc cubic --rcvbuf 16384 --seconds 10 --out trace.json
"""
import argparse
import ctypes
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

SKIP = 77
NS_A, NS_B = "so-rwnd-a", "so-rwnd-b"
ADDR_A, ADDR_B = "10.218.0.1", "10.218.0.2"
PORT = 5201
TCP_INFO = 11
TCP_CONGESTION = 13


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def setup(rate, limit, burst):
    teardown()
    sh("ip", "netns", "add", NS_A)
    sh("ip", "netns", "add", NS_B)
    sh("ip", "link", "add", "so-rwnd-va", "netns", NS_A, "type", "veth", "peer", "name", "so-rwnd-vb", "netns", NS_B)
    for ns, dev, addr in ((NS_A, "so-rwnd-va", ADDR_A), (NS_B, "so-rwnd-vb", ADDR_B)):
        sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        # No segmentation offloads: the bottleneck sees MSS-sized packets, as the simulator sends them.
        sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off", check=False)
    sh("tc", "-n", NS_A, "qdisc", "add", "dev", "so-rwnd-va", "root", "tbf", "rate", rate, "burst", str(burst),
       "limit", str(limit))


def teardown():
    for ns in (NS_A, NS_B):
        sh("ip", "netns", "del", ns, check=False)


def in_netns(ns):
    """setns(2) for the calling thread only (os.setns is Python 3.12+)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
            raise OSError(ctypes.get_errno(), f"setns {ns}")
    finally:
        os.close(fd)


FIELDS = {
    # name: (offset, struct format) in struct tcp_info (include/uapi/linux/tcp.h)
    "ca_state": (1, "B"),
    "rto_us": (8, "I"),
    "mss": (16, "I"),
    "unacked": (24, "I"),
    "sacked": (28, "I"),
    "lost": (32, "I"),
    "retrans": (36, "I"),
    "rtt_us": (68, "I"),
    "ssthresh": (76, "I"),
    "cwnd": (80, "I"),
    "total_retrans": (100, "I"),
    "pacing_rate": (104, "Q"),
    "bytes_acked": (120, "Q"),
    "min_rtt_us": (148, "I"),
    "data_segs_out": (156, "I"),
    "delivery_rate": (160, "Q"),
    "delivered": (192, "I"),
    "busy_time_us": (168, "Q"),
    "rwnd_limited_us": (176, "Q"),
    "snd_wnd": (228, "I"),
    "rcv_wnd": (232, "I"),
    "rcv_ssthresh": (64, "I"),
    "advmss": (84, "I"),
    "wscale": (6, "B"),
    "total_rto": (240, "H"),
    "total_rto_recoveries": (242, "H"),
}


def tcp_info(sock):
    raw = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 256)
    out = {}
    for name, (off, fmt) in FIELDS.items():
        size = struct.calcsize(fmt)
        out[name] = struct.unpack_from("<" + fmt, raw, off)[0] if off + size <= len(raw) else None
    return out


def receiver(ready, rcvbuf, result):
    in_netns(NS_B)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    srv.bind((ADDR_B, PORT))
    srv.listen(1)
    ready.set()
    conn, _ = srv.accept()
    result["sk_rcvbuf"] = conn.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    while conn.recv(1 << 20):
        result["info"] = tcp_info(conn)
    conn.close()
    srv.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cc", default="cubic")
    ap.add_argument("--rcvbuf", type=int, default=0, help="SO_RCVBUF of the receiver (0: the default, autotuned)")
    ap.add_argument("--rate", default="12mbit")
    ap.add_argument("--limit", type=int, default=45000)
    ap.add_argument("--burst", type=int, default=1540)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sample-ms", type=float, default=10.0)
    ap.add_argument("--out")
    a = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("tc"):
        print("skip: needs root, ip and tc", file=sys.stderr)
        return SKIP
    avail = open("/proc/sys/net/ipv4/tcp_available_congestion_control").read().split()
    try:
        setup(a.rate, a.limit, a.burst)
    except subprocess.CalledProcessError as e:
        teardown()
        print(f"skip: cannot build the netns bottleneck: {e.stderr.strip()}", file=sys.stderr)
        return SKIP
    try:
        ready = threading.Event()
        # The receiver lives in its own thread, switched into NS_B; the sender runs in NS_A.
        rx = {}
        rt = threading.Thread(target=receiver, args=(ready, a.rcvbuf, rx), daemon=True)
        rt.start()
        ready.wait(5)
        in_netns(NS_A)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, a.cc.encode())
        except OSError as e:
            print(f"skip: congestion control {a.cc} not available ({e}; have {' '.join(avail)})", file=sys.stderr)
            return SKIP
        s.connect((ADDR_B, PORT))
        samples = []
        stop = threading.Event()
        t0 = time.monotonic()

        def sampler():
            while not stop.is_set():
                info = tcp_info(s)
                info["t_ms"] = round((time.monotonic() - t0) * 1000, 3)
                samples.append(info)
                time.sleep(a.sample_ms / 1000)

        st = threading.Thread(target=sampler, daemon=True)
        st.start()
        buf = b"\0" * (1 << 16)
        while time.monotonic() - t0 < a.seconds:
            s.send(buf)
        stop.set()
        st.join()
        final = tcp_info(s)
        s.close()
        rt.join(5)
        trace = {
            "kernel": os.uname().release,
            "scenario": {"cc": a.cc, "rate": a.rate, "limit_bytes": a.limit, "burst_bytes": a.burst,
                         "seconds": a.seconds, "sample_ms": a.sample_ms, "delay": "none (veth)",
                         "rcvbuf": a.rcvbuf},
            "receiver": rx,
            "final": final,
            "samples": samples,
        }
        text = json.dumps(trace, separators=(",", ":"))
        if a.out:
            with open(a.out, "w") as f:
                f.write(text + "\n")
        else:
            print(text)
        return 0
    finally:
        teardown()


if __name__ == "__main__":
    sys.exit(main())
