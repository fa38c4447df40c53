/**
 * Reads a V8 CPU profile (node --cpu-prof) of the service, without its first seconds (the
 * start-up), and says where its CPU time went:
 * - by stage: Kafka client, MongoDB driver, Effect runtime, tasks, the rest of the pipeline,
 *   GC; time in node core and in builtins (socket writes, Buffer allocation, JSON.parse, ...)
 *   is charged to the nearest caller outside node core, so that socket writes count for the
 *   client that made them;
 * - by module and by function, as the profile has them (builtins under their caller).
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
  /** Samples of the first seconds of the profile are left out (the start-up). */
  readonly skippedSeconds: number
  readonly sampledSeconds: number
  readonly busySeconds: number
  readonly stages: ReadonlyArray<Share>
  readonly modules: ReadonlyArray<Share>
  readonly functions: ReadonlyArray<Share>
}

interface Frame {
  /** src/<file>.ts, a package name, node:<area>, or "" for V8's own entries and builtins. */
  readonly module: string
  /** Where the function is: src/..., <package>/<file>, node:internal/... */
  readonly location: string
}

const frameOf = (url: string, serviceDir: string): Frame => {
  const path = url.startsWith("file://") ? decodeURIComponent(url.slice("file://".length)) : url
  if (path === "") return { module: "", location: "" }
  if (path.startsWith("node:")) return { module: path.split("/").slice(0, 2).join("/"), location: path }
  const inPackages = path.lastIndexOf(`${sep}node_modules${sep}`)
  if (inPackages >= 0) {
    const location = path.slice(inPackages + 14)
    const parts = location.split(sep)
    return { module: parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!, location }
  }
  if (path.startsWith(serviceDir)) {
    const location = `src/${relative(serviceDir, path).replace(/\.js$/, ".ts")}`
    return { module: location, location }
  }
  const probe = path.lastIndexOf(`${sep}bench${sep}`)
  if (probe >= 0) {
    const location = path.slice(probe + 1)
    return { module: location, location }
  }
  return { module: path, location: path }
}

const stageOf = (module: string): string => {
  if (module === "kafkajs") return "kafkajs (Kafka client)"
  if (module === "mongodb" || module === "bson") return "mongodb driver + bson"
  if (module === "effect" || module.startsWith("@effect/")) return "Effect runtime"
  if (module.startsWith("src/Tasks/") || module.startsWith("src/Domain/"))
    return "tasks (src/Tasks, src/Domain)"
  if (module.startsWith("src/")) return "pipeline runtime (other src/)"
  if (module.startsWith("bench/")) return "the benchmark's probes (bench/)"
  return `other (${module})`
}

const special: Readonly<Record<string, string>> = {
  "(garbage collector)": "GC",
  "(program)": "V8 itself (program)",
  "(root)": "V8 itself (program)",
}

const top = (totals: Map<string, number>, busy: number, limit: number): Share[] =>
  [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, us]) => ({ name, ms: us / 1000, share: busy === 0 ? 0 : us / busy }))

export const summarizeProfile = (file: string, serviceDir: string, skippedSeconds = 0): ProfileSummary => {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const frame = (id: number) => frameOf(byId.get(id)!.callFrame.url, serviceDir)
  /** The nearest frame, from `id` up, that satisfies `ok`. */
  const nearest = (id: number, ok: (f: Frame) => boolean): number | undefined => {
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) if (ok(frame(at))) return at
    return undefined
  }

  const self = new Map<number, number>()
  let at = profile.startTime
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i] ?? 0
    if (at < profile.startTime + skippedSeconds * 1e6) return
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0))
  })

  const stages = new Map<string, number>()
  const modules = new Map<string, number>()
  const functions = new Map<string, number>()
  let sampled = 0
  let idle = 0
  const add = (m: Map<string, number>, k: string, us: number) => m.set(k, (m.get(k) ?? 0) + us)
  for (const [id, us] of self) {
    const { functionName, lineNumber } = byId.get(id)!.callFrame
    sampled += us
    if (functionName === "(idle)") {
      idle += us
      continue
    }
    const own = frame(id)
    const name = functionName || "(anonymous)"
    const v8 = special[functionName]
    if (own.module === "" && v8 !== undefined) {
      add(stages, v8, us)
      add(modules, functionName, us)
      add(functions, functionName, us)
      continue
    }
    // A builtin has no script: it counts for the nearest caller that has one.
    const scripted = own.module === "" ? nearest(id, (f) => f.module !== "") : id
    const home = scripted === undefined ? own : frame(scripted)
    add(modules, home.module === "" ? "(builtins)" : home.module, us)
    if (own.module === "") {
      const caller = scripted === undefined ? undefined : byId.get(scripted)!.callFrame
      add(
        functions,
        caller === undefined
          ? `${name} (builtin)`
          : `${name} (builtin, in ${caller.functionName || "(anonymous)"} ${home.location}:${caller.lineNumber + 1})`,
        us,
      )
    } else {
      add(functions, `${name} ${own.location}:${lineNumber + 1}`, us)
    }
    // The stage: the nearest frame outside node core and builtins.
    const owner = nearest(id, (f) => f.module !== "" && !f.module.startsWith("node:"))
    add(
      stages,
      owner === undefined ? "node core, no JS caller (I/O callbacks, timers)" : stageOf(frame(owner).module),
      us,
    )
  }
  const busy = sampled - idle
  return {
    file,
    skippedSeconds,
    sampledSeconds: sampled / 1e6,
    busySeconds: busy / 1e6,
    stages: top(stages, busy, 20),
    modules: top(modules, busy, 15),
    functions: top(functions, busy, 25),
  }
}
