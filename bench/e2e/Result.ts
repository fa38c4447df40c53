/**
 * A run's result: every figure in one JSON document (written beside the logs), with the
 * ratios, the targets and the checks every drain must pass, assembled from the repetitions
 * the steps measured.
 */
import type { Kind } from "../../src/Generator/Records.js"
import { shippedSpec, sinkWriteConcern } from "./Dataset.js"
import type { Versions } from "./Infra.js"
import type { LatencyRepetition } from "./Latency.js"
import type { Preloaded } from "./Preload.js"
import type { Machine } from "./Proc.js"
import type { Run } from "./Run.js"
import { serviceEnv } from "./Service.js"
import { median, type Summary, summarize } from "./Stats.js"
import {
  type BareRepetition,
  type DrainRepetition,
  PARTITIONS_CONCURRENCY,
  type PipelineRepetition,
  type SinkRepetition,
} from "./Throughput.js"

export interface Target {
  readonly name: string
  readonly target: string
  readonly value: number
  readonly met: boolean
}

export type LatencyFigures = Readonly<Record<"p50" | "p95" | "p99" | "max", Summary>>

export interface Figure<R> {
  readonly summary: Summary
  readonly reps: ReadonlyArray<R>
}

export interface E2eResult {
  readonly run: string
  readonly command: string
  readonly startedAt: string
  readonly durationSeconds: number
  readonly machine: Machine
  /** Cores busy on the machine in the 3 s before the run (other users of a shared machine). */
  readonly busyCoresBefore: number
  /** Environment given with --service-env (also inside settings.serviceEnv). */
  readonly serviceEnvExtra: Readonly<Record<string, string>>
  readonly versions: Versions
  readonly settings: {
    readonly records: number
    readonly batchSize: number
    readonly reps: number
    readonly partitions: number
    readonly partitionsConcurrency: number
    readonly seed: number
    readonly latencySeconds: number
    readonly latencyWarmupSeconds: number
    readonly latencyReps: number
    readonly farDuplicateLimit: number | null
    readonly writeConcern: { readonly w: number | "majority"; readonly journal: boolean }
    readonly serviceEnv: Readonly<Record<string, string>>
    readonly serviceNodeFlags: ReadonlyArray<string>
  }
  readonly dataset: {
    readonly kinds: Readonly<Record<Kind, number>>
    readonly leftOutFarDuplicates: number
    readonly expectedDocuments: number
    /** The documents baseline C stores (every JSON object of the stream under its key). */
    readonly bareDocuments: number
  }
  readonly preload: { readonly seconds: number; readonly recordsPerSecond: number }
  readonly baselineA: Figure<DrainRepetition>
  readonly baselineB: Figure<SinkRepetition>
  readonly baselineC: Figure<BareRepetition>
  readonly pipeline: Figure<PipelineRepetition> & { readonly documentsPerSecond: Summary }
  readonly ratios: {
    readonly pipelineOverA: number
    readonly pipelineOverB: number
    readonly pipelineOverMin: number
    readonly pipelineDocumentsOverB: number
    readonly pipelineOverC: number
  }
  readonly latency: {
    readonly targetRate: number
    readonly reps: ReadonlyArray<LatencyRepetition>
    readonly mongoAck: LatencyFigures
    readonly sinkAppend: LatencyFigures
  } | null
  readonly memory: {
    readonly drainPeakRssBytes: Summary
    readonly latencyPeakRssBytes: Summary | null
    readonly peakRssBytes: number
  }
  /** Cores busy during each phase's measured windows, per process (median of the repetitions). */
  readonly cpu: Readonly<Record<string, Readonly<Record<string, number>>>>
  /**
   * Microseconds of CPU time per record of the source topic, per process, for A, B, C and P
   * (median of the repetitions; see Proc.cpuPerRecord).
   */
  readonly cpuPerRecord: Readonly<Record<string, Readonly<Record<string, number>>>>
  readonly targets: ReadonlyArray<Target>
  readonly checks: ReadonlyArray<string>
}

/** The median of each process's figure over the repetitions. */
const medianOf = (figures: ReadonlyArray<Readonly<Record<string, number>>>) => {
  const names = new Set(figures.flatMap((f) => Object.keys(f)))
  const out: Record<string, number> = {}
  for (const n of names) out[n] = median(figures.flatMap((f) => (f[n] === undefined ? [] : [f[n]])))
  return out
}

