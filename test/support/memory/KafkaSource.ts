/**
 * The in-memory stand-in for src/Kafka/KafkaSource.ts: batches appended to the state's log are
 * taken by one worker, like one partition at a time, and committed once handled.
 */
import { Effect, Option, Queue } from "effect"
import { type Batch, KafkaSource } from "../../../src/Kafka/KafkaSource.js"
import type { State } from "./State.js"

export const memorySource = (state: State, pending: Queue.Queue<Batch>, onCommit: Effect.Effect<void>) =>
  KafkaSource.of({
    consume: (handle) =>
      Effect.forkScoped(
        Effect.forever(
          Effect.gen(function* () {
            const batch = yield* Queue.take(pending)
            yield* handle(batch)
            state.committed.set(batch.partition, Number(batch.lastOffset) + 1)
            yield* onCommit
          }),
        ),
      ).pipe(Effect.asVoid),
    crashed: Effect.never,
    joined: Effect.succeed(true),
    commitFailure: Effect.sync(() =>
      state.commitFailure === undefined
        ? Option.none()
        : Option.some({ since: Date.now() - 5_000, error: state.commitFailure }),
    ),
    assigned: Effect.sync(() => [...state.log.keys()].sort((a, b) => a - b)),
    committed: Effect.sync(
      () =>
        new Map(
          [...state.committed].map(([p, offset]) => [
            p,
            {
              offset: String(offset),
              highWatermark: String(state.log.get(p)?.length ?? 0),
              at: Date.now(),
            },
          ]),
        ),
    ),
  })
