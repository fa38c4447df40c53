/**
 * The backoff of the whole service, built in one place: exponential from a base delay, each
 * delay jittered and then capped. `retryPolicy` adds the limit of `retryCount` retries; the
 * DAG executor runs every task through it (`withRetry`, with a per-task override), and the
 * pipeline's stall loop uses `backoff` alone, so every wait in the service grows the same way.
 */
import { type Duration, Effect, Schedule } from "effect"

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

export const noRetry: RetrySettings = { retryCount: 0, baseDelay: 0, maxDelay: 0, jitter: false }

/** The delays without an end; its input is ignored, so it fits any error type. */
export const backoff = (
  settings: Omit<RetrySettings, "retryCount">,
): Schedule.Schedule<Duration.Duration, unknown> => {
  const growing = Schedule.exponential(settings.baseDelay, 2)
  // Jitter before the cap, so that a jittered delay never exceeds maxDelay.
  return Schedule.min([
    settings.jitter === false ? growing : Schedule.jittered(growing),
    Schedule.spaced(settings.maxDelay),
  ])
}

/** The backoff, at most `retryCount` times. */
export const retryPolicy = (settings: RetrySettings): Schedule.Schedule<Duration.Duration, unknown> =>
  backoff(settings).pipe(Schedule.upTo({ times: Math.max(0, Math.floor(settings.retryCount)) }))

/** Retries `effect` by the policy, but only while `isRetryable` says the error is worth another try. */
export const withRetry = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  settings: RetrySettings,
  isRetryable: (error: E) => boolean,
): Effect.Effect<A, E, R> =>
  settings.retryCount < 1
    ? effect
    : Effect.retry(effect, { schedule: retryPolicy(settings), while: isRetryable })
