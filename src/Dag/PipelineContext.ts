/**
 * What every task of one DAG run sees besides its dependencies' outputs: the batch's
 * correlation id, where the batch came from, and its payload. Generic over the payload so
 * that the engine stays ignorant of the record model (the pipeline puts its records there).
 */
import { Effect } from "effect"

export interface SourceCoordinates {
  readonly topic: string
  readonly partition: number
  /** Kafka offsets as kafkajs reports them: decimal strings, since they can exceed 2^53. */
  readonly firstOffset: string
  readonly lastOffset: string
}

export interface PipelineContext<out P> {
  readonly correlationId: string
  readonly source: SourceCoordinates
  readonly payload: P
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
  }))
