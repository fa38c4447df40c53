/**
 * The order of writes within a partition. Batches of one fetch are processed several at a time
 * (PIPELINE__BATCHES_IN_FLIGHT), but each sink kind writes them in offset order: a batch's
 * writes to the sinks of a kind start once the batch before it (Batch.previous) has finished
 * all of its writes of that kind, so a later version of a key is never overwritten by an
 * earlier one. Parsing, the transforms and the dead-letter sends do not wait. Lanes are per sink
 * kind, which a reloaded pipeline keeps, and live as long as the batches: a fetch's batches are
 * all done before its next fetch.
 */
import { Deferred, Effect } from "effect"
import { sinkTypes } from "../Config/SinkKinds.js"
import type { Batch } from "../Kafka/KafkaSource.js"
import type { SinkStage } from "./Sinks.js"

export const sinkStages: ReadonlyArray<SinkStage> = sinkTypes

/** The lanes of one batch: one turn per sink kind. */
type Turns = Map<SinkStage, Deferred.Deferred<void>>

export class WriteLanes {
  // Per partition, by sequence number.
  private readonly lanes = new Map<number, Map<number, Turns>>()

  private lane(partition: number, sequence: number, stage: SinkStage): Deferred.Deferred<void> {
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
      lane = Deferred.makeUnsafe<void>()
      turns.set(stage, lane)
    }
    return lane
  }

  private pass(batch: Batch, stage: SinkStage): Effect.Effect<void> {
    return Deferred.succeed(this.lane(batch.partition, batch.sequence, stage), undefined).pipe(Effect.asVoid)
  }

  /** The batch before this one has passed every turn: its lanes are needed no more. */
  private forgetBefore(batch: Batch): Effect.Effect<void> {
    return Effect.sync(() => void this.lanes.get(batch.partition)?.delete(batch.sequence - 1))
  }

  /**
   * Runs `write` in the batch's turn on the kind's lane, and passes the turn on whatever
   * happens. `write` holds all of the batch's writes of that kind: the turn passes when it ends.
   */
  inTurn<A, E, R>(batch: Batch, stage: SinkStage, write: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    const wait =
      batch.sequence <= 1
        ? Effect.void
        : Deferred.await(this.lane(batch.partition, batch.sequence - 1, stage))
    return Effect.andThen(wait, write).pipe(Effect.ensuring(this.pass(batch, stage)))
  }

  /**
   * For a batch that is done: each turn it did not take is passed on once the batch before it
   * has passed it, so that a batch with no writes of a kind never lets a later one overtake an
   * earlier one.
   */
  releaseInTurn(batch: Batch): Effect.Effect<void> {
    return Effect.forEach(sinkStages, (stage) => this.inTurn(batch, stage, Effect.void), {
      concurrency: "unbounded",
      discard: true,
    }).pipe(Effect.andThen(this.forgetBefore(batch)))
  }

  /**
   * For a batch given up (abandoned, interrupted): every turn passed on at once. Nothing after
   * it is committed, so what it did not write is read and written again, in order.
   */
  release(batch: Batch): Effect.Effect<void> {
    return Effect.forEach(sinkStages, (stage) => this.pass(batch, stage), { discard: true })
  }
}
