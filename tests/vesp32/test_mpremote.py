"""mpremote, unchanged, against the virtual ESP32's pty: what the deploy and update commands use."""

from __future__ import annotations

import time
from pathlib import Path

from esp32_twin import VirtualEsp32
from fota_testkit.mpremote import Mp


def test_exec_prints_the_result(mp: Mp) -> None:
    assert mp("exec", "print(6 * 7)").stdout == "42\n"


def test_exception_in_exec_fails_with_the_traceback(mp: Mp) -> None:
    result = mp("exec", "raise ValueError('bad value')", check=False)
    assert result.returncode == 1
    assert "ValueError: bad value" in result.stdout + result.stderr


def test_fs_cp_ls_cat_rm_round_trip(mp: Mp, esp: VirtualEsp32, tmp_path: Path) -> None:
    src = tmp_path / "hello.py"
    body = "".join(f"LINE_{i} = {i}\n" for i in range(300)) + "print('hello', LINE_299)\n"
    src.write_text(body)
    mp("fs", "mkdir", ":lib")
    mp("fs", "cp", str(src), ":lib/hello.py")
    assert (esp.fs_dir / "lib" / "hello.py").read_text() == body     # the device's flash is the dir
    listing = mp("fs", "ls", ":lib").stdout
    assert f"{len(body)} hello.py" in " ".join(listing.split())
    assert mp("fs", "cat", ":lib/hello.py").stdout.replace("\n", "\n") == body
    assert mp("exec", "import sys; sys.path.append('/lib'); import hello").stdout == "hello 299\n"
    back = tmp_path / "back.py"
    mp("fs", "cp", ":lib/hello.py", str(back))
    assert back.read_text() == body
    mp("fs", "rm", ":lib/hello.py")
    assert not (esp.fs_dir / "lib" / "hello.py").exists()


def test_missing_file_is_enoent_for_mpremote_and_micropython(mp: Mp) -> None:
    for args in (("fs", "rm", ":nope.py"), ("fs", "cat", ":nope.py")):
        result = mp(*args, check=False)
        assert result.returncode == 1
        assert "nope.py: No such file or directory" in result.stderr   # mpremote decoded ENOENT
    out = mp("exec", "import errno\ntry:\n open('nope.py')\nexcept OSError as e:\n"
                     " print(e.errno == errno.ENOENT, e)").stdout
    assert out == "True [Errno 2] ENOENT\n"


def test_other_filesystem_errors_carry_micropython_errno(mp: Mp) -> None:
    code = ("import os\nos.mkdir('d')\nopen('d/f', 'w').close()\n"
            "for f, a in ((os.mkdir, 'd'), (os.rmdir, 'd'), (os.listdir, 'none')):\n"
            " try:\n  f(a)\n except OSError as e:\n  print(e.errno)\n")
    assert mp("exec", code).stdout.split() == ["17", "39", "2"]   # EEXIST, ENOTEMPTY, ENOENT


def test_soft_reset_clears_the_runtime_and_runs_boot_py(mp: Mp, esp: VirtualEsp32) -> None:
    (esp.fs_dir / "boot.py").write_text("print('boot.py ran')\nBOOTED = 1\n")
    mp("exec", "X = 1")
    assert mp("resume", "exec", "print(X, BOOTED)").stdout == "1 1\n"
    out = mp("soft-reset", "resume", "exec", "print('X' in globals(), BOOTED)").stdout
    assert out.endswith("False 1\n")


def test_run_executes_a_local_script(mp: Mp, tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text("import sys\nprint('running on', sys.implementation.name)\n")
    assert mp("run", str(script)).stdout == "running on micropython\n"


def test_hard_reset_restarts_with_reset_cause(mp: Mp, esp: VirtualEsp32) -> None:
    assert mp("exec", "import machine; print(machine.reset_cause())").stdout == "1\n"
    boots = esp.services.boots
    mp("reset")
    # Wait for the hard reset itself: mpremote's own soft reset also counts as a boot, so a boot
    # count alone can be reached before machine.reset() has run (seen under load).
    deadline = time.monotonic() + 10
    while esp.services.reset_cause != 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert esp.services.boots > boots
    assert esp.services.reset_cause == 5  # machine.SOFT_RESET, what machine.reset() gives on an ESP32
    assert mp("exec", "import machine; print(machine.reset_cause() == machine.SOFT_RESET)").stdout == "True\n"


def test_ctrl_c_stops_a_polling_main_py(mp: Mp, esp: VirtualEsp32) -> None:
    (esp.fs_dir / "main.py").write_text("import time\nwhile True:\n    time.sleep_ms(50)\n")
    mp("reset")   # the device boots into main.py, which never returns by itself
    time.sleep(0.5)
    assert mp("exec", "print('interrupted and answering')").stdout == "interrupted and answering\n"


def test_raw_paste_and_plain_raw_repl_with_long_code(esp: VirtualEsp32) -> None:
    from mpremote.transport_serial import SerialTransport

    # 12 KB of code: several raw-paste flow-control windows, and 47 plain raw-REPL writes.
    code = "".join(f"v{i} = {i}\n" for i in range(1200))
    code += "print(sum(globals()[f'v{i}'] for i in range(1200)))\n"
    for raw_paste in (True, False):
        transport = SerialTransport(esp.port, baudrate=115200)
        try:
            transport.use_raw_paste = raw_paste
            transport.enter_raw_repl(soft_reset=False)
            assert transport.exec(code) == b"719400\r\n"
            assert transport.exec("print('next')") == b"next\r\n"
            transport.exit_raw_repl()
        finally:
            transport.close()
    assert "R\x01" in esp.transcript()          # the first connection used raw-paste mode


def test_ctrl_c_during_resets_leaves_a_working_device(mp: Mp, esp: VirtualEsp32) -> None:
    import serial

    # Ctrl-C while the runtime restarts must not abort the installation of the stand-ins.
    port = serial.Serial(esp.port, timeout=0.05)
    try:
        for _ in range(10):
            port.write(b"import machine; machine.reset()\r")
            for _ in range(20):
                port.write(b"\x03")
                time.sleep(0.005)
            port.read(100_000)
            assert esp.alive, esp.error
    finally:
        port.close()
    assert esp.services.boots >= 5
    assert mp("exec", "print('alive')").stdout == "alive\n"
