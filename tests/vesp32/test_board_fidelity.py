"""The virtual ESP32 behaves like the board where CPython would differ: stream reads on a blocking
socket fill the buffer or fail at the timeout while recv returns what arrived, the clock runs while
a socket waits, errno values are the ESP32 port's, a text file is read by characters, the modules
and classes a user's session touches exist, machine.WDT resets the board, and the bridge's HTTP
client gets a short answer from a server that keeps its connection open."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from esp32_twin import VirtualEsp32
from fota_testkit.mpremote import Mp
from stm32_fota.esp32 import deploy

BRIDGE = Path(__file__).resolve().parents[2] / "esp32_mpy"


@pytest.fixture
def holding_server() -> Iterator[int]:
    """Answers each connection with a short HTTP response and keeps the connection open 4 s."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(20)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096)
                body = b'{"update": false}'
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            except OSError:
                return
            stop.wait(4)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield srv.getsockname()[1]
    stop.set()
    srv.close()
    thread.join(5)


WIFI = "import network\nw = network.WLAN(network.STA_IF); w.active(True); w.connect('lab', 'pw')\n"


def test_stream_reads_fill_or_time_out_and_recv_returns_what_arrived(mp: Mp, holding_server: int) -> None:
    # py/stream.c (mp_stream_rw) for readinto/read(n); ports/esp32/modsocket.c for recv; the socket
    # timeout fails with ETIMEDOUT = 116 (newlib); the clock runs while the socket waits.
    code = (WIFI + "import socket, time\n"
            f"a = socket.getaddrinfo('127.0.0.1', {holding_server})[0][-1]\n"
            "s = socket.socket(); s.settimeout(1); s.connect(a); s.write(b'GET / HTTP/1.1\\r\\n\\r\\n')\n"
            "buf = bytearray(512); t0 = time.ticks_ms()\n"
            "try:\n  print('filled', s.readinto(buf))\n"
            "except OSError as e:\n  print(e.errno, time.ticks_diff(time.ticks_ms(), t0) >= 900)\n"
            "s.close()\n"
            "s = socket.socket(); s.settimeout(2); s.connect(a); s.write(b'GET / HTTP/1.1\\r\\n\\r\\n')\n"
            "print(len(s.recv(512)))\n"
            "s.setblocking(False); print(s.readinto(buf))\n"
            "s.close()\n")
    assert mp("exec", code).stdout == "116 True\n56\nNone\n"


def test_the_bridge_gets_a_short_answer_from_a_keep_alive_server(mp: Mp, esp: VirtualEsp32,
                                                                 holding_server: int) -> None:
    for name in ("fota_const.py", "fotalink.py", "net.py"):
        shutil.copy(BRIDGE / name, esp.fs_dir / name)
    code = (WIFI + "import net, time\nt0 = time.ticks_ms()\n"
            f"print(net.Http('http://127.0.0.1:{holding_server}', timeout_s=3).post_json('/x', {{}}))\n"
            "print(time.ticks_diff(time.ticks_ms(), t0) < 1500)\n")
    assert mp("exec", code).stdout == "{'update': False}\nTrue\n"


def test_text_files_are_read_by_characters(mp: Mp, esp: VirtualEsp32) -> None:
    text = "é" * 300 + "x€𝄞" * 50 + "\n"
    (esp.fs_dir / "u.txt").write_text(text, encoding="utf-8")
    code = "f = open('u.txt'); a = f.read(5); b = f.read(256); c = f.read(); print(len(a), len(b), len(c))\n"
    assert mp("exec", code).stdout == f"5 256 {len(text) - 261}\n"
    assert mp("fs", "cat", ":u.txt").stdout == text


def test_what_a_session_touches_exists(mp: Mp) -> None:
    code = ("import os, esp, esp32, machine, errno\n"
            "u = os.uname(); print(u.sysname, u.machine)\n"
            "esp.osdebug(None); print(esp.flash_size(), type(esp32.raw_temperature()))\n"
            "print(len(machine.RTC().datetime()), errno.errorcode[116])\n"
            "P = machine.Pin\n"
            "s = machine.SoftSPI(baudrate=100000, sck=P(18), mosi=P(23), miso=P(19))\n"
            "print(len(s.read(2)))\n")
    assert mp("exec", code).stdout == ("esp32 Generic ESP32 module with ESP32\n4194304 <class 'int'>\n"
                                       "8 ETIMEDOUT\n2\n")


def test_the_watchdog_resets_a_board_left_at_its_repl(mp: Mp, esp: VirtualEsp32) -> None:
    mp("exec", "import machine\nw = machine.WDT(timeout=1000)\nw.feed()\n")
    deadline = time.monotonic() + 20
    while "rst:0xc" not in esp.transcript() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "rst:0xc" in esp.transcript()
    cause = mp("exec", "import machine\nprint(machine.reset_cause() == machine.WDT_RESET)\n").stdout
    assert cause == "True\n"


def test_deploy_with_a_server_alone_keeps_the_other_settings(esp: VirtualEsp32, tmp_path: Path) -> None:
    deploy(esp.port, None, {"wifi_ssid": "lab", "wifi_password": "pw", "server": "http://10.0.0.2:8080",
                            "token": "secret"}, build_dir=tmp_path / "build")
    r = deploy(esp.port, None, {"server": "http://10.0.0.3:8080"}, build_dir=tmp_path / "build")
    cfg = json.loads((esp.fs_dir / "config.json").read_text())
    assert cfg == {"wifi_ssid": "lab", "wifi_password": "pw", "server": "http://10.0.0.3:8080",
                   "token": "secret"}
    assert r.check == "server http://10.0.0.3:8080; Wi-Fi lab; token set; CA file ca.pem absent"
    assert not (esp.fs_dir / "fota_new.json").exists()
    deadline = time.monotonic() + 20                 # mpremote's reset does not wait for the reboot
    while esp.transcript().count("rst:0xc") < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert esp.transcript().count("rst:0xc") == 2     # each deploy reset the board: main.py runs


def test_mpremote_mount_fails_cleanly_and_the_device_stays_usable(mp: Mp, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hi\n")
    t0 = time.monotonic()
    r = mp("mount", str(tmp_path), "exec", "print(open('a.txt').read())", check=False)
    assert r.returncode != 0 and time.monotonic() - t0 < 20
    assert "mpremote mount is not supported" in r.stderr
    assert mp("exec", "print(1 + 1)").stdout == "2\n"


def test_file_transfers_run_at_the_uart_s_speed(tmp_path: Path) -> None:
    # A DevKit's console is a 115200-baud UART (10 bits a byte): 11.5 KB/s; 19200 keeps this short.
    src = tmp_path / "blob.bin"
    src.write_bytes(bytes(range(256)) * 8)              # 2 KB: > 1 s at 19200 baud, plus the protocol
    with VirtualEsp32(fs_dir=tmp_path / "fs", baud=19200) as esp:
        t0 = time.monotonic()
        Mp(esp.port)("fs", "cp", str(src), ":blob.bin")
        elapsed = time.monotonic() - t0
    assert (tmp_path / "fs" / "blob.bin").read_bytes() == src.read_bytes()
    assert elapsed >= 2048 / 1920
