/**
 * What /status.json answers: the pipeline's graph with each task's counts (since start and over
 * the last minute), the throughput of the last 15 minutes, every partition's state, the
 * dead-letter reasons counted, and the settings in effect. A pure function of the board's
 * counters and of what the pipeline reports now; it reads nothing that a stall could hold up.
 */
import type { AppSettings } from "../../Config/AppConfig.js"
import type { PipelineSpec } from "../../Config/PipelineSpec.js"
import { isSink, targetOf } from "../../Config/SinkKinds.js"
import type { LagSnapshot } from "../ConsumerLag.js"
import { type Board, type Counters, since, type TaskCounts } from "./Board.js"

export interface NodeCounts {
  /** Records the task was given (a sink: the ones it wrote or turned away). */
  readonly in: number
  /** Records still valid after the task (a sink: the ones it wrote). */
  readonly valid: number
  /** Records the task made invalid (a sink: the ones it turned away). */
  readonly invalid: number
  /** Records it turned away, by rule; a record failing several rules counts under each. */
  readonly invalidByRule: Readonly<Record<string, number>>
  readonly duplicates: number
  /** Records a filter task let go no further. */
  readonly filtered: number
  /** Attempts beyond the first. */
  readonly retries: number
  /** Batches in which the task failed after its retries. */
  readonly failures: number
  /** Batches the task ran for (skipped ones not included). */
  readonly batches: number
  /** Mean time of the task over one batch, retries included; null before its first batch. */
  readonly msPerBatch: number | null
}

export interface DagNode {
  readonly name: string
  readonly type: string
  readonly kind: "transform" | "sink"
  readonly dependsOn: ReadonlyArray<string>
  /** Where a sink writes: `database.collection` or the sink topic. */
  readonly target?: string
  readonly total: NodeCounts
  readonly lastMinute: NodeCounts
}

export interface Totals {
  readonly batches: number
  readonly consumed: number
  readonly valid: number
  readonly duplicates: number
  /** Records no sink's branch carries (a filter stopped them on every branch that leads to a sink). */
  readonly filtered: number
  readonly deadLettered: number
  /** Tombstones and Debezium deletes, applied or ignored (MONGODB__ON_TOMBSTONE). */
  readonly tombstones: number
  readonly written: Readonly<Record<string, number>>
}

export interface PartitionStatus {
  readonly partition: number
  /** In this instance's assignment from its group. */
  readonly assigned: boolean
  /** The next offset this instance committed, null before its first commit. */
  readonly committedOffset: string | null
  readonly lastCommitAt: number | null
  /** The group's lag, null when not known yet. */
  readonly lag: number | null
  readonly stalled: boolean
  readonly stalledSince: number | null
  readonly stall: {
    readonly offsets: string
    readonly what: string
    readonly error: string
    readonly retries: number
  } | null
  /** Age of its oldest batch taken and not yet written; null when none is in flight. */
  readonly oldestBatchSeconds: number | null
}

export interface DeadLetterReason {
  readonly stage: string
  readonly task: string
  readonly rule: string
  readonly total: number
  readonly lastMinute: number
  /** The fields the reason named, most frequent first (at most five). */
  readonly fields: ReadonlyArray<{ readonly field: string; readonly total: number }>
}

export type State = "starting" | "running" | "stalled" | "stopping"

