"""A tiny process that starts the benchmarked commands for bench.py and reports their peak RSS.

Why: on Linux a child's `ru_maxrss` includes the high-water RSS of the process it was forked or
vforked from (exec records the old address space's peak), so a child started by the bench itself
(which caches hundreds of MB of response bodies) would report at least the bench's size. This
helper is started with `python -I -S` before the bench allocates anything, stays around 7 MB, and
fork+execs each command; its size is the floor of every RSS figure (bench.py measures and prints it).

Protocol, over an AF_UNIX SOCK_SEQPACKET socket whose fd number is argv[1]:
  bench -> {"argv": [...], "env": {...}, "cwd": str|null, "ctty": bool} with SCM_RIGHTS fds
           [stdin, stdout, stderr]
  spawner -> {"pid": N}  (the child runs in its own session, so the bench can killpg(N))
  spawner -> {"pid": N, "status": exit status (negative: signal), "maxrss_kib": K, "utime": s, "stime": s}
  bench -> {"quit": true} or EOF: the spawner exits.
"""

import json
import os
import socket
import sys


def child(req, fds):
    try:
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        if req.get("ctty"):
            import fcntl
            import termios

            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        os.closerange(3, 65536)
        if req.get("cwd"):
            os.chdir(req["cwd"])
        os.execve(req["argv"][0], req["argv"], req["env"])
    except BaseException as exc:
        try:
            os.write(2, f"spawner: cannot run {req['argv'][0]!r}: {exc}\n".encode())
        finally:
            os._exit(127)


def main():
    sock = socket.socket(fileno=int(sys.argv[1]))
    sock.send(json.dumps({"ready": True, "pid": os.getpid()}).encode())
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 8)
        except OSError:
            return
        if not msg:
            return
        req = json.loads(msg)
        if req.get("quit"):
            return
        pid = os.fork()
        if pid == 0:
            sock.close()
            child(req, fds)
        for fd in fds:
            os.close(fd)
        sock.send(json.dumps({"pid": pid}).encode())
        _, status, ru = os.wait4(pid, 0)
        sock.send(
            json.dumps(
                {
                    "pid": pid,
                    "status": os.waitstatus_to_exitcode(status),
                    "maxrss_kib": ru.ru_maxrss,
                    "utime": ru.ru_utime,
                    "stime": ru.ru_stime,
                }
            ).encode()
        )


if __name__ == "__main__":
    main()
