/**
 * A measured node process: spawned as `node` itself (process.execPath, never through npm or
 * npx, so that its pid is the process whose memory and CPU are read), its output kept in a
 * log file, and stopped with SIGTERM like an operator would.
 *
 * Baseline children report progress on stdout as `@bench {"event": ...}` lines; the time an
 * event arrives is taken here, on the same clock as every other measurement.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createWriteStream, type WriteStream } from "node:fs"
import { createInterface } from "node:readline"
import { root } from "./Infra.js"
import { peakRssOf } from "./Proc.js"
import { PREFIX } from "./Protocol.js"

export interface ChildEvent {
  readonly event: string
  /** performance.now() in this process when the line arrived. */
  readonly at: number
  readonly data: Readonly<Record<string, unknown>>
}

export interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** Settings the service or a shell may have exported; a child gets only what it is given. */
const inherited = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(KAFKA|MONGODB|PIPELINE|LOGGING|METRICS|TEST_DATA)__/.test(k)) env[k] = v
  }
  return env
}

export class Child {
  /** Children still running, for a clean stop when the benchmark is interrupted. */
  static readonly live = new Set<Child>()
  readonly pid: number
  readonly exited: Promise<Exited>
  private readonly events: ChildEvent[] = []
  private readonly waiters: Array<() => void> = []
  private readonly log: WriteStream
  private done: Exited | undefined

  constructor(
    readonly name: string,
    args: ReadonlyArray<string>,
    env: Readonly<Record<string, string>>,
    logFile: string,
  ) {
    this.log = createWriteStream(logFile, { flags: "a" })
    const child: ChildProcess = spawn(process.execPath, [...args], {
      cwd: root,
      env: { ...inherited(), ...env },
      stdio: ["ignore", "pipe", "pipe"],
    })
    if (child.pid === undefined) throw new Error(`${name}: could not start ${process.execPath}`)
    this.pid = child.pid
    Child.live.add(this)
    child.stderr?.pipe(this.log, { end: false })
    if (child.stdout !== null) {
      createInterface({ input: child.stdout, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) => {
        this.log.write(`${line}\n`)
        if (line.startsWith(PREFIX)) this.receive(line.slice(PREFIX.length))
      })
    }
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.done = { code, signal }
        Child.live.delete(this)
        for (const wake of this.waiters.splice(0)) wake()
        resolve(this.done)
      })
    })
  }

  private receive(text: string): void {
    const at = performance.now()
    try {
      const data: unknown = JSON.parse(text)
      if (typeof data === "object" && data !== null && "event" in data && typeof data.event === "string") {
        this.events.push({ event: data.event, at, data: data as Record<string, unknown> })
        for (const wake of this.waiters.splice(0)) wake()
      }
    } catch {
      // not ours
    }
  }

  /** The first event of that name; fails if the child exits or the time runs out first. */
  async event(name: string, timeoutMs: number): Promise<ChildEvent> {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const found = this.events.find((e) => e.event === name)
      if (found !== undefined) return found
      if (this.done !== undefined) {
        throw new Error(`${this.name} exited (${this.done.code ?? this.done.signal}) before "${name}"`)
      }
      const left = deadline - performance.now()
      if (left <= 0) throw new Error(`${this.name}: no "${name}" within ${Math.round(timeoutMs / 1000)} s`)
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, Math.min(left, 1000))
        this.waiters.push(() => {
          clearTimeout(timer)
          wake()
        })
      })
    }
  }

  get running(): boolean {
    return this.done === undefined
  }

  /** Peak resident memory so far: the kernel's high-water mark (VmHWM), 0 once the process is gone. */
  peakRssBytes(): number {
    return peakRssOf(this.pid) ?? 0
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it ended and how long it took. */
  async stop(graceMs = 45_000): Promise<Exited & { readonly seconds: number; readonly killed: boolean }> {
    const started = performance.now()
    let killed = false
    if (this.done === undefined) {
      process.kill(this.pid, "SIGTERM")
      const timer = setTimeout(() => {
        killed = true
        if (this.done === undefined) process.kill(this.pid, "SIGKILL")
      }, graceMs)
      await this.exited
      clearTimeout(timer)
    }
    const exit = await this.exited
    await new Promise<void>((done) => this.log.end(done))
    return { ...exit, seconds: (performance.now() - started) / 1000, killed }
  }
}
