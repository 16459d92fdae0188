// Runs Python code in MicroPython's WebAssembly port (the real VM, v1.27).
// stdin: JSON {"files": {"/lib/iothub/x.py": "..."}, "code": "..." or ["step", ...]};
// stdout: the program's output. Each step is its own runPython call: objects allocated during a
// call can only be collected after it returns (the GC cannot scan the WebAssembly stack), so
// heap figures (gc.mem_alloc) are only meaningful when sampled in a later step.
// Exit status 1 if the code raised. Used by test_lib_vm_*.py; the host emulation layer has its own.
import fs from "fs";
import path from "path";
import { fileURLToPath } from "url";

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.join(here, "..", "..", "tools", "node", "node_modules",
  "@micropython", "micropython-webassembly-pyscript", "micropython.mjs");
const { loadMicroPython } = await import(pkg);
const job = JSON.parse(fs.readFileSync(0, "utf8"));
const out = [];
const mp = await loadMicroPython({
  heapsize: 4 * 1024 * 1024,
  stdout: (s) => process.stdout.write(s + "\n"),
  stderr: (s) => process.stderr.write(s + "\n"),
});
for (const [p, text] of Object.entries(job.files)) {
  mp.FS.mkdirTree(path.posix.dirname(p));
  // .mpy files travel as base64 (they are binary).
  mp.FS.writeFile(p, p.endsWith(".mpy") ? new Uint8Array(Buffer.from(text, "base64")) : text);
}
try {
  for (const step of Array.isArray(job.code) ? job.code : [job.code]) mp.runPython(step);
} catch (e) {
  process.stderr.write(String(e.message || e) + "\n");
  process.exit(1);
}
