/**
 * The order of writes within a partition. Chunks of one fetch are processed several at a time
 * (PIPELINE__BATCHES_IN_FLIGHT), but each sink kind writes them in offset order: a chunk's
 * writes to the sinks of a kind start once the chunk before it (Chunk.previous) has finished
 * all of its writes of that kind, so a later version of a key is never overwritten by an
 * earlier one. Parsing, the transforms and the dead-letter sends do not wait. Lanes are per sink
 * kind, which a reloaded pipeline keeps, and live as long as the chunks: a fetch's chunks are
 * all done before its next fetch.
 */
import { Deferred, Effect } from "effect"
import type { Chunk } from "../Kafka/KafkaSource.js"
import type { SinkStage } from "./Sinks.js"

export const sinkStages: ReadonlyArray<SinkStage> = ["mongodb_sink", "kafka_sink"]

export class WriteLanes {
  private readonly lanes = new WeakMap<Chunk, Map<SinkStage, Deferred.Deferred<void>>>()

  private lane(chunk: Chunk, stage: SinkStage): Deferred.Deferred<void> {
    let byStage = this.lanes.get(chunk)
    if (byStage === undefined) {
      byStage = new Map()
      this.lanes.set(chunk, byStage)
    }
    let lane = byStage.get(stage)
    if (lane === undefined) {
      lane = Deferred.makeUnsafe<void>()
      byStage.set(stage, lane)
    }
    return lane
  }

  private pass(chunk: Chunk, stage: SinkStage): Effect.Effect<void> {
    return Deferred.succeed(this.lane(chunk, stage), undefined).pipe(Effect.asVoid)
  }

  /**
   * Runs `write` in the chunk's turn on the kind's lane, and passes the turn on whatever
   * happens. `write` holds all of the chunk's writes of that kind: the turn passes when it ends.
   */
  inTurn<A, E, R>(chunk: Chunk, stage: SinkStage, write: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    const previous = chunk.previous
    const wait = previous === undefined ? Effect.void : Deferred.await(this.lane(previous, stage))
    return Effect.andThen(wait, write).pipe(Effect.ensuring(this.pass(chunk, stage)))
  }

  /**
   * For a chunk that is done: each turn it did not take is passed on once the chunk before it
   * has passed it, so that a chunk with no writes of a kind never lets a later one overtake an
   * earlier one.
   */
  releaseInTurn(chunk: Chunk): Effect.Effect<void> {
    return Effect.forEach(sinkStages, (stage) => this.inTurn(chunk, stage, Effect.void), {
      concurrency: "unbounded",
      discard: true,
    })
  }

  /**
   * For a chunk given up (abandoned, interrupted): every turn passed on at once. Nothing after
   * it is committed, so what it did not write is read and written again, in order.
   */
  release(chunk: Chunk): Effect.Effect<void> {
    return Effect.forEach(sinkStages, (stage) => this.pass(chunk, stage), { discard: true })
  }
}