const medianCores = (reps: ReadonlyArray<{ readonly cores: Readonly<Record<string, number>> }>) =>
  medianOf(reps.map((r) => r.cores))

const medianCpuPerRecord = (
  reps: ReadonlyArray<{ readonly cpuPerRecord: Readonly<Record<string, number>> }>,
) => medianOf(reps.map((r) => r.cpuPerRecord))

const latencyFigures = (
  reps: ReadonlyArray<LatencyRepetition>,
  pick: (r: LatencyRepetition) => LatencyRepetition["mongoAck"],
): LatencyFigures => ({
  p50: summarize(reps.map((r) => pick(r).p50)),
  p95: summarize(reps.map((r) => pick(r).p95)),
  p99: summarize(reps.map((r) => pick(r).p99)),
  max: summarize(reps.map((r) => pick(r).max)),
})

export interface Measured {
  readonly run: Run
  readonly argv: ReadonlyArray<string>
  readonly startedAt: Date
  readonly durationSeconds: number
  readonly machine: Machine
  readonly versions: Versions
  readonly busyCoresBefore: number
  readonly source: Preloaded
  readonly a: ReadonlyArray<DrainRepetition>
  readonly b: ReadonlyArray<SinkRepetition>
  readonly c: ReadonlyArray<BareRepetition>
  readonly p: ReadonlyArray<PipelineRepetition>
  readonly latency: ReadonlyArray<LatencyRepetition>
  readonly targetRate: number
}

const int = (n: number) => Math.round(n).toLocaleString("en-US")

