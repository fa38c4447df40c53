/**
 * What a batch adds to the metrics and to the status page: each task's time, retries and
 * failure (with a DEBUG line per task in the batch's logs), and the batch's records by where
 * they ended.
 */
import { Effect, Metric } from "effect"
import type { DagResult } from "../Dag/Executor.js"
import * as Metrics from "../Observability/Metrics.js"
import { StatusFeed } from "../Observability/Status/Status.js"
import type { BatchSummary } from "./Batch.js"
import type { DeadLetter } from "./Classify.js"
import type { PlannedSink, StageError } from "./PipelineDag.js"
import type { SinkRun } from "./Writes.js"

type TaskRun = DagResult<Record<string, unknown>, StageError>["tasks"][number]

export const recordTasks = (result: DagResult<Record<string, unknown>, StageError>) =>
  recordRuns(result.tasks)

/** Each sink's write of the batch, counted like a task's run (a sink's run never fails: it isolates). */
export const recordSinkRuns = (sinks: ReadonlyArray<PlannedSink>, runs: ReadonlyArray<SinkRun>) =>
  recordRuns(
    sinks.map(
      (planned, i): TaskRun => ({
        _tag: "Succeeded",
        name: planned.sink.name,
        attempts: Math.max(1, runs[i]!.attempts),
        durationMs: runs[i]!.durationMs,
        output: undefined,
      }),
    ),
  )

const recordRuns = (tasks: ReadonlyArray<TaskRun>) =>
  Effect.forEach(
    tasks,
    (t) => {
      const task = { task: t.name }
      return Effect.all([
        Metric.update(Metric.withAttributes(Metrics.taskDuration, task), t.durationMs / 1000),
        t.attempts > 1
          ? Metric.update(Metric.withAttributes(Metrics.taskRetries, task), t.attempts - 1)
          : Effect.void,
        t._tag === "Failed"
          ? Metric.update(Metric.withAttributes(Metrics.taskFailures, task), 1)
          : Effect.void,
        // The executor logs only failures; this line gives every task's time in the batch's logs.
        Effect.logDebug(`task ${t.name} ${t._tag.toLowerCase()} in ${t.durationMs} ms`).pipe(
          Effect.annotateLogs({
            task: t.name,
            outcome: t._tag,
            duration_ms: t.durationMs,
            attempts: t.attempts,
          }),
        ),
      ])
    },
    { discard: true },
  ).pipe(Effect.andThen(StatusFeed.useSync((feed) => feed.tasksRan(tasks))))

const countBy = <A>(items: ReadonlyArray<A>, key: (a: A) => string): ReadonlyMap<string, number> => {
  const counts = new Map<string, number>()
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1)
  return counts
}

export const recordBatch = (
  summary: BatchSummary,
  deadLetters: ReadonlyArray<DeadLetter>,
  elapsedMs: number,
) =>
  Effect.gen(function* () {
    const feed = yield* StatusFeed
    feed.batchWritten(summary, deadLetters)
    yield* Metric.update(Metrics.recordsConsumed, summary.consumed)
    yield* Metric.update(Metrics.recordsValid, summary.valid)
    yield* Metric.update(Metrics.recordsDuplicate, summary.duplicates)
    yield* Metric.update(Metrics.recordsFiltered, summary.filtered)
    if (summary.tombstonesApplied > 0)
      yield* Metric.update(
        Metric.withAttributes(Metrics.tombstones, { action: "applied" }),
        summary.tombstonesApplied,
      )
    if (summary.tombstonesIgnored > 0)
      yield* Metric.update(
        Metric.withAttributes(Metrics.tombstones, { action: "ignored" }),
        summary.tombstonesIgnored,
      )
    for (const [sink, n] of Object.entries(summary.written)) {
      yield* Metric.update(Metric.withAttributes(Metrics.recordsWritten, { sink }), n)
    }
    for (const [stage, n] of countBy(deadLetters, (d) => d.stage)) {
      yield* Metric.update(Metric.withAttributes(Metrics.recordsDeadLettered, { stage }), n)
    }
    const firstReason = (d: DeadLetter) => {
      const first = d.reasons[0]
      return first === undefined ? "unknown" : `${first.task}/${first.rule}`
    }
    for (const [reason, n] of countBy(deadLetters, firstReason)) {
      yield* Metric.update(Metric.withAttributes(Metrics.recordsInvalid, { reason }), n)
    }
    yield* Metric.update(Metrics.batchDuration, elapsedMs / 1000)
    yield* Metric.update(Metrics.batchesProcessed, 1)
  })
