// Runs device code inside MicroPython's WebAssembly port and bridges it to a Python parent.
//
// Usage: node runner.mjs REQ_FD RESP_FD
//   REQ_FD  (write): frames from the VM to the parent, one JSON object per line.
//   RESP_FD (read):  the parent's answers, one JSON line per "call" frame; the very first line is
//                    the run configuration.
// Node's own stdout/stderr carry nothing the parent parses: only Node crash reports end up there.
// Printed output of the device code travels as {"t":"out"} frames on REQ_FD so it keeps its order
// relative to the bridge calls and is never mixed with them.
//
// Frames VM -> parent:
//   {"t":"call","s":service,"o":op,"a":[args],"b":base64?}   answered by {"r":result,"b":base64?}
//                                                             or {"e":[ExcType, [args]]}; either
//                                                             may carry "p":label (heap probe asked)
//   {"t":"out","d":text}                                      printed output
//   {"t":"heap","l":label,"a":alloc,"f":free,"h":heap_total,"c":collected}
//   {"t":"exit","s":status,"tb":traceback|null,"fatal":text?}
//
// The device side reaches this file through the `_vmjs` JS module (see mpy_modules/_hostemu.py).
// Every function here returns only JS primitives and never throws into the VM: a JS exception
// would unwind straight through the MicroPython interpreter instead of raising a Python exception.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createHostFS } from "./hostfs.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DEFAULT_MP = path.join(HERE, "..", "..", "node", "node_modules", "@micropython",
  "micropython-webassembly-pyscript", "micropython.mjs");

const reqFd = Number(process.argv[2]);
const respFd = Number(process.argv[3]);
if (!Number.isInteger(reqFd) || !Number.isInteger(respFd)) {
  process.stderr.write("usage: node runner.mjs REQ_FD RESP_FD\n");
  process.exit(2);
}

// ---- framing over the two pipes -------------------------------------------------------------

const readChunk = Buffer.alloc(1 << 16);
let pending = Buffer.alloc(0);

function readLine() {
  for (;;) {
    const nl = pending.indexOf(10);
    if (nl >= 0) {
      const line = pending.subarray(0, nl).toString("utf8");
      pending = pending.subarray(nl + 1);
      return line;
    }
    let n;
    try {
      n = fs.readSync(respFd, readChunk, 0, readChunk.length, null);
    } catch (e) {
      if (e.code === "EAGAIN") continue;
      throw e;
    }
    if (n === 0) {
      // The parent went away: nothing can answer the VM any more.
      process.exit(3);
    }
    pending = Buffer.concat([pending, readChunk.subarray(0, n)]);
  }
}

function writeAll(text) {
  const buf = Buffer.from(text, "utf8");
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(reqFd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code === "EAGAIN") continue;
      if (e.code === "EPIPE") process.exit(3);
      throw e;
    }
  }
}

// Printed output is collected byte by byte (the port hands us one byte per call) and sent as a
// frame at each newline, before any other frame, or when the buffer fills.
const outBytes = [];
const outDecoder = new TextDecoder("utf-8");

function flushOut() {
  if (outBytes.length === 0) return;
  const text = outDecoder.decode(new Uint8Array(outBytes.splice(0)), { stream: true });
  if (text) writeAll(JSON.stringify({ t: "out", d: text }) + "\n");
}

function sendFrame(obj) {
  flushOut();
  writeAll(JSON.stringify(obj) + "\n");
}

function onOutputByte(chunk) {
  for (const c of chunk) {
    outBytes.push(c);
    if (c === 10 || outBytes.length >= 4096) flushOut();
  }
}

// ---- configuration --------------------------------------------------------------------------

const config = JSON.parse(readLine());

// The port exports no view of its memory, yet the bridge wants to copy socket data straight into
// and out of device buffers (no temporary bytes objects on the VM heap). Keep the instance's
// memory when it is created.
let wasmMemory = null;
const instantiate = WebAssembly.instantiate;
WebAssembly.instantiate = async (...args) => {
  const result = await instantiate(...args);
  const instance = result.instance ?? result;
  if (instance.exports?.memory) wasmMemory = instance.exports.memory;
  return result;
};

const { loadMicroPython } = await import(pathToFileURL(config.micropython ?? DEFAULT_MP).href);
const mp = await loadMicroPython({
  heapsize: config.heapsize,
  pystack: config.pystack,
  linebuffer: false,
  stdout: onOutputByte,
  stderr: onOutputByte,
});
WebAssembly.instantiate = instantiate;
if (!wasmMemory) {
  sendFrame({ t: "exit", s: -1, tb: null, fatal: "could not find the WebAssembly memory" });
  process.exit(1);
}

function heapView(addr, n) {
  return new Uint8Array(wasmMemory.buffer, addr, n);
}

// ---- file systems ---------------------------------------------------------------------------

const FS = mp.FS;
FS.mkdir("/board");
FS.mount(createHostFS(FS), { root: config.board_fs }, "/board");
// The bridge modules are copied into MEMFS: they are imported once at start and then unmounted,
// so device code never sees them in its file system.
FS.mkdir("/hostemu_modules");
for (const dir of config.module_dirs) {
  for (const name of fs.readdirSync(dir)) {
    if (name.endsWith(".py") || name.endsWith(".mpy")) {
      FS.writeFile("/hostemu_modules/" + name, fs.readFileSync(path.join(dir, name)));
    }
  }
}

