/**
 * The live status behind the page on METRICS__PORT (`/` and `/status.json`). The pipeline feeds
 * it: each batch adds its counts through `StatusFeed` (plain additions), and the running
 * pipeline attaches what it knows now (the plan, the partitions, lag and stalls). A sampler
 * copies the counters once a second for the last minute and the last 15 minutes. Reading a
 * snapshot touches memory only, so the page keeps answering while the pipeline is stalled.
 */
import { createHash } from "node:crypto"
import { Clock, Context, Effect, Layer, Schedule, type Scope } from "effect"
import { AppConfig, type AppSettings, describeSettings } from "../../Config/AppConfig.js"
import type { PipelineSpec } from "../../Config/PipelineSpec.js"
import { type LagSnapshot, snapshotOf as lagSnapshot } from "../ConsumerLag.js"
import { scrub, secretsOfSettings } from "../Redaction.js"
import { type BatchCounts, Board, type DeadLetterReasons, type TaskRun } from "./Board.js"
import { type Observed, type StatusSnapshot, snapshotOf } from "./Snapshot.js"

export type { StatusSnapshot } from "./Snapshot.js"

/** What a batch tells the status page; every method is a few additions. */
export interface StatusFeedShape {
  readonly tasksRan: (tasks: ReadonlyArray<TaskRun>) => void
  readonly taskCounted: (
    task: string,
    stats: { readonly [counter: string]: number },
    output: ReadonlyArray<{ readonly status: string }>,
  ) => void
  readonly batchWritten: (batch: BatchCounts, deadLetters: ReadonlyArray<DeadLetterReasons>) => void
}

const noFeed: StatusFeedShape = {
  tasksRan: () => undefined,
  taskCounted: () => undefined,
  batchWritten: () => undefined,
}

/** Where batches report to the status page: nowhere, unless the running service provides its board. */
export const StatusFeed = Context.Reference<StatusFeedShape>("pipeline/StatusFeed", {
  defaultValue: () => noFeed,
})

export interface StatusSources {
  /** The plan running now. */
  readonly plan: Effect.Effect<{
    readonly spec: PipelineSpec
    readonly generation: number
    readonly loadedAt: number
  }>
  readonly joined: Effect.Effect<boolean>
  readonly assigned: Effect.Effect<ReadonlyArray<number>>
  readonly committed: Effect.Effect<ReadonlyMap<number, { readonly offset: string; readonly at: number }>>
  readonly lag: Effect.Effect<LagSnapshot>
  readonly stalls: Effect.Effect<Observed["stalls"]>
  readonly batchAges: (now: number) => ReadonlyMap<number, number>
}

export interface StatusShape {
  readonly feed: StatusFeedShape
  /** Reports the pipeline's live state from `sources` until the scope closes (then "stopping"). */
  readonly attach: (sources: StatusSources) => Effect.Effect<void, never, Scope.Scope>
  readonly snapshot: Effect.Effect<StatusSnapshot>
}

const digestOf = (spec: PipelineSpec) =>
  createHash("sha256").update(JSON.stringify(spec)).digest("hex").slice(0, 12)

export const make = (settings: AppSettings): Effect.Effect<StatusShape, never, Scope.Scope> =>
  Effect.gen(function* () {
    const board = new Board(yield* Clock.currentTimeMillis)
    yield* Clock.currentTimeMillis.pipe(
      Effect.map((now) => board.sample(now)),
      Effect.repeat(Schedule.fixed("1 second")),
      Effect.forkScoped,
    )
    // The page may be seen by more people than the logs: it never shows the SASL user name
    // (Confluent Cloud's API key) either, nor anything that repeats it.
    const sasl = settings.kafka.sasl
    const secrets = [...secretsOfSettings(settings), ...(sasl === undefined ? [] : [sasl.username])]
    const shown: AppSettings =
      sasl === undefined
        ? settings
        : {
            ...settings,
            kafka: { ...settings.kafka, sasl: { ...sasl, username: "<hidden:KAFKA__API_KEY>" } },
          }
    const settingsView: unknown = JSON.parse(scrub(describeSettings(shown), secrets))
    const clean = (text: string) => {
      const scrubbed = scrub(text, secrets)
      return scrubbed.length > 300 ? `${scrubbed.slice(0, 299)}…` : scrubbed
    }
    let sources: StatusSources | undefined
    let detached = false
    let digest = { generation: 0, value: "" }

    const observe = (now: number): Effect.Effect<Observed> => {
      const from = sources
      if (from === undefined) {
        return Effect.succeed({
          plan: undefined,
          digest: "",
          detached,
          joined: false,
          assigned: [],
          committed: new Map(),
          lag: lagSnapshot(new Map(), "none"),
          stalls: [],
          batchAges: new Map(),
        })
      }
      return Effect.all({
        plan: from.plan,
        joined: from.joined,
        assigned: from.assigned,
        committed: from.committed,
        lag: from.lag,
        stalls: from.stalls,
      }).pipe(
        Effect.map((o) => {
          if (digest.generation !== o.plan.generation)
            digest = { generation: o.plan.generation, value: digestOf(o.plan.spec) }
          return {
            ...o,
            digest: digest.value,
            detached,
            stalls: o.stalls.map((s) => ({ ...s, error: clean(s.error) })),
            batchAges: from.batchAges(now),
          }
        }),
      )
    }

    return {
      feed: {
        tasksRan: (tasks) => board.tasksRan(tasks),
        taskCounted: (task, stats, output) => board.taskCounted(task, stats, output),
        batchWritten: (batch, deadLetters) => board.batchWritten(batch, deadLetters),
      },
      attach: (attached) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            sources = attached
            detached = false
          }),
          () =>
            Effect.sync(() => {
              detached = true
            }),
        ),
      snapshot: Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const observed = yield* observe(now)
        return snapshotOf(board, observed, settings, settingsView, now)
      }),
    }
  })

export class Status extends Context.Service<Status, StatusShape>()("pipeline/Status") {
  static readonly layer = Layer.effect(
    Status,
    Effect.gen(function* () {
      return yield* make(yield* AppConfig)
    }),
  )
}
