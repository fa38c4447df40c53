/**
 * The order of writes within a partition. Batches of a partition are processed several at a
 * time (PIPELINE__BATCHES_IN_FLIGHT), but each sink kind writes them in offset order: a batch's
 * writes to the sinks of a kind start once the batch before it (the one with the sequence number
 * before its own) has finished all of its writes of that kind, so a later version
 * of a key is never overwritten by an earlier one. Parsing, the transforms and the dead-letter
 * sends do not wait. A turn passes on whether the batch was written or given up; a turn that
 * requires the batches before it to be written (exactly_once's transaction: nothing may commit past
 * a batch given up) fails when one was not. Lanes are per sink kind, which a reloaded pipeline
 * keeps; a batch handed over when none of its partition was in flight waits for none, and a batch's lanes
 * are forgotten once the batch after it is done.
 */
import { Deferred, Effect, Exit } from "effect"
import { sinkTypes } from "../Config/SinkKinds.js"
import { type Batch, BatchAbandoned } from "../Kafka/KafkaSource.js"
import type { SinkStage } from "./Sinks.js"

export const sinkStages: ReadonlyArray<SinkStage> = sinkTypes

/** The lanes of one batch: one turn per sink kind, passed with whether the batch and every one before it were written. */
type Turns = Map<SinkStage, Deferred.Deferred<boolean>>

export class WriteLanes {
  // Per partition, by sequence number.
  private readonly lanes = new Map<number, Map<number, Turns>>()

  private lane(partition: number, sequence: number, stage: SinkStage): Deferred.Deferred<boolean> {
    let ofPartition = this.lanes.get(partition)
    if (ofPartition === undefined) {
      ofPartition = new Map()
      this.lanes.set(partition, ofPartition)
    }
    let turns = ofPartition.get(sequence)
    if (turns === undefined) {
      turns = new Map()
      ofPartition.set(sequence, turns)
    }
    let lane = turns.get(stage)
    if (lane === undefined) {
      lane = Deferred.makeUnsafe<boolean>()
      turns.set(stage, lane)
    }
    return lane
  }

  private pass(batch: Batch, stage: SinkStage, written: boolean): Effect.Effect<void> {
    return Deferred.succeed(this.lane(batch.partition, batch.sequence, stage), written).pipe(Effect.asVoid)
  }

  /** Waits for the batch before this one to pass its turn: whether it and every one before it were written. */
  private before(batch: Batch, stage: SinkStage): Effect.Effect<boolean> {
    return batch.afterSettled || batch.sequence <= 1
      ? Effect.succeed(true)
      : Deferred.await(this.lane(batch.partition, batch.sequence - 1, stage))
  }

  /** The batch before this one has passed every turn: its lanes are needed no more. */
  private forgetBefore(batch: Batch): Effect.Effect<void> {
    return Effect.sync(() => void this.lanes.get(batch.partition)?.delete(batch.sequence - 1))
  }

  /**
   * Runs `write` in the batch's turn on the kind's lane, and passes the turn on whatever
   * happens. `write` holds all of the batch's writes of that kind: the turn passes when it ends.
   * With `afterWritten`, the batch is given up instead when one before it was.
   */
  inTurn<A, E, R>(
    batch: Batch,
    stage: SinkStage,
    write: Effect.Effect<A, E, R>,
    options: { readonly afterWritten?: boolean } = {},
  ): Effect.Effect<A, E | BatchAbandoned, R> {
    return Effect.flatMap(
      this.before(batch, stage),
      (written): Effect.Effect<A, E | BatchAbandoned, R> =>
        !written && options.afterWritten === true
          ? Effect.fail(
              new BatchAbandoned({
                reason: `a batch before offsets ${batch.firstOffset}-${batch.lastOffset} of partition ${batch.partition} was given up: nothing is committed past it, so this one is read again after it`,
              }),
            )
          : write.pipe(Effect.onExit((exit) => this.pass(batch, stage, written && Exit.isSuccess(exit)))),
    ).pipe(Effect.onExit((exit) => (Exit.isFailure(exit) ? this.pass(batch, stage, false) : Effect.void)))
  }

  /**
   * For a batch that is done: each turn it did not take is passed on once the batch before it
   * has passed it, so that a batch with no writes of a kind never lets a later one overtake an
   * earlier one.
   */
  releaseInTurn(batch: Batch): Effect.Effect<void> {
    return Effect.forEach(
      sinkStages,
      (stage) => Effect.flatMap(this.before(batch, stage), (written) => this.pass(batch, stage, written)),
      { concurrency: "unbounded", discard: true },
    ).pipe(Effect.andThen(this.forgetBefore(batch)))
  }

  /**
   * For a batch given up (abandoned, interrupted): every turn passed on at once, as not written.
   * Nothing after it is committed, so what it did not write is read and written again, in order.
   */
  release(batch: Batch): Effect.Effect<void> {
    return Effect.forEach(sinkStages, (stage) => this.pass(batch, stage, false), { discard: true })
  }
}
