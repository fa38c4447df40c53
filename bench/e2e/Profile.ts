/**
 * Reads a V8 CPU profile (node --cpu-prof) of the service and says where its CPU time went:
 * self time by stage (Kafka client, MongoDB driver, Effect runtime, tasks, pipeline runtime,
 * node core, GC), by module and by function. Builtins without a script of their own (JSON.parse,
 * ...) are counted where they were called from.
 */
import { readFileSync } from "node:fs"
import { relative, sep } from "node:path"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}

interface CpuProfile {
  readonly startTime: number
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

export interface Share {
  readonly name: string
  readonly ms: number
  /** Share of the busy (non-idle) time, 0..1. */
  readonly share: number
}

export interface ProfileSummary {
  readonly file: string
  /** Only samples within this window (monotonic microseconds) are counted: the drain, not the start-up. */
  readonly window: { readonly fromUs: number; readonly toUs: number } | null
  readonly sampledSeconds: number
  readonly busySeconds: number
  readonly stages: ReadonlyArray<Share>
  readonly modules: ReadonlyArray<Share>
  readonly functions: ReadonlyArray<Share>
}

const special = /^\((idle|program|garbage collector|root)\)$/

/** A module name for a script URL: src/<file>.ts for the service, the package for node_modules. */
const moduleOf = (url: string, serviceDir: string): string => {
  const path = url.startsWith("file://") ? decodeURIComponent(url.slice("file://".length)) : url
  if (path.startsWith("node:")) return path.split("/").slice(0, 2).join("/")
  const inPackages = path.lastIndexOf(`${sep}node_modules${sep}`)
  if (inPackages >= 0) {
    const parts = path.slice(inPackages + 14).split(sep)
    return parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!
  }
  if (path.startsWith(serviceDir)) return `src/${relative(serviceDir, path).replace(/\.js$/, ".ts")}`
  return path === "" ? "(native)" : path
}

const stageOf = (module: string, functionName: string): string => {
  if (module === "(native)") {
    if (functionName === "(idle)") return "idle"
    if (functionName === "(garbage collector)") return "GC"
    return "V8 and native code (unattributed)"
  }
  if (module === "kafkajs") return "kafkajs (Kafka client)"
  if (module === "mongodb" || module === "bson") return "mongodb driver + bson"
  if (module === "effect" || module.startsWith("@effect/")) return "Effect runtime"
  if (module.startsWith("src/Tasks/") || module.startsWith("src/Domain/"))
    return "tasks (src/Tasks, src/Domain)"
  if (module.startsWith("src/")) return "pipeline runtime (other src/)"
  if (module.startsWith("node:")) return "node core (net, streams, timers, ...)"
  return "other"
}

const top = (totals: Map<string, number>, busy: number, limit: number): Share[] =>
  [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, us]) => ({ name, ms: us / 1000, share: busy === 0 ? 0 : us / busy }))

export const summarizeProfile = (
  file: string,
  serviceDir: string,
  window: ProfileSummary["window"] = null,
): ProfileSummary => {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

  const self = new Map<number, number>()
  let at = profile.startTime
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i] ?? 0
    if (window !== null && (at < window.fromUs || at > window.toUs)) return
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0))
  })

  const stages = new Map<string, number>()
  const modules = new Map<string, number>()
  const functions = new Map<string, number>()
  let sampled = 0
  let idle = 0
  const add = (m: Map<string, number>, k: string, us: number) => m.set(k, (m.get(k) ?? 0) + us)
  for (const [id, us] of self) {
    const node = byId.get(id)!
    const { functionName, url, lineNumber } = node.callFrame
    sampled += us
    if (functionName === "(idle)") {
      idle += us
      continue
    }
    let module = moduleOf(url, serviceDir)
    let label = `${functionName || "(anonymous)"} ${module}:${lineNumber + 1}`
    if (module === "(native)" && !special.test(functionName)) {
      // A builtin: charge it to the nearest caller that has a script.
      let up = parent.get(id)
      while (up !== undefined && byId.get(up)!.callFrame.url === "") up = parent.get(up)
      const caller = up === undefined ? undefined : byId.get(up)!.callFrame
      if (caller !== undefined) {
        module = moduleOf(caller.url, serviceDir)
        label = `${functionName || "(builtin)"} (builtin, from ${caller.functionName || "(anonymous)"} ${module}:${caller.lineNumber + 1})`
      }
    } else if (module === "(native)") {
      label = functionName
    }
    add(stages, stageOf(module, functionName), us)
    add(modules, module === "(native)" ? functionName : module, us)
    add(functions, label, us)
  }
  const busy = sampled - idle
  return {
    file,
    window,
    sampledSeconds: sampled / 1e6,
    busySeconds: busy / 1e6,
    stages: top(stages, busy, 20),
    modules: top(modules, busy, 15),
    functions: top(functions, busy, 25),
  }
}
