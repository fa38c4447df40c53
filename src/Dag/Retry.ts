/**
 * The retry policy of the whole service, built in one place: exponential backoff from a base
 * delay, each delay jittered and then capped, at most `retryCount` retries. The DAG executor
 * uses it for tasks (with a per-task override) and the rest of the app uses `withRetry` for its
 * own retries, so every backoff in the service behaves the same way.
 */
import { Duration, Effect, Schedule } from "effect"

export interface RetrySettings {
  /** Retries after the first attempt; 0 means a single attempt. */
  readonly retryCount: number
  /** First delay; each further delay doubles. */
  readonly baseDelay: Duration.Input
  /** Upper bound of every delay, jitter included. */
  readonly maxDelay: Duration.Input
  /** Scale each delay by a random factor in [0.8, 1.2] (default true); off where exact delays matter. */
  readonly jitter?: boolean
}

/** Long enough for a broker or a replica set to come back, short enough to notice a stall. */
export const defaultMaxDelay: Duration.Duration = Duration.minutes(1)

/** Settings as the environment spells them (PIPELINE__RETRY_COUNT, PIPELINE__RETRY_DELAY_SECONDS). */
export const fromConfig = (config: {
  readonly retryCount: number
  readonly retryDelaySeconds: number
  readonly maxDelay?: Duration.Input
}): RetrySettings => ({
  retryCount: config.retryCount,
  baseDelay: Duration.seconds(config.retryDelaySeconds),
  maxDelay: config.maxDelay ?? defaultMaxDelay,
})

export const noRetry: RetrySettings = { retryCount: 0, baseDelay: 0, maxDelay: 0, jitter: false }

/** The schedule; its input is ignored, so it fits any error type. */
export const retryPolicy = (settings: RetrySettings): Schedule.Schedule<Duration.Duration, unknown> => {
  const growing = Schedule.exponential(settings.baseDelay, 2)
  // Jitter before the cap, so that a jittered delay never exceeds maxDelay.
  return Schedule.min([
    settings.jitter === false ? growing : Schedule.jittered(growing),
    Schedule.spaced(settings.maxDelay),
  ]).pipe(Schedule.upTo({ times: Math.max(0, Math.floor(settings.retryCount)) }))
}

/** Retries `effect` by the policy, but only while `isRetryable` says the error is worth another try. */
export const withRetry = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  settings: RetrySettings,
  isRetryable: (error: E) => boolean,
): Effect.Effect<A, E, R> =>
  settings.retryCount < 1
    ? effect
    : Effect.retry(effect, { schedule: retryPolicy(settings), while: isRetryable })
