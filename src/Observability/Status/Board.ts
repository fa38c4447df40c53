/**
 * The status page's counters. The pipeline adds to them after each batch (additions to
 * numbers it finds by name, nothing else on its path); once a second a sampler copies them, so
 * that any count over the last minute is the counters now minus their copy of a minute ago,
 * and the throughput of the last 15 minutes is the difference between consecutive copies.
 */
import type { Reason } from "../../Domain/Record.js"

/** What the executor says of one task in one batch. */
export interface TaskRun {
  readonly name: string
  readonly _tag: "Succeeded" | "Failed" | "Skipped"
  readonly attempts: number
  readonly durationMs: number
}

/** A batch as written: the same counts as its summary. */
export interface BatchCounts {
  readonly consumed: number
  readonly valid: number
  readonly duplicates: number
  readonly filtered: number
  readonly deadLettered: number
  /** Tombstones applied to the sinks and ignored (MONGODB__ON_TOMBSTONE), Debezium deletes with them. */
  readonly tombstonesApplied?: number
  readonly tombstonesIgnored?: number
  readonly written: Readonly<Record<string, number>>
}

/** A dead letter as the page counts it: where and why, never the record. */
export interface DeadLetterReasons {
  readonly stage: string
  readonly reasons: ReadonlyArray<Reason>
}

/** A fixed number of the latest items, oldest first. */
export class Ring<A> {
  private readonly items: Array<A> = []
  private start = 0
  constructor(readonly capacity: number) {}

  push(item: A): void {
    if (this.items.length < this.capacity) this.items.push(item)
    else {
      this.items[this.start] = item
      this.start = (this.start + 1) % this.capacity
    }
  }

  toArray(): ReadonlyArray<A> {
    return [...this.items.slice(this.start), ...this.items.slice(0, this.start)]
  }
}

export interface TaskCounts {
  in: number
  valid: number
  invalid: number
  duplicates: number
  filtered: number
  batches: number
  skippedBatches: number
  ms: number
  retries: number
  failures: number
  /** Records turned away, by rule. */
  readonly rules: Map<string, number>
}

/** One dead-letter reason (a stage, a task and a rule): its letters, and the fields it named. */
export interface ReasonCounts {
  total: number
  readonly fields: Map<string, number>
}

export interface Counters {
  batches: number
  consumed: number
  valid: number
  duplicates: number
  filtered: number
  deadLettered: number
  tombstones: number
  readonly written: Map<string, number>
  readonly tasks: Map<string, TaskCounts>
  /** By stage, then task, then rule. */
  readonly reasons: Map<string, Map<string, Map<string, ReasonCounts>>>
}

export interface Sample {
  /** Unix ms. */
  readonly at: number
  readonly counters: Counters
}

export const emptyCounters = (): Counters => ({
  batches: 0,
  consumed: 0,
  valid: 0,
  duplicates: 0,
  filtered: 0,
  deadLettered: 0,
  tombstones: 0,
  written: new Map(),
  tasks: new Map(),
  reasons: new Map(),
})

const emptyTask = (): TaskCounts => ({
  in: 0,
  valid: 0,
  invalid: 0,
  duplicates: 0,
  filtered: 0,
  batches: 0,
  skippedBatches: 0,
  ms: 0,
  retries: 0,
  failures: 0,
  rules: new Map(),
})

const add = (map: Map<string, number>, key: string, n: number) => map.set(key, (map.get(key) ?? 0) + n)

const copyTask = (t: TaskCounts): TaskCounts => ({ ...t, rules: new Map(t.rules) })

export const copyCounters = (c: Counters): Counters => ({
  ...c,
  written: new Map(c.written),
  tasks: new Map([...c.tasks].map(([name, t]) => [name, copyTask(t)])),
  reasons: new Map(
    [...c.reasons].map(([stage, tasks]) => [
      stage,
      new Map(
        [...tasks].map(([task, rules]) => [
          task,
          new Map([...rules].map(([rule, r]) => [rule, { total: r.total, fields: new Map(r.fields) }])),
        ]),
      ),
    ]),
  ),
})

const minusMap = (now: ReadonlyMap<string, number>, before: ReadonlyMap<string, number> | undefined) => {
  const out = new Map<string, number>()
  for (const [k, n] of now) {
    const d = n - (before?.get(k) ?? 0)
    if (d !== 0) out.set(k, d)
  }
  return out
}

const minusTask = (now: TaskCounts, before: TaskCounts | undefined): TaskCounts => {
  const b = before ?? emptyTask()
  return {
    in: now.in - b.in,
    valid: now.valid - b.valid,
    invalid: now.invalid - b.invalid,
    duplicates: now.duplicates - b.duplicates,
    filtered: now.filtered - b.filtered,
    batches: now.batches - b.batches,
    skippedBatches: now.skippedBatches - b.skippedBatches,
    ms: now.ms - b.ms,
    retries: now.retries - b.retries,
    failures: now.failures - b.failures,
    rules: minusMap(now.rules, before?.rules),
  }
}

/** `now` minus `before`, counter by counter (counters absent before count from 0). */
export const since = (now: Counters, before: Counters): Counters => ({
  batches: now.batches - before.batches,
  consumed: now.consumed - before.consumed,
  valid: now.valid - before.valid,
  duplicates: now.duplicates - before.duplicates,
  filtered: now.filtered - before.filtered,
  deadLettered: now.deadLettered - before.deadLettered,
  tombstones: now.tombstones - before.tombstones,
  written: minusMap(now.written, before.written),
  tasks: new Map([...now.tasks].map(([name, t]) => [name, minusTask(t, before.tasks.get(name))])),
  reasons: new Map(
    [...now.reasons].map(([stage, tasks]) => [
      stage,
      new Map(
        [...tasks].map(([task, rules]) => [
          task,
          new Map(
            [...rules].map(([rule, r]) => {
              const b = before.reasons.get(stage)?.get(task)?.get(rule)
              return [rule, { total: r.total - (b?.total ?? 0), fields: minusMap(r.fields, b?.fields) }]
            }),
          ),
        ]),
      ),
    ]),
  ),
})