export interface StatusSnapshot {
  /** Unix ms, as every time below. */
  readonly now: number
  readonly startedAt: number
  readonly state: State
  readonly pipeline: {
    readonly name: string
    readonly file: string
    /** 1 for the definition the service started with, +1 per reload applied. */
    readonly generation: number
    /** The first 12 hex digits of the SHA-256 of the decoded definition. */
    readonly digest: string
    readonly loadedAt: number
  } | null
  readonly consumer: {
    readonly group: string
    readonly sourceTopic: string
    readonly deadLetterTopic: string
    readonly joined: boolean
    readonly lagSource: LagSnapshot["source"]
  }
  readonly dag: { readonly nodes: ReadonlyArray<DagNode> }
  readonly totals: {
    readonly total: Totals
    readonly lastMinute: Totals
    /** Seconds the "last minute" figures cover (less while the service is younger). */
    readonly lastMinuteSeconds: number
  }
  readonly throughput: {
    /** The sampling step: each point counts the records of one step, so it is also a rate per second. */
    readonly stepSeconds: number
    /** Unix ms of the last point; point i is `stepSeconds * (n - 1 - i)` seconds before it. */
    readonly end: number
    /** Records in each step: consumed, written by each sink, dead-lettered. */
    readonly in: ReadonlyArray<number>
    readonly written: Readonly<Record<string, ReadonlyArray<number>>>
    readonly deadLettered: ReadonlyArray<number>
  }
  readonly partitions: ReadonlyArray<PartitionStatus>
  readonly deadLetters: { readonly reasons: ReadonlyArray<DeadLetterReason> }
  readonly settings: unknown
}

/** What the pipeline reports at the moment of the snapshot. */
export interface Observed {
  readonly plan:
    | { readonly spec: PipelineSpec; readonly generation: number; readonly loadedAt: number }
    | undefined
  readonly digest: string
  readonly detached: boolean
  readonly joined: boolean
  readonly assigned: ReadonlyArray<number>
  readonly committed: ReadonlyMap<number, { readonly offset: string; readonly at: number }>
  readonly lag: LagSnapshot
  readonly stalls: ReadonlyArray<{
    readonly partition: number
    readonly since: number
    readonly offsets: string
    readonly what: string
    readonly error: string
    readonly retries: number
  }>
  readonly batchAges: ReadonlyMap<number, number>
}

const nodeCounts = (t: TaskCounts | undefined): NodeCounts => {
  const batches = t?.batches ?? 0
  return {
    in: t?.in ?? 0,
    valid: t?.valid ?? 0,
    invalid: t?.invalid ?? 0,
    invalidByRule: Object.fromEntries(t?.rules ?? []),
    duplicates: t?.duplicates ?? 0,
    filtered: t?.filtered ?? 0,
    retries: t?.retries ?? 0,
    failures: t?.failures ?? 0,
    batches,
    msPerBatch: t === undefined || batches === 0 ? null : Math.round((t.ms / batches) * 100) / 100,
  }
}

const totalsOf = (c: Counters): Totals => ({
  batches: c.batches,
  consumed: c.consumed,
  valid: c.valid,
  duplicates: c.duplicates,
  filtered: c.filtered,
  deadLettered: c.deadLettered,
  tombstones: c.tombstones,
  written: Object.fromEntries(c.written),
})

const reasonsOf = (counters: Counters, recent: Counters): ReadonlyArray<DeadLetterReason> => {
  const reasons: Array<DeadLetterReason> = []
  for (const [stage, tasks] of counters.reasons) {
    for (const [task, rules] of tasks) {
      for (const [rule, r] of rules) {
        reasons.push({
          stage,
          task,
          rule,
          total: r.total,
          lastMinute: recent.reasons.get(stage)?.get(task)?.get(rule)?.total ?? 0,
          fields: [...r.fields]
            .map(([field, total]) => ({ field, total }))
            .sort((a, b) => b.total - a.total || a.field.localeCompare(b.field))
            .slice(0, 5),
        })
      }
    }
  }
  const order = (r: DeadLetterReason) => `${r.stage}/${r.task}/${r.rule}`
  return reasons.sort((a, b) => b.total - a.total || order(a).localeCompare(order(b)))
}

