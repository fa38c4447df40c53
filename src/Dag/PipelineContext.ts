/**
 * What every task of one DAG run sees besides its dependencies' outputs: the batch's
 * correlation id, where the batch came from, its payload and its counters. Generic over the
 * payload so that the engine stays ignorant of the record model (the pipeline puts its records
 * and their per-record outcomes there). Counters live in the context, one set per run, so
 * concurrent batches never share mutable state.
 */
import { Effect } from "effect"

export interface SourceCoordinates {
  readonly topic: string
  readonly partition: number
  /** Kafka offsets as kafkajs reports them: decimal strings, since they can exceed 2^53. */
  readonly firstOffset: string
  readonly lastOffset: string
}

export interface Counters {
  readonly increment: (name: string, by?: number) => Effect.Effect<void>
  readonly get: (name: string) => Effect.Effect<number>
  readonly snapshot: Effect.Effect<Readonly<Record<string, number>>>
}

export interface PipelineContext<out P> {
  readonly correlationId: string
  readonly source: SourceCoordinates
  readonly payload: P
  readonly counters: Counters
}

const makeCounters = (): Counters => {
  // Safe without a Ref: fibers interleave only at effect boundaries, never inside a sync block.
  const values = new Map<string, number>()
  return {
    increment: (name, by = 1) => Effect.sync(() => void values.set(name, (values.get(name) ?? 0) + by)),
    get: (name) => Effect.sync(() => values.get(name) ?? 0),
    snapshot: Effect.sync(() => Object.fromEntries(values)),
  }
}

export const make = <P>(options: {
  readonly correlationId: string
  readonly source: SourceCoordinates
  readonly payload: P
}): Effect.Effect<PipelineContext<P>> =>
  Effect.sync(() => ({
    correlationId: options.correlationId,
    source: options.source,
    payload: options.payload,
    counters: makeCounters(),
  }))