// Rules and fields come from the pipeline file and sink error codes; a cap keeps a server that
// invents new codes from growing the counters without end.
const maxReasons = 500
const longest = 80

const short = (text: string) => (text.length > longest ? `${text.slice(0, longest - 1)}…` : text)

export class Board {
  private readonly counters = emptyCounters()
  private reasonCount = 0
  /** One copy a second for the last minute (and one more, for the full minute). */
  readonly minute = new Ring<Sample>(61)
  /** The throughput's totals, one a second for 15 minutes (and one more, the base of the first). */
  readonly quarter = new Ring<{
    readonly at: number
    readonly consumed: number
    readonly deadLettered: number
    readonly written: ReadonlyMap<string, number>
  }>(901)

  constructor(readonly startedAt: number) {}

  get current(): Counters {
    return this.counters
  }

  private task(name: string): TaskCounts {
    let t = this.counters.tasks.get(name)
    if (t === undefined) {
      t = emptyTask()
      this.counters.tasks.set(name, t)
    }
    return t
  }

  private reason(stage: string, task: string, rule: string): ReasonCounts | undefined {
    let tasks = this.counters.reasons.get(stage)
    if (tasks === undefined) {
      tasks = new Map()
      this.counters.reasons.set(stage, tasks)
    }
    let rules = tasks.get(task)
    if (rules === undefined) {
      rules = new Map()
      tasks.set(task, rules)
    }
    let r = rules.get(rule)
    if (r === undefined) {
      if (this.reasonCount >= maxReasons) return undefined
      this.reasonCount++
      r = { total: 0, fields: new Map() }
      rules.set(rule, r)
    }
    return r
  }

  /** Time, retries and failures of each task of a batch. */
  tasksRan(tasks: ReadonlyArray<TaskRun>): void {
    for (const run of tasks) {
      const t = this.task(run.name)
      if (run._tag === "Skipped") {
        t.skippedBatches++
        continue
      }
      t.batches++
      t.ms += run.durationMs
      t.retries += run.attempts - 1
      if (run._tag === "Failed") t.failures++
    }
  }

  /** What a transform counted over a batch, and how many of its output records are still valid. */
  taskCounted(
    task: string,
    stats: { readonly [counter: string]: number },
    output: ReadonlyArray<{ readonly status: string }>,
  ): void {
    let valid = 0
    for (let i = 0; i < output.length; i++) if (output[i]!.status === "valid") valid++
    const t = this.task(task)
    t.in += stats.records ?? output.length
    t.valid += valid
    t.invalid += stats.invalidated ?? 0
    t.duplicates += stats.duplicates ?? 0
    t.filtered += stats.filtered ?? 0
  }

  /** A batch fully written: its totals, each sink's part, and every dead letter's reasons. */
  batchWritten(batch: BatchCounts, deadLetters: ReadonlyArray<DeadLetterReasons>): void {
    const c = this.counters
    c.batches++
    c.consumed += batch.consumed
    c.valid += batch.valid
    c.duplicates += batch.duplicates
    c.filtered += batch.filtered
    c.deadLettered += batch.deadLettered
    c.tombstones += (batch.tombstonesApplied ?? 0) + (batch.tombstonesIgnored ?? 0)
    for (const sink in batch.written) {
      const n = batch.written[sink]!
      add(c.written, sink, n)
      const t = this.task(sink)
      t.in += n
      t.valid += n
    }
    for (const letter of deadLetters) this.deadLetter(letter)
  }

  /** Each reason counts once per letter, however many fields it names. */
  private deadLetter(letter: DeadLetterReasons): void {
    const bySink = letter.stage.endsWith("_sink")
    const reasons = letter.reasons
    for (let i = 0; i < reasons.length; i++) {
      const reason = reasons[i]!
      let firstOfRule = true
      let firstOfTask = true
      let firstOfField = true
      for (let j = 0; j < i; j++) {
        const earlier = reasons[j]!
        if (earlier.task !== reason.task) continue
        firstOfTask = false
        if (earlier.rule !== reason.rule) continue
        firstOfRule = false
        if (earlier.field === reason.field) firstOfField = false
      }
      const task = short(reason.task)
      const rule = short(reason.rule)
      const counts = this.reason(letter.stage, task, rule)
      if (counts === undefined) continue
      if (firstOfRule) {
        counts.total++
        add(this.task(task).rules, rule, 1)
      }
      if (reason.field !== undefined && firstOfField) add(counts.fields, short(reason.field), 1)
      // A sink's "in" and "invalid" are what it wrote and what it turned away; a transform's are its own counts.
      if (bySink && firstOfTask) {
        const t = this.task(task)
        t.in++
        t.invalid++
      }
    }
  }

  /** Takes the once-a-second copy. */
  sample(at: number): void {
    const c = this.counters
    this.minute.push({ at, counters: copyCounters(c) })
    this.quarter.push({ at, consumed: c.consumed, deadLettered: c.deadLettered, written: new Map(c.written) })
  }

  /** The copy to subtract for "the last minute": a minute old, or nothing when the service is younger. */
  minuteAgo(now: number): Sample {
    if (now - this.startedAt <= 60_000) return { at: this.startedAt, counters: emptyCounters() }
    const samples = this.minute.toArray()
    return (
      samples.find((s) => s.at >= now - 60_000) ??
      samples[samples.length - 1] ?? { at: now, counters: copyCounters(this.counters) }
    )
  }
}
