#!/usr/bin/env python3
"""A TCP proxy on loopback that cuts one transfer short, for resume tests.

Forwards 127.0.0.1:<port> to 127.0.0.1:UPSTREAM. The first connection
whose server-to-client bytes exceed --cut-after is closed abruptly (once);
later ones pass. Request lines and Range headers the client sends are
appended to --log.

    cutproxy.py --upstream PORT --cut-after BYTES --port-file F --log L
"""
import argparse
import os
import socket
import sys
import threading


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", type=int, required=True)
    p.add_argument("--cut-after", type=int, required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    a = p.parse_args()
    state = {"cut": False}
    lock = threading.Lock()

    def log(line):
        with lock, open(a.log, "a") as f:
            f.write(line + "\n")

    def up(c, s):
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                for line in data.split(b"\r\n"):
                    low = line.lower()
                    if line.startswith(b"GET ") or low.startswith(b"range:"):
                        log(line.decode(errors="replace"))
                s.sendall(data)
        except OSError:
            pass
        finally:
            for x in (c, s):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def down(c, s):
        sent = 0
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                with lock:
                    cut = not state["cut"] and sent + len(data) > a.cut_after
                    if cut:
                        state["cut"] = True
                if cut:
                    c.sendall(data[: max(0, a.cut_after - sent)])
                    log("cut after %d bytes" % a.cut_after)
                    break
                c.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for x in (c, s):
                try:
                    x.shutdown(socket.SHUT_RDWR)  # wakes the other thread's recv
                except OSError:
                    pass
                try:
                    x.close()
                except OSError:
                    pass

    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(a.port_file + ".tmp", a.port_file)
    while True:
        c, _ = ls.accept()
        s = socket.create_connection(("127.0.0.1", a.upstream))
        threading.Thread(target=up, args=(c, s), daemon=True).start()
        threading.Thread(target=down, args=(c, s), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