/** Records between consecutive samples (one a second), the first from the start. */
const throughputOf = (board: Board) => {
  const samples = board.quarter.toArray()
  const sinks = new Set<string>()
  for (const s of samples) for (const sink of s.written.keys()) sinks.add(sink)
  const series = { in: [] as number[], deadLettered: [] as number[], written: new Map<string, number[]>() }
  for (const sink of sinks) series.written.set(sink, [])
  let before: (typeof samples)[number] = {
    at: board.startedAt,
    consumed: 0,
    deadLettered: 0,
    written: new Map(),
  }
  for (const s of samples) {
    series.in.push(s.consumed - before.consumed)
    series.deadLettered.push(s.deadLettered - before.deadLettered)
    for (const [sink, list] of series.written)
      list.push((s.written.get(sink) ?? 0) - (before.written.get(sink) ?? 0))
    before = s
  }
  // The first sample counts from the start; once the ring is full, the oldest sample only serves as a base.
  const keep = board.quarter.capacity - 1
  const cut = (list: ReadonlyArray<number>) => list.slice(Math.max(0, list.length - keep))
  return {
    stepSeconds: 1,
    end: samples[samples.length - 1]?.at ?? board.startedAt,
    in: cut(series.in),
    written: Object.fromEntries([...series.written].map(([sink, list]) => [sink, cut(list)])),
    deadLettered: cut(series.deadLettered),
  }
}

const partitionsOf = (observed: Observed): ReadonlyArray<PartitionStatus> => {
  const assigned = new Set(observed.assigned)
  const stalls = new Map(observed.stalls.map((s) => [s.partition, s]))
  const all = new Set([
    ...assigned,
    ...observed.committed.keys(),
    ...observed.lag.byPartition.keys(),
    ...stalls.keys(),
  ])
  return [...all]
    .sort((a, b) => a - b)
    .map((partition): PartitionStatus => {
      const committed = observed.committed.get(partition)
      const stall = stalls.get(partition)
      const lag = observed.lag.byPartition.get(partition)
      const age = observed.batchAges.get(partition)
      return {
        partition,
        assigned: assigned.has(partition),
        committedOffset: committed?.offset ?? null,
        lastCommitAt: committed?.at ?? null,
        lag: lag === undefined ? null : Number(lag),
        stalled: stall !== undefined,
        stalledSince: stall?.since ?? null,
        stall:
          stall === undefined
            ? null
            : { offsets: stall.offsets, what: stall.what, error: stall.error, retries: stall.retries },
        oldestBatchSeconds: age === undefined ? null : Math.round(age / 100) / 10,
      }
    })
}

export const snapshotOf = (
  board: Board,
  observed: Observed,
  settings: AppSettings,
  settingsView: unknown,
  now: number,
): StatusSnapshot => {
  const counters = board.current
  const baseline = board.minuteAgo(now)
  const recent = since(counters, baseline.counters)
  const plan = observed.plan
  const nodes = (plan?.spec.tasks ?? []).map((task): DagNode => {
    const target = targetOf(task.type, settings)
    return {
      name: task.name,
      type: task.type,
      kind: isSink(task.type) ? "sink" : "transform",
      dependsOn: task.dependsOn,
      ...(target === undefined ? {} : { target }),
      total: nodeCounts(counters.tasks.get(task.name)),
      lastMinute: nodeCounts(recent.tasks.get(task.name)),
    }
  })
  return {
    now,
    startedAt: board.startedAt,
    state:
      plan === undefined
        ? "starting"
        : observed.detached
          ? "stopping"
          : observed.stalls.length > 0
            ? "stalled"
            : "running",
    pipeline:
      plan === undefined
        ? null
        : {
            name: plan.spec.name ?? "pipeline",
            file: settings.pipeline.file,
            generation: plan.generation,
            digest: observed.digest,
            loadedAt: plan.loadedAt,
          },
    consumer: {
      group: settings.kafka.consumerGroup,
      sourceTopic: settings.kafka.topicSource,
      deadLetterTopic: settings.kafka.topicDlq,
      joined: observed.joined,
      lagSource: observed.lag.source,
    },
    dag: { nodes },
    totals: {
      total: totalsOf(counters),
      lastMinute: totalsOf(recent),
      lastMinuteSeconds: Math.round((now - baseline.at) / 1000),
    },
    throughput: throughputOf(board),
    partitions: partitionsOf(observed),
    deadLetters: { reasons: reasonsOf(counters, recent) },
    settings: settingsView,
  }
}