// ---- the _vmjs module -----------------------------------------------------------------------

// status() bits, read by _hostemu after every call.
const ST_ERROR = 1;
const ST_PROBE = 2;
let status = 0;
let errType = "";
let errArgs = "[]";
let probeLabel = "";
let moreSteps = false;

function takeArgs(list) {
  const args = Array.from(list);
  while (args.length && (args[args.length - 1] === null || args[args.length - 1] === undefined)) {
    args.pop();
  }
  return args.map((a) => (a === undefined ? null : a));
}

function exchange(frame) {
  sendFrame(frame);
  const reply = JSON.parse(readLine());
  if (reply.p !== undefined) {
    probeLabel = String(reply.p);
    status |= ST_PROBE;
  }
  if (reply.e !== undefined) {
    errType = String(reply.e[0]);
    errArgs = JSON.stringify(reply.e[1] ?? []);
    status |= ST_ERROR;
  }
  return reply;
}

function safe(fn) {
  return (...args) => {
    try {
      return fn(...args);
    } catch (e) {
      // A broken bridge is fatal for the run, but must surface as a clear message.
      errType = "RuntimeError";
      errArgs = JSON.stringify(["hostemu bridge: " + (e && e.message ? e.message : String(e))]);
      status |= ST_ERROR;
      return null;
    }
  };
}

const vmjs = {
  // call(service, op, a, b, c, d) -> result
  call: safe((svc, op, a, b, c, d) => {
    const reply = exchange({ t: "call", s: svc, o: op, a: takeArgs([a, b, c, d]) });
    return reply.e !== undefined ? null : (reply.r ?? null);
  }),
  // call_out(service, op, addr, n, a, b): also sends the n bytes of VM memory at addr.
  call_out: safe((svc, op, addr, n, a, b) => {
    const data = Buffer.from(heapView(addr, n)).toString("base64");
    const reply = exchange({ t: "call", s: svc, o: op, a: takeArgs([a, b]), b: data });
    return reply.e !== undefined ? null : (reply.r ?? null);
  }),
  // call_in(service, op, addr, n, a, b): the reply's bytes (at most n) land in VM memory at addr.
  call_in: safe((svc, op, addr, n, a, b) => {
    const reply = exchange({ t: "call", s: svc, o: op, a: takeArgs([a, b]), n });
    if (reply.e !== undefined) return null;
    if (reply.b) {
      const data = Buffer.from(reply.b, "base64");
      if (data.length > n) throw new Error(`host sent ${data.length} bytes for a ${n}-byte buffer`);
      heapView(addr, data.length).set(data);
    }
    return reply.r ?? null;
  }),
  status: () => status,
  err_type: () => {
    status &= ~ST_ERROR;
    return errType;
  },
  err_args: () => errArgs,
  probe_label: () => {
    status &= ~ST_PROBE;
    return probeLabel;
  },
  heap: safe((label, alloc, free, collected) => {
    sendFrame({ t: "heap", l: label, a: alloc, f: free, c: !!collected });
    return 0;
  }),
  config: (key) => JSON.stringify(config[key] ?? null),
  // more(flag): whether the driver wants another step() call (see _hostemu.setup/step).
  more: (flag) => {
    moreSteps = !!flag;
    return 0;
  },
  exit: safe((code, traceback) => {
    sendFrame({ t: "exit", s: code, tb: traceback ?? null });
    return 0;
  }),
};
mp.registerJsModule("_vmjs", vmjs);

// ---- run ------------------------------------------------------------------------------------

// The board's folder becomes "/" for device code (as its flash is on the board), the bridge
// modules are reachable at "/.hostemu" only until _hostemu.main() has imported them.
const BOOTSTRAP = `
import gc, _vmjs
gc.collect()
_vmjs.heap("interpreter", gc.mem_alloc(), gc.mem_free(), 1)
import sys, vfs
vfs.umount("/")
vfs.mount(vfs.VfsPosix("/board"), "/")
vfs.mount(vfs.VfsPosix("/hostemu_modules"), "/.hostemu")
sys.path.clear()
sys.path.append("/.hostemu")
del gc, _vmjs, sys, vfs
import _hostemu
_hostemu.setup()
`;
// One runPython call per step: this port's gc.collect() frees nothing allocated during the call
// it runs in, so live heap is only measurable at the start of the next call.
const STEP = "__import__('_hostemu').step()";

try {
  mp.runPython(BOOTSTRAP);
  flushOut();
  while (moreSteps) {
    mp.runPython(STEP);
    flushOut();
  }
} catch (e) {
  // Only a failure of the driver itself gets here: device code errors are reported by main().
  const message = e && e.name === "PythonError" ? e.message : (e && e.stack) || String(e);
  sendFrame({ t: "exit", s: -1, tb: null, fatal: "runner: " + message });
  process.exitCode = 1;
}
