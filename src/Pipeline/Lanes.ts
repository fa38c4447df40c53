/**
 * The order of writes within a partition. Chunks of one fetch are processed several at a time
 * (PIPELINE__BATCHES_IN_FLIGHT), but each sink writes them in offset order: a chunk's write to
 * a sink starts once the chunk before it (Chunk.previous) has written to that sink, so a later
 * version of a key is never overwritten by an earlier one. Parsing, the transforms and the
 * dead-letter sends do not wait. Lanes are per sink kind, which a reloaded pipeline keeps, and
 * live as long as the chunks: a fetch's chunks are all done before its next fetch.
 */
import { Deferred, Effect } from "effect"
import type { Chunk } from "../Kafka/KafkaSource.js"
import type { SinkStage } from "./Sinks.js"

const stages: ReadonlyArray<SinkStage> = ["mongodb_sink", "kafka_sink"]

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

  /** Runs `write` in the chunk's turn on the sink's lane, and passes the turn on whatever happens. */
  inTurn<A, E, R>(chunk: Chunk, stage: SinkStage, write: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    const previous = chunk.previous
    const wait = previous === undefined ? Effect.void : Deferred.await(this.lane(previous, stage))
    return Effect.andThen(wait, write).pipe(
      Effect.ensuring(Deferred.succeed(this.lane(chunk, stage), undefined)),
    )
  }

  /** Passes every turn of the chunk on (it writes no more): for a chunk that ends before its sinks. */
  release(chunk: Chunk): Effect.Effect<void> {
    return Effect.forEach(stages, (stage) => Deferred.succeed(this.lane(chunk, stage), undefined), {
      discard: true,
    })
  }
}
