"""Benchmark of the firmware's Ed25519 verification (stm32/lib/ed25519.c, sha512.c, Monocypher):
prints figures, asserts nothing.

    .venv/bin/python bench/bench_crypto.py
    .venv/bin/python bench/bench_crypto.py --json crypto.json   # also as JSON (fota_lab.benchjson)

A tiny bench firmware (bench/crypto/verify_bench.c, its own vector table) is built with the
firmware's compiler flags (copied from stm32/Makefile: lib/ and Monocypher at -Os, and once with
Monocypher at -O2 for comparison) and run on the STM32 twin. It verifies an Ed25519 signature of a
32-byte message (what the firmware verifies: an image's SHA-256) made with `cryptography`, once valid
and once with one bit of the message flipped, and reports:
1. the exact instruction count of each verification (a Unicorn hook from the first instruction of
   ed25519_verify to its return) and that time at 168 MHz: the twin runs one instruction per cycle
   with no flash wait states, so the times are the twin's; a real Cortex-M4 takes more cycles
   (multi-cycle loads and branches, the ART accelerator's misses): read them as a lower bound. (The
   firmware's own DWT readings only move in the twin's 10,000-instruction slices: not used.)
2. stack use of the verification, by painting 16 KB below the caller's frame;
3. code size added to a link: text of the bench firmware minus the same without the call (both
   linked with --gc-sections, so only what verification needs counts).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from elftools.elf.elffile import ELFFile
from fota_lab.benchjson import Figure, write
from stm32_fota.project import current
from stm32_twin import Stm32Twin
from unicorn import UC_HOOK_CODE, Uc
from unicorn.arm_const import UC_ARM_REG_LR

CPU_HZ = 168_000_000
ARCH = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
CFLAGS = [*ARCH, "-std=c11", "-g", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wstrict-prototypes",
          "-Wdouble-promotion", "-ffunction-sections", "-fdata-sections", "-ffreestanding", "-fno-common",
          "-fno-tree-loop-distribute-patterns", "-fno-unwind-tables", "-fno-asynchronous-unwind-tables"]
RESULT_ADDR = 0x2000_0000
DONE = 0x600DCAFE
RESULTS = ("magic", "ok_verdict", "bad_verdict", "ok_cycles", "bad_cycles", "stack_bytes")


@dataclass(frozen=True)
class Run:
    ok_cycles: int
    bad_cycles: int
    stack_bytes: int
    text_added: int
    host_s: float


def vectors_header(out: Path) -> None:
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"bench key").digest())
    msg = hashlib.sha256(b"a firmware image").digest()
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def arr(name: str, data: bytes) -> str:
        return f"static const uint8_t {name}[{len(data)}] = {{{', '.join(f'0x{b:02x}' for b in data)}}};\n"

    out.write_text("#include <stdint.h>\n" + arr("bench_pub", pub) + arr("bench_sig", key.sign(msg))
                   + arr("bench_msg", msg), encoding="utf-8")


def gcc(args: list[str]) -> None:
    proc = subprocess.run(["arm-none-eabi-gcc", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench_crypto: arm-none-eabi-gcc failed:\n{proc.stderr}")


def link(work: Path, mono_opt: str, baseline: bool) -> Path:
    root = current().root
    lib, here = root / "stm32" / "lib", root / "bench" / "crypto"
    mono = root / "build" / "third_party" / "monocypher"
    tag = f"{mono_opt[1:]}{'-base' if baseline else ''}"
    objs = []
    for src, opt in ((here / "verify_bench.c", "-Os"), (lib / "ed25519.c", "-Os"), (lib / "sha512.c", "-Os"),
                     (mono / "monocypher.c", mono_opt), (root / "stm32" / "port" / "libc_min.c", "-Os")):
        obj = work / f"{src.stem}-{tag}.o"
        gcc([*CFLAGS, opt, *(["-DBENCH_BASELINE"] if baseline else []), f"-I{lib}", f"-I{mono}", f"-I{work}",
             "-c", str(src), "-o", str(obj)])
        objs.append(str(obj))
    elf = work / f"verify_bench-{tag}.elf"
    # The firmware has the C library's mem* functions anyway (port/libc_min.c): in both links.
    gcc([*ARCH, "-nostdlib", "-nostartfiles", "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments",
         "-Wl,-u,memset", "-Wl,-u,memcpy", "-Wl,-u,memmove", "-Wl,-u,memcmp",
         f"-T{here / 'verify_bench.ld'}", "-o", str(elf), *objs, "-lgcc"])
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(elf.with_suffix(".bin"))],
                   check=True)
    return elf


def text_size(elf: Path) -> int:
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    sizes = dict(line.split()[:2] for line in out.splitlines() if line.startswith("."))
    return int(sizes[".text"]) + int(sizes[".isr_vector"])


def symbol(elf: Path, name: str) -> int:
    with elf.open("rb") as f:
        table = ELFFile(f).get_section_by_name(".symtab")
        found = table.get_symbol_by_name(name) if table is not None else None
        if not found:
            sys.exit(f"bench_crypto: no symbol {name} in {elf}")
        return int(found[0]["st_value"]) & ~1


def run_on_twin(elf: Path) -> tuple[dict[str, int], list[int], float]:
    """Run the bench firmware; its result words, and the exact instruction count of each call of
    ed25519_verify (from its first instruction to the return), counted by a Unicorn hook."""
    board = Stm32Twin()
    board.load_bin(elf.with_suffix(".bin"), 0x0800_0000)
    entry = symbol(elf, "ed25519_verify")
    count, spans, pending = [0], [], {}

    def hook(uc: Uc, address: int, size: int, user: object) -> None:
        count[0] += 1
        if address == entry:
            pending["start"], pending["ret"] = count[0], uc.reg_read(UC_ARM_REG_LR) & ~1
        elif address == pending.get("ret"):
            spans.append(count[0] - pending.pop("start") - 1)
            pending.pop("ret")

    board.uc.hook_add(UC_HOOK_CODE, hook)
    board.power_on()
    t0 = time.perf_counter()
    words: dict[str, int] = {}
    for _ in range(200):    # 100 ms of virtual time each, at the reset clock (HSI 16 MHz)
        board.run(ms=100)
        raw = board.read_memory(RESULT_ADDR, 4 * len(RESULTS))
        words = {k: int.from_bytes(raw[4 * i:4 * i + 4], "little") for i, k in enumerate(RESULTS)}
        if words["magic"] == DONE or board.fault:
            break
    host_s = time.perf_counter() - t0
    if board.fault or words.get("magic") != DONE:
        sys.exit(f"bench_crypto: the bench firmware did not finish on the twin (fault: {board.fault})")
    if words["ok_verdict"] != 0 or words["bad_verdict"] != 1 or len(spans) != 2:
        sys.exit(f"bench_crypto: wrong verdicts or calls on the twin: {words}, {len(spans)} calls")
    return words, spans, host_s


def measure(work: Path, mono_opt: str) -> Run:
    elf = link(work, mono_opt, baseline=False)
    base = link(work, mono_opt, baseline=True)
    words, spans, host_s = run_on_twin(elf)
    return Run(spans[0], spans[1], words["stack_bytes"], text_size(elf) - text_size(base), host_s)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, help="also write the figures to this file (fota_lab.benchjson)")
    args = ap.parse_args()
    fetch = subprocess.run([sys.executable, str(current().root / "scripts" / "fetch_monocypher.py")],
                           capture_output=True, text=True)
    if fetch.returncode != 0:
        sys.exit(fetch.stderr.strip())
    with tempfile.TemporaryDirectory(prefix="bench-crypto-") as tmp:
        work = Path(tmp)
        vectors_header(work / "bench_vectors.h")
        runs = {opt: measure(work, opt) for opt in ("-Os", "-O2")}
    figures = []
    group = "Ed25519 verify (twin, 168 MHz)"
    for opt, r in runs.items():
        tag = f"Monocypher {opt}"
        print(f"{tag}: valid {r.ok_cycles} cycles = {r.ok_cycles / CPU_HZ * 1e3:.2f} ms, refused "
              f"{r.bad_cycles} cycles = {r.bad_cycles / CPU_HZ * 1e3:.2f} ms; stack {r.stack_bytes} B; "
              f"code +{r.text_added} B")
        note = "twin: 1 instruction per cycle, no wait states (a lower bound for the chip)"
        figures += [
            Figure(group=group, name=f"valid signature, {tag}", value=round(r.ok_cycles / CPU_HZ * 1e3, 2),
                   unit="ms", notes=f"{r.ok_cycles} cycles; {note}", host_s=round(r.host_s, 2)),
            Figure(group=group, name=f"refused signature, {tag}", value=round(r.bad_cycles / CPU_HZ * 1e3, 2),
                   unit="ms", notes=f"{r.bad_cycles} cycles (one message bit flipped)"),
            Figure(group=group, name=f"stack, {tag}", value=r.stack_bytes, unit="B",
                   notes="deepest use below the caller, by painting"),
            Figure(group=group, name=f"code size added, {tag}", value=r.text_added, unit="B",
                   notes="ed25519.c + sha512.c + Monocypher after --gc-sections"),
        ]
    if args.json:
        write(args.json, "crypto", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
