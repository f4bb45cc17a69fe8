"""The Node runner never outlives its parent: EOF on its pipe, a new parent pid, or the owning
Python process killed outright all end it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from esp32_twin.device import RUNNER, STANDINS

GONE_WITHIN_S = 5.0


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.startswith("State:") and "Z" in line for line in f)
    except FileNotFoundError:
        return True


def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + GONE_WITHIN_S
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


def _runner_cmd(in_fd: int, out_fd: int) -> list[str]:
    return ["node", str(RUNNER), "--in-fd", str(in_fd), "--out-fd", str(out_fd), "--lib", str(STANDINS)]


def test_runner_exits_on_eof_of_its_input(node_runtime: None) -> None:
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    proc = subprocess.Popen(_runner_cmd(to_r, from_w), pass_fds=(to_r, from_w),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(to_r)
    os.close(from_w)
    try:
        assert os.read(from_r, 8)           # its first request: it is up and waiting for the answer
        os.close(to_w)                      # the host goes away
        assert proc.wait(GONE_WITHIN_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(from_r)


def test_runner_exits_when_its_parent_dies_even_with_the_pipe_open(node_runtime: None) -> None:
    # The parent starts the runner and exits; this test keeps both pipes open, so only the
    # runner's parent-pid watchdog can notice.
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    launcher = ("import os, subprocess\n"
                f"cmd = {_runner_cmd(to_r, from_w)!r} + ['--parent-pid', str(os.getpid())]\n"
                f"p = subprocess.Popen(cmd, pass_fds=({to_r}, {from_w}),"
                " stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
                "print(p.pid, flush=True)\n")
    out = subprocess.run([sys.executable, "-c", launcher], pass_fds=(to_r, from_w), capture_output=True,
                         text=True, timeout=30, check=True).stdout
    pid = int(out)
    try:
        assert _wait_gone(pid), "the runner survived its parent"
    finally:
        if not _gone(pid):
            os.kill(pid, 9)
        for fd in (to_r, to_w, from_r, from_w):
            os.close(fd)


def test_runner_dies_with_a_killed_owner(node_runtime: None) -> None:
    owner = ("import time\nfrom esp32_twin import VirtualEsp32, FakePeer\n"
             "esp = VirtualEsp32(FakePeer()).start()\n"
             "print(esp._proc.pid, flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", owner], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        pid = int(proc.stdout.readline())
        assert not _gone(pid)
        proc.kill()                          # no chance to clean up
        proc.wait(10)
        assert _wait_gone(pid), "the runner survived the killed Python process"
    finally:
        if proc.poll() is None:
            proc.kill()
