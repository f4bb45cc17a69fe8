// The virtual ESP32's runtime: the MicroPython WebAssembly port, driven synchronously.
//
//   node runner.mjs --in-fd 5 --out-fd 8 --lib <dir of stand-in modules> [--heap 112640] [--parent-pid N]
//
// The host process (twin/esp32_twin/device.py) owns the pseudo-terminal and the STM32 twin. It
// talks to this process over two pipes with frames of
//   u32 LE header length | u32 LE binary length | header (JSON, UTF-8) | binary
// Every frame this process sends is either serial output ({"op": "out"}, no answer) or a request
// that the host answers with exactly one frame ({"r": value} or {"e": "ENOENT", "m": "..."}, plus
// "i": 1 when Ctrl-C arrived on the serial port meanwhile). All calls block: the port has no
// Asyncify, so MicroPython code runs to completion inside replProcessChar/runPython, and the
// stand-in modules (machine, network, socket, the flash filesystem) reach the host through
// `_vesp32.call`, which waits here for the answer.
//
// Device behaviour that this file adds on top of the port's REPL (found by a trial with mpremote):
// - raw-paste mode (Ctrl-E 'A' Ctrl-A in raw REPL) is implemented here: the port's own handler
//   reads stdin synchronously, which a WebAssembly build cannot do;
// - soft reset (Ctrl-D on an empty line, or the port returning PYEXEC_FORCED_EXIT) and hard reset
//   (machine.reset()) are performed by discarding the runtime and starting a new one;
// - the process exits when its parent dies: EOF on the input pipe, or a changed parent pid seen by
//   a watchdog thread (which also covers Python code spinning without calling the host).

import fs from "node:fs";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript/micropython.mjs";

const CTRL_A = 0x01;
const CTRL_B = 0x02;
const CTRL_C = 0x03;
const CTRL_D = 0x04;
const CTRL_E = 0x05;
const RAW_BANNER = "raw REPL; CTRL-B to exit\r\n";
const PASTE_WINDOW = 2048; // raw-paste flow-control window (the protocol allows any u16)
const OUT_FLUSH_BYTES = 4096;

function parseArgs(argv) {
  const opts = { heap: 112640, inFd: -1, outFd: -1, lib: "", parentPid: process.ppid };
  for (let i = 2; i < argv.length; i += 2) {
    const [key, value] = [argv[i], argv[i + 1]];
    if (key === "--in-fd") opts.inFd = Number(value);
    else if (key === "--out-fd") opts.outFd = Number(value);
    else if (key === "--heap") opts.heap = Number(value);
    else if (key === "--lib") opts.lib = value;
    else if (key === "--parent-pid") opts.parentPid = Number(value);
    else throw new Error(`unknown option ${key}`);
  }
  if (opts.inFd < 0 || opts.outFd < 0 || !opts.lib) {
    throw new Error("usage: runner.mjs --in-fd N --out-fd N --lib DIR [--heap BYTES] [--parent-pid PID]");
  }
  return opts;
}

const opts = parseArgs(process.argv);
if (process.env.VESP32_DEBUG) process.stderr.write(`runner start ${JSON.stringify(opts)}\n`);

// The parent may die while MicroPython code spins without calling the host: a worker thread
// notices the new parent pid and ends this process. The host passes its pid: a parent that died
// before this line ran would otherwise be mistaken for init.
const parentPid = opts.parentPid;
new Worker(
  `const { workerData } = require("node:worker_threads");
   setInterval(() => {
     if (process.env.VESP32_DEBUG) require("fs").writeSync(2, "watchdog: ppid " + process.ppid + "\\n");
     if (process.ppid !== workerData) process.kill(process.pid, "SIGKILL");
   }, 500);`,
  { eval: true, workerData: parentPid },
).unref();

// ---------------------------------------------------------------------------------------------
// Channel to the host

function readExact(n) {
  const buf = Buffer.alloc(n);
  let got = 0;
  while (got < n) {
    let k;
    try {
      k = fs.readSync(opts.inFd, buf, got, n - got, null);
    } catch (e) {
      if (e.code === "EAGAIN") {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
        continue;
      }
      throw e;
    }
    if (k === 0) process.exit(0); // the host closed the pipe: it is gone
    got += k;
  }
  return buf;
}

function writeAll(buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(opts.outFd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code === "EAGAIN") {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
        continue;
      }
      if (e.code === "EPIPE") process.exit(0);
      throw e;
    }
  }
}

function sendFrame(header, bin) {
  const h = Buffer.from(JSON.stringify(header), "utf8");
  const b = bin ?? Buffer.alloc(0);
  const pre = Buffer.alloc(8);
  pre.writeUInt32LE(h.length, 0);
  pre.writeUInt32LE(b.length, 4);
  writeAll(Buffer.concat([pre, h, b]));
}

