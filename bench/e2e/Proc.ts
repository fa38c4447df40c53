/**
 * What Linux says about processes and the machine: peak resident memory (VmHWM, the kernel's
 * own high-water mark), CPU time per process and for the whole machine, and the pids
 * of the local stack's broker and database server (found by the ports they listen on).
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs"
import { cpus, release, totalmem } from "node:os"

/** Clock ticks per second of /proc/<pid>/stat and /proc/stat; 100 on every Linux build that matters. */
const TICKS = 100

/** The kernel's high-water mark of a process's resident memory (VmHWM), in bytes. */
export const peakRssOf = (pid: number): number | undefined => {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8")
    const match = /^VmHWM:\s+(\d+) kB/m.exec(status)
    return match === null ? undefined : Number(match[1]) * 1024
  } catch {
    return undefined
  }
}

/** User + system CPU seconds a process has used so far (0 once it is gone). */
export const cpuSecondsOf = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command name may contain spaces and parentheses: fields start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) / TICKS
  } catch {
    return 0
  }
}

/** Busy and total CPU seconds of the whole machine, summed over cores. */
export const machineCpu = (): { readonly busy: number; readonly total: number } => {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!
  const v = line.trim().split(/\s+/).slice(1).map(Number)
  const total = v.reduce((a, b) => a + b, 0)
  const idle = (v[3] ?? 0) + (v[4] ?? 0)
  return { busy: (total - idle) / TICKS, total: total / TICKS }
}

/** The process listening on a TCP port (found by the socket's inode among every process's fds). */
export const pidListeningOn = (port: number): number | undefined => {
  const hex = port.toString(16).toUpperCase().padStart(4, "0")
  const inodes = new Set<string>()
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = ""
    try {
      text = readFileSync(table, "utf8")
    } catch {
      continue
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/)
      // local_address is ADDR:PORT; state 0A is LISTEN; the inode is the tenth field.
      if (f[1]?.endsWith(`:${hex}`) && f[3] === "0A" && f[9] !== undefined) inodes.add(`socket:[${f[9]}]`)
    }
  }
  if (inodes.size === 0) return undefined
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    let fds: string[] = []
    try {
      fds = readdirSync(`/proc/${entry}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      try {
        if (inodes.has(readlinkSync(`/proc/${entry}/fd/${fd}`))) return Number(entry)
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined
}

export interface Machine {
  readonly cores: number
  readonly cpuModel: string
  readonly memoryBytes: number
  readonly kernel: string
}

export const machine = (): Machine => ({
  cores: cpus().length,
  cpuModel: cpus()[0]?.model.trim() ?? "unknown",
  memoryBytes: totalmem(),
  kernel: release(),
})

export interface CpuSnapshot {
  readonly at: number
  readonly processes: Readonly<Record<string, number>>
  readonly machine: { readonly busy: number; readonly total: number }
}

/** CPU seconds so far of each named process, and of the machine. */
export const cpuSnapshot = (pids: Readonly<Record<string, number | undefined>>): CpuSnapshot => {
  const processes: Record<string, number> = {}
  for (const [name, pid] of Object.entries(pids)) if (pid !== undefined) processes[name] = cpuSecondsOf(pid)
  return { at: performance.now(), processes, machine: machineCpu() }
}

/**
 * Cores each process kept busy between two snapshots (1.0 = one core all the time), with the
 * machine's busy cores and the rest (processes not named: the OS, other users of the machine).
 */
export const coresUsed = (before: CpuSnapshot, after: CpuSnapshot): Record<string, number> => {
  const seconds = (after.at - before.at) / 1000
  const used: Record<string, number> = {}
  let named = 0
  for (const [name, cpu] of Object.entries(after.processes)) {
    const delta = cpu - (before.processes[name] ?? cpu)
    used[name] = delta / seconds
    named += delta
  }
  const busy = after.machine.busy - before.machine.busy
  used.machine = busy / seconds
  used.other = Math.max(0, busy - named) / seconds
  return used
}

/**
 * Microseconds of CPU time (user + system, from /proc/<pid>/stat) each named process spent
 * between two snapshots per record, and the whole machine's busy time per record.
 */
export const cpuPerRecord = (
  before: CpuSnapshot,
  after: CpuSnapshot,
  records: number,
): Record<string, number> => {
  const per: Record<string, number> = {}
  for (const [name, cpu] of Object.entries(after.processes)) {
    per[name] = ((cpu - (before.processes[name] ?? cpu)) * 1e6) / records
  }
  per.machine = ((after.machine.busy - before.machine.busy) * 1e6) / records
  return per
}
