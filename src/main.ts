/**
 * Entry point. V8 sizes its heap from the machine (on a large host the young generation alone
 * grows past 100 MB), so the service runs with limits of its own: unless the command line or
 * NODE_OPTIONS already sets them, this process replaces itself (`process.execve`: same pid,
 * same arguments and environment) by node with `--max-semi-space-size=8
 * --max-old-space-size=160`, then runs the service (Program.ts). PIPELINE__HEAP_LIMITS=off runs
 * it with V8's own sizing; so does a platform without execve.
 */
const heapFlags = ["--max-semi-space-size=8", "--max-old-space-size=160"]
const sets = (flag: string) =>
  process.execArgv.some((arg) => arg.startsWith(flag)) || (process.env.NODE_OPTIONS ?? "").includes(flag)
const limited = sets("--max-semi-space-size") || sets("--max-old-space-size")

if (!limited && process.env.PIPELINE__HEAP_LIMITS !== "off" && typeof process.execve === "function") {
  try {
    process.execve(
      process.execPath,
      [process.execPath, ...heapFlags, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)],
      process.env,
    )
  } catch {
    // No execve here (Windows): the service runs with V8's own sizing.
  }
}
// A stop asked for while the program loads (an orchestrator that changed its mind) is asked
// again once the program handles signals, so that it is a clean stop and not the default kill.
let early: NodeJS.Signals | undefined
const remember = (signal: NodeJS.Signals) => {
  early ??= signal
}
process.on("SIGINT", remember)
process.on("SIGTERM", remember)
await import("./Program.js")
process.off("SIGINT", remember)
process.off("SIGTERM", remember)
if (early !== undefined) process.kill(process.pid, early)