function recvFrame() {
  const pre = readExact(8);
  const h = readExact(pre.readUInt32LE(0));
  const blen = pre.readUInt32LE(4);
  return { header: JSON.parse(h.toString("utf8")), bin: blen ? readExact(blen) : Buffer.alloc(0) };
}

// Serial output is gathered and sent before every request (and when it grows large), so that a
// request never overtakes output printed before it.
let outBuf = [];
let outLen = 0;
let outMuted = false;

// After raw-paste data the port still prints plain raw mode's "OK": dropOK skips those 2 bytes.
let dropOK = 0;

let lastOut = 0;

function outByte(c) {
  if (outMuted) return;
  if (dropOK > 0) {
    dropOK -= 1;
    return;
  }
  // The ESP32 port's console turns "\n" into "\r\n" (mp_hal_stdout_tx_strn_cooked).
  if (c === 0x0a && lastOut !== 0x0d) pushOut(0x0d);
  lastOut = c;
  pushOut(c);
}

function pushOut(c) {
  outBuf.push(c);
  outLen += 1;
  if (outLen >= OUT_FLUSH_BYTES) flushOut();
}

function outStr(s) {
  for (const c of Buffer.from(s, "latin1")) outByte(c);
}

function flushOut() {
  if (!outLen) return;
  sendFrame({ op: "out" }, Buffer.from(outBuf));
  outBuf = [];
  outLen = 0;
}

function request(header, bin) {
  flushOut();
  sendFrame(header, bin);
  return recvFrame();
}

// ---------------------------------------------------------------------------------------------
// The runtime

let wasmMemory = null;
const originalInstantiate = WebAssembly.instantiate;
WebAssembly.instantiate = async function (...args) {
  const result = await originalInstantiate.apply(this, args);
  wasmMemory = (result.instance ?? result).exports.memory;
  return result;
};

let mp = null;
let pendingReboot = null; // "hard" after machine.reset()
// Output produced while one character is processed, to recognise the port's mode changes.
let watch = null;

function heap(addr, len) {
  return new Uint8Array(wasmMemory.buffer, addr, len);
}

// `_vesp32.call(op, a, b, c, d, tx_addr, tx_len, rx_addr, rx_cap)`: one request to the host with up
// to four plain arguments (converted without allocation on the MicroPython heap). Binary data
// crosses by address (uctypes.addressof on the MicroPython side), so an SPI transfer or a socket
// read allocates nothing there. Returns the host's value; an error comes back as the string
// "\0E<name>\0<message>" for the stand-in to raise as OSError.
function hostCall(op, a, b, c, d, txAddr, txLen, rxAddr, rxCap) {
  if (pendingReboot) {
    mp._module._mp_sched_keyboard_interrupt();
    return "\0EEIO\0device is resetting";
  }
  const header = { op, a: [a ?? null, b ?? null, c ?? null, d ?? null] };
  const tx = txLen ? Buffer.from(heap(txAddr, txLen)) : null;
  const { header: reply, bin } = request(header, tx);
  if (reply.i) mp._module._mp_sched_keyboard_interrupt();
  if (reply.reboot) {
    pendingReboot = reply.reboot;
    outMuted = true;
    mp._module._mp_sched_keyboard_interrupt();
  }
  if (bin.length && rxCap) heap(rxAddr, Math.min(bin.length, rxCap)).set(bin.subarray(0, rxCap));
  if (reply.e) return `\0E${reply.e}\0${reply.m ?? ""}`;
  return reply.r ?? null;
}

async function startRuntime() {
  mp = await loadMicroPython({
    heapsize: opts.heap,
    linebuffer: false,
    stdout: (data) => {
      for (const c of data) {
        if (watch) watch.push(c);
        outByte(c);
      }
    },
    stderr: (data) => process.stderr.write(data),
  });
  mp.registerJsModule("_vesp32", { call: hostCall });
  // The stand-in modules live in the port's in-memory filesystem only until they are imported;
  // the bootstrap then replaces that filesystem by the flash filesystem at "/".
  mp.FS.mkdir("/vesp32");
  for (const name of fs.readdirSync(opts.lib)) {
    if (name.endsWith(".py")) {
      mp.FS.writeFile(`/vesp32/${name}`, fs.readFileSync(path.join(opts.lib, name)));
    }
  }
  mp.runPython("import sys\nsys.path.insert(0, '/vesp32')\nimport vesp32_boot\nvesp32_boot.install()\ndel sys, vesp32_boot");
  mp.runPython("__import__('vgc').set_base()");
}

