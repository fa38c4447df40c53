/**
 * How a batch reaches the sinks and the dead-letter topic, by delivery mode (KAFKA__DELIVERY):
 * AtLeastOnce.ts writes the sinks and sends the dead letters side by side and lets the source
 * commit; ExactlyOnce.ts writes MongoDB, then sends the Kafka side and the offset in one
 * transaction. Both are built from the parts here: the dead letters as messages, and every sink
 * of a kind written in the batch's turn on the kind's lane, its records and then the batch's
 * tombstones (or, for a sink that applies deletes first, MongoDB, the tombstones and then the
 * records they do not delete).
 */
import { Clock, Effect } from "effect"
import type { KafkaMessage } from "kafkajs"
import type { Batch, BatchAbandoned } from "../Kafka/KafkaSource.js"
import type { ProducerShape } from "../Kafka/Producer.js"
import type { Admission } from "./Admission.js"
import type { Classified, DeadLetter, Rejection } from "./Classify.js"
import type { WriteLanes } from "./Lanes.js"
import { deadLetterMessage } from "./Messages.js"
import type { Tombstone } from "./Parse.js"
import type { PipelinePlan } from "./PipelineDag.js"
import { type SinkStage, splitByDeletes } from "./Sinks.js"
import type { WindowKeys, Windows } from "./Windows.js"
import type { makeWrites, SinkRun, WriteScope } from "./Writes.js"

/** Where the records of a delivered batch ended, and what each sink wrote. */
export interface Delivered extends Classified {
  readonly written: Readonly<Record<string, number>>
  /** Each sink's part, by its index in plan.sinks. */
  readonly runs: ReadonlyArray<SinkRun>
}

/** What a batch brings to its delivery, once the DAG has run and admission has decided. */
export interface Admitted {
  readonly batch: Batch
  readonly scope: WriteScope
  readonly admission: Admission
  /** Where each record ends, given the records the sinks turned away. */
  readonly classifyWith: (rejections: ReadonlyArray<Rejection>) => Classified
  /** The dead letters of the messages that were not records. */
  readonly malformed: ReadonlyArray<DeadLetter>
  /** Tombstones every sink applies after its records (MONGODB__ON_TOMBSTONE=delete). */
  readonly tombstones: ReadonlyArray<Tombstone>
  /** The keys the batch leaves in the duplicate checks' durable windows, saved before its offsets are committed. */
  readonly windowKeys: ReadonlyArray<WindowKeys>
}

export interface Delivery {
  /** The batch's messages to work on (exactly_once: those the partition's earlier owner did not commit). */
  readonly unwritten: (
    batch: Batch,
    scope: WriteScope,
  ) => Effect.Effect<ReadonlyArray<KafkaMessage>, BatchAbandoned>
  /** The sinks and every dead letter of the batch, all of it written. */
  readonly deliver: (admitted: Admitted) => Effect.Effect<Delivered, BatchAbandoned>
  /** A batch that writes no sink (a transform failed, or a bug): its dead letters only. */
  readonly deadLettersOnly: (
    batch: Batch,
    scope: WriteScope,
    deadLetters: ReadonlyArray<DeadLetter>,
  ) => Effect.Effect<void, BatchAbandoned>
}

export interface DeliveryParts {
  readonly plan: PipelinePlan
  readonly writes: ReturnType<typeof makeWrites>
  readonly lanes: WriteLanes
  /** Cuts the dead letters to what the topic takes and sends them (`via` a transaction). */
  readonly sendDeadLetters: (
    deadLetters: ReadonlyArray<DeadLetter>,
    scope: WriteScope,
    via?: ProducerShape,
  ) => Effect.Effect<void, BatchAbandoned>
  /** Every sink of a kind, side by side; each sink's run goes into `runs` at its index in plan.sinks. */
  readonly writeKind: (
    admitted: Admitted,
    stage: SinkStage,
    runs: Array<SinkRun>,
    via?: ProducerShape,
  ) => Effect.Effect<void, BatchAbandoned>
  /** writeKind in the batch's one turn on the kind's lane: the next batch waits for all of them. */
  readonly writeKindInTurn: (
    admitted: Admitted,
    stage: SinkStage,
    runs: Array<SinkRun>,
    via?: ProducerShape,
  ) => Effect.Effect<void, BatchAbandoned>
  /** What each sink wrote, by name. */
  readonly writtenBy: (runs: ReadonlyArray<SinkRun>) => Readonly<Record<string, number>>
  /** Saves the batch's keys of the durable duplicate windows. */
  readonly saveWindows: (admitted: Admitted) => Effect.Effect<void>
}

export const deliveryParts = (options: {
  readonly plan: PipelinePlan
  readonly writes: ReturnType<typeof makeWrites>
  readonly lanes: WriteLanes
  readonly producer: ProducerShape
  readonly dlqTopic: string
  readonly windows: Windows
}): DeliveryParts => {
  const { plan, writes, lanes, producer, dlqTopic, windows } = options
  const writeKind: DeliveryParts["writeKind"] = (admitted, stage, runs, via) =>
    Effect.forEach(
      plan.sinks.flatMap((planned, i) => (planned.sink.stage === stage ? [i] : [])),
      (i) => {
        const planned = plan.sinks[i]!
        const records = admitted.admission.admitted.get(planned.sink.name) ?? []
        if (planned.sink.deletesFirst === true && admitted.tombstones.length > 0) {
          // Deletes, then the records that follow them: a key deleted and written again in one
          // batch ends written, and nothing it held before the delete survives a merge.
          const { superseded, due } = splitByDeletes(records, admitted.tombstones)
          return writes.removeFromSink(planned, admitted.tombstones, [], admitted.scope, via).pipe(
            Effect.andThen(writes.writeSink(planned, due, admitted.scope, via)),
            Effect.flatMap((run) =>
              Effect.sync(() => {
                runs[i] = { ...run, written: run.written + superseded.length }
              }),
            ),
          )
        }
        return Effect.flatMap(writes.writeSink(planned, records, admitted.scope, via), (run) => {
          runs[i] = run
          if (admitted.tombstones.length === 0) return Effect.void
          // After the records, in the same turn: a tombstone never overtakes a record before it.
          const rejected = new Set(run.rejected.map((r) => r.record))
          const written = records.filter((k) => !rejected.has(k.record))
          return writes.removeFromSink(planned, admitted.tombstones, written, admitted.scope, via)
        })
      },
      // A transaction's sends go one after another.
      { concurrency: via === undefined ? "unbounded" : 1, discard: true },
    )
  return {
    plan,
    writes,
    lanes,
    sendDeadLetters: (deadLetters, scope, via) =>
      Effect.gen(function* () {
        if (deadLetters.length === 0) return
        const now = yield* Clock.currentTimeMillis
        const limit = producer.maxMessageBytes(dlqTopic) - 1024
        const at = new Date(now)
        const messages = deadLetters.map((d) =>
          deadLetterMessage(scope.origin, d.message, d.stage, d.reasons, at, limit),
        )
        yield* writes.sendDeadLetters(messages, scope, now, via)
      }),
    writeKind,
    writeKindInTurn: (admitted, stage, runs, via) =>
      lanes.inTurn(admitted.batch, stage, writeKind(admitted, stage, runs, via)),
    writtenBy: (runs) =>
      Object.fromEntries(plan.sinks.map((planned, i) => [planned.sink.name, runs[i]!.written])),
    saveWindows: (admitted) => windows.save(admitted.batch, admitted.scope, admitted.windowKeys),
  }
}
