// `npm test`: the guide's stories in Debian's Chromium (playwright-core), TAP output.
// Every test file starts its own Accord + Meeting Insights pair on ports the kernel chooses
// (support.mjs); the files run one at a time, so that each story has the machine's cores.
//
//   npm test                                  every test/*.test.mjs
//   npm test -- test/option2.test.mjs         only those files
//   npm test -- --test-reporter=spec          human-friendly output
//
// Environment: ACCORD_BIN, DEMO_VENDOR_BIN (default target/debug/{accord,demo-vendor}),
// ACCORD_E2E_CHROMIUM (default /usr/bin/chromium), ACCORD_INTEROP_LOG_DIR (server logs are
// copied there), ACCORD_E2E_KEEP=1 (keep the servers' data dirs).
// Screenshots: e2e/screenshots/<story>-<nn>-<step>.png.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const userArgs = process.argv.slice(2);
const flags = userArgs.filter((a) => a.startsWith("-"));
let files = userArgs.filter((a) => !a.startsWith("-"));
if (!files.length) {
  files = fs
    .readdirSync(path.join(HERE, "test"))
    .filter((f) => f.endsWith(".test.mjs"))
    .sort()
    .map((f) => path.join("test", f));
}
// Fresh screenshots each run.
fs.rmSync(path.join(HERE, "screenshots"), { recursive: true, force: true });
const reporter = flags.some((f) => f.startsWith("--test-reporter")) ? [] : ["--test-reporter=tap"];
const args = ["--test", "--test-concurrency=1", "--test-timeout=240000", ...reporter, ...flags, ...files];
const child = spawn(process.execPath, args, { cwd: HERE, stdio: "inherit" });
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (c, sig) => process.exit(c ?? 128 + (os.constants.signals[sig] ?? 0)));