function runFile(name) {
  try {
    mp.runPython(`__import__("vesp32_boot").run_file(${JSON.stringify(name)}, globals())`);
  } catch (e) {
    // Only an exception raised outside run_file's own handler (a Ctrl-C between two of its
    // statements) gets here; the board would print it and go on to the REPL as well.
    if (e.name !== "PythonError") throw e;
    outStr(`${e.message}`.replace(/\n/g, "\r\n"));
  }
}

// ---------------------------------------------------------------------------------------------
// REPL: the port's event-driven REPL plus raw-paste and resets

let rawMode = false;
let rawLine = []; // the last bytes of the raw REPL's line (enough to recognise Ctrl-E 'A')
let paste = null; // {code: [], sinceAck: n} while receiving raw-paste data

// kind: "power" (start), "soft" (Ctrl-D) or "hard" (machine.reset()). Like the ESP32 port: boot.py
// always runs, main.py only when the REPL is not in raw mode; a hard reset leaves raw mode.
async function boot(kind) {
  outMuted = false;
  pendingReboot = null;
  paste = null;
  dropOK = 0;
  if (kind !== "soft") rawMode = false;
  request({ op: "boot", a: [kind] }); // the host closes sockets, and drops Wi-Fi unless soft
  if (kind === "soft") outStr("MPY: soft reboot\r\n");
  if (kind === "hard") outStr("\r\nrst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n");
  await startRuntime();
  // The host's start() returns once MicroPython runs; from here on Ctrl-C interrupts (boot.py,
  // main.py), before it would have aborted the installation of the stand-ins.
  request({ op: "up" });
  runFile("boot.py");
  if (!rawMode && !pendingReboot) runFile("main.py");
  if (pendingReboot) return boot(pendingReboot);
  if (rawMode) {
    outMuted = true;
    mp.replInit();
    mp.replProcessChar(CTRL_A);
    outMuted = false;
    outStr(RAW_BANNER + ">");
  } else {
    rawMode = false;
    mp.replInit();
  }
  rawLine = [];
}

function processChar(c) {
  watch = c === CTRL_A && !rawMode ? [] : null;
  const ret = mp.replProcessChar(c);
  if (watch !== null) {
    if (Buffer.from(watch).toString("latin1").includes(RAW_BANNER)) {
      rawMode = true;
      rawLine = [];
    }
    watch = null;
  }
  if (rawMode) {
    if (c === CTRL_B) rawMode = false;
    else if (c <= CTRL_D) rawLine = [];
    else if (rawLine.length < 3) rawLine.push(c);
  }
  return ret;
}

async function feed(c) {
  if (paste) {
    if (c === CTRL_D) {
      outByte(CTRL_D); // acknowledges the end of the data
      const code = paste.code;
      paste = null;
      // Execute through the port's raw REPL, which prints the output between the two Ctrl-D
      // markers like a device; its "OK" belongs to plain raw mode only and is dropped.
      for (const b of code) processChar(b);
      dropOK = 2;
      return processChar(CTRL_D);
    }
    if (c === CTRL_C) {
      paste = null;
      outByte(CTRL_D);
      processChar(CTRL_C);
      outStr(">");
      return 0;
    }
    paste.code.push(c);
    paste.sinceAck += 1;
    if (paste.sinceAck >= PASTE_WINDOW) {
      paste.sinceAck -= PASTE_WINDOW;
      outByte(0x01);
    }
    return 0;
  }
  if (rawMode && c === CTRL_A && rawLine.length === 2 && rawLine[0] === CTRL_E && rawLine[1] === 0x41) {
    mp.replProcessChar(CTRL_C); // clears the port's line buffer, prints nothing in raw mode
    rawLine = [];
    paste = { code: [], sinceAck: 0 };
    outStr("R\x01");
    outByte(PASTE_WINDOW & 0xff);
    outByte(PASTE_WINDOW >> 8);
    outByte(0x01); // a second window is free as well
    return 0;
  }
  return processChar(c);
}

async function main() {
  await boot("power");
  for (;;) {
    const { header: got, bin } = request({ op: "serial_read" });
    if (got.reboot) pendingReboot = got.reboot; // machine.WDT ran out while the REPL waited
    for (const c of bin) {
      if (pendingReboot) break;
      const ret = await feed(c);
      if (pendingReboot) break;
      if (ret !== 0) {
        await boot("soft");
      }
    }
    if (pendingReboot) await boot(pendingReboot);
  }
}

main().catch((e) => {
  process.stderr.write(`vesp32 runner: ${e.stack ?? e}\n`);
  process.exit(1);
});