export const assemble = (m: Measured): E2eResult => {
  const { run, a, b, c, p, source, targetRate } = m
  const o = run.options
  const lat = m.latency
  const pipeline = summarize(p.map((x) => x.rate))
  const A = summarize(a.map((x) => x.rate))
  const B = summarize(b.map((x) => x.rate))
  const C = summarize(c.map((x) => x.rate))
  const documentsPerSecond = summarize(p.map((x) => x.documents / x.seconds))
  const expectedDocuments = b[0]?.items ?? 0
  const drainRss = summarize(p.map((x) => x.peakRssBytes))
  const latencyRss = lat.length === 0 ? null : summarize(lat.map((x) => x.peakRssBytes))
  const peakRss = Math.max(...p.map((x) => x.peakRssBytes), ...lat.map((x) => x.peakRssBytes))
  const latency =
    lat.length === 0
      ? null
      : {
          targetRate,
          reps: lat,
          mongoAck: latencyFigures(lat, (r) => r.mongoAck),
          sinkAppend: latencyFigures(lat, (r) => r.sinkAppend),
        }
  const overMin = pipeline.median / Math.min(A.median, B.median)
  const overC = pipeline.median / C.median
  const targets: Target[] = [
    {
      name: "pipeline >= 85% of min(A, B)",
      target: `${(overMin * 100).toFixed(0)}% of min(A, B)`,
      value: overMin,
      met: overMin >= 0.85,
    },
    {
      name: "pipeline >= 90% of C",
      target: `${(overC * 100).toFixed(0)}% of C`,
      value: overC,
      met: overC >= 0.9,
    },
    ...(latency === null
      ? []
      : [
          {
            name: "p99 latency < 120 ms at half load",
            target: `p99 ${Math.round(latency.mongoAck.p99.median)} ms`,
            value: latency.mongoAck.p99.median,
            met: latency.mongoAck.p99.median < 120,
          },
        ]),
    {
      name: "peak RSS < 300 MB",
      target: `${(peakRss / 2 ** 20).toFixed(0)} MB`,
      value: peakRss,
      met: peakRss < 300 * 2 ** 20,
    },
  ]
  const checks: string[] = []
  for (const x of p) {
    if (x.documents !== expectedDocuments)
      checks.push(
        `${x.label}: ${int(x.documents)} documents in MongoDB, baseline B wrote ${int(expectedDocuments)}`,
      )
    if (x.service.consumed !== o.records)
      checks.push(`${x.label}: the service counted ${int(x.service.consumed)} consumed`)
    if (x.shutdown.code !== 0) checks.push(`${x.label}: exit code ${x.shutdown.code} after SIGTERM`)
  }
  if (checks.length === 0)
    checks.push(
      `every drain stored exactly the ${int(expectedDocuments)} documents of baseline B and exited 0`,
    )
  const bare: string[] = []
  for (const x of [...a, ...c]) {
    if (x.sinkMessages !== o.records)
      bare.push(`${x.label}: ${int(x.sinkMessages)} messages on the sink topic, ${int(o.records)} consumed`)
    if (x.uncommitted.length > 0)
      bare.push(`${x.label}: committed offsets short of the topic's end (${x.uncommitted.join(", ")})`)
  }
  for (const x of c) {
    if (x.documents !== source.bareDocuments)
      bare.push(
        `${x.label}: ${int(x.documents)} documents in MongoDB, the stream's JSON objects have ${int(source.bareDocuments)} keys`,
      )
  }
  checks.push(
    ...(bare.length > 0
      ? bare
      : [
          `A and C put all ${int(o.records)} records on their sink topics and committed the topic's end; C stored the ${int(source.bareDocuments)} documents of the stream's JSON objects`,
        ]),
  )
  // A shared machine: say which windows other work cut into (their figures are depressed).
  for (const x of [...a, ...b, ...c, ...p, ...lat]) {
    const other = x.cores.other ?? 0
    if (other > 0.25)
      checks.push(
        `${x.label}: processes outside the benchmark kept ${other.toFixed(2)} of ${m.machine.cores} cores busy; this figure is depressed`,
      )
  }
  const settingsEnv = {
    ...serviceEnv(
      {
        source: "<per run>",
        sink: "<per run>",
        dlq: "<per run>",
        group: "<per run>",
        database: "<per run>",
        collection: "orders",
        batchSize: o.batchSize,
      },
      0,
    ),
    ...o.serviceEnv,
  }

  return {
    run: run.id,
    command: `npm run bench -- e2e ${m.argv.join(" ")}`.trim(),
    startedAt: m.startedAt.toISOString(),
    durationSeconds: m.durationSeconds,
    machine: m.machine,
    versions: m.versions,
    busyCoresBefore: m.busyCoresBefore,
    serviceEnvExtra: o.serviceEnv,
    settings: {
      records: o.records,
      batchSize: o.batchSize,
      reps: o.reps,
      partitions: source.ends.size,
      partitionsConcurrency: PARTITIONS_CONCURRENCY,
      seed: o.seed,
      latencySeconds: o.latencySeconds,
      latencyWarmupSeconds: o.latencyWarmupSeconds,
      latencyReps: o.latencySeconds > 0 ? o.latencyReps : 0,
      farDuplicateLimit: run.farLimit ?? null,
      writeConcern: sinkWriteConcern(shippedSpec()),
      serviceEnv: settingsEnv,
      serviceNodeFlags: ["--disable-warning=TimeoutNegativeWarning", ...o.serviceFlags],
    },
    dataset: {
      kinds: source.kinds,
      leftOutFarDuplicates: source.leftOut,
      expectedDocuments,
      bareDocuments: source.bareDocuments,
    },
    preload: { seconds: source.seconds, recordsPerSecond: o.records / source.seconds },
    baselineA: { summary: A, reps: a },
    baselineB: { summary: B, reps: b },
    baselineC: { summary: C, reps: c },
    pipeline: { summary: pipeline, reps: p, documentsPerSecond },
    ratios: {
      pipelineOverA: pipeline.median / A.median,
      pipelineOverB: pipeline.median / B.median,
      pipelineOverMin: overMin,
      pipelineDocumentsOverB: documentsPerSecond.median / B.median,
      pipelineOverC: overC,
    },
    latency,
    memory: { drainPeakRssBytes: drainRss, latencyPeakRssBytes: latencyRss, peakRssBytes: peakRss },
    cpu: {
      A: medianCores(a),
      B: medianCores(b),
      C: medianCores(c),
      P: medianCores(p),
      ...(lat.length === 0 ? {} : { latency: medianCores(lat) }),
    },
    cpuPerRecord: {
      A: medianCpuPerRecord(a),
      B: medianCpuPerRecord(b),
      C: medianCpuPerRecord(c),
      P: medianCpuPerRecord(p),
    },
    targets,
    checks,
  }
}
