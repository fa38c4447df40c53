/**
 * Hot reload of the pipeline definition. A change to PIPELINE__FILE (debounced, since editors
 * write in several steps) or a SIGHUP loads and checks the file again and builds a new plan;
 * the new plan takes the next batch, while a batch in flight finishes with the plan it started
 * with. A file with problems is rejected, its problems logged, and the running plan stays.
 * Only the definition is reloaded: the environment settings are the ones read at start.
 * A new plan has new transforms, so the duplicate check's window starts empty.
 */
import { watch } from "node:fs"
import { basename, dirname } from "node:path"
import { Clock, Duration, Effect, Metric, Queue, Ref, type Scope, Stream } from "effect"
import type { PipelineSpec } from "../Config/PipelineSpec.js"
import * as Metrics from "../Observability/Metrics.js"

export type Trigger = "file" | "SIGHUP"

export interface Active<A> {
  readonly spec: PipelineSpec
  readonly value: A
  /** 1 for the plan the service started with, +1 per reload applied. */
  readonly generation: number
  /** Unix ms when this plan was loaded (at start, or by the reload that applied it). */
  readonly loadedAt: number
}

export interface ReloaderOptions<A> {
  readonly file: string
  readonly initial: { readonly spec: PipelineSpec; readonly value: A }
  readonly load: (file: string) => Effect.Effect<PipelineSpec, { readonly message: string }>
  readonly build: (spec: PipelineSpec) => Effect.Effect<A, { readonly message: string }>
  /** One line naming the plan's tasks, for the log. */
  readonly describe: (value: A) => string
}

export interface Reloader<A> {
  readonly current: Effect.Effect<Active<A>>
  readonly reload: (trigger: Trigger) => Effect.Effect<void>
}

const outcome = (name: "applied" | "rejected" | "unchanged") =>
  Metric.update(Metric.withAttributes(Metrics.reloads, { outcome: name }), 1)

// The decoded definition, not the text: comments and layout changes are not changes.
const sameSpec = (a: PipelineSpec, b: PipelineSpec) => JSON.stringify(a) === JSON.stringify(b)

export const makeReloader = <A>(options: ReloaderOptions<A>): Effect.Effect<Reloader<A>> =>
  Effect.gen(function* () {
    const ref = yield* Ref.make<Active<A>>({
      ...options.initial,
      generation: 1,
      loadedAt: yield* Clock.currentTimeMillis,
    })
    const { file } = options

    const reject = (trigger: Trigger, error: { readonly message: string }) =>
      Effect.logError(
        `pipeline reload rejected: ${file} has problems; the running pipeline is unchanged`,
      ).pipe(
        Effect.annotateLogs({
          file,
          trigger,
          problems: error.message
            .split("\n")
            .map((line) => line.trim())
            .filter((line) => line !== ""),
        }),
        Effect.andThen(outcome("rejected")),
      )

    const reload = (trigger: Trigger): Effect.Effect<void> =>
      Effect.gen(function* () {
        const loaded = yield* Effect.result(options.load(file))
        if (loaded._tag === "Failure") return yield* reject(trigger, loaded.failure)
        const active = yield* Ref.get(ref)
        if (sameSpec(loaded.success, active.spec)) {
          // Saving a file without a change must not empty the duplicate window.
          const log = trigger === "SIGHUP" ? Effect.logInfo : Effect.logDebug
          return yield* log(`pipeline reload: ${file} has not changed; keeping the running plan`).pipe(
            Effect.andThen(outcome("unchanged")),
          )
        }
        const built = yield* Effect.result(options.build(loaded.success))
        if (built._tag === "Failure") return yield* reject(trigger, built.failure)
        const generation = active.generation + 1
        const loadedAt = yield* Clock.currentTimeMillis
        yield* Ref.set(ref, { spec: loaded.success, value: built.success, generation, loadedAt })
        yield* outcome("applied")
        yield* Effect.logInfo(
          `pipeline reloaded from ${file}: the next batch runs the new plan; the duplicate window starts empty; environment settings are unchanged (they are read at start only)`,
        ).pipe(
          Effect.annotateLogs({
            file,
            trigger,
            generation,
            pipeline: loaded.success.name ?? "pipeline",
            tasks: options.describe(built.success),
          }),
        )
      }).pipe(Effect.annotateLogs({ reload: trigger }))

    return { current: Ref.get(ref), reload }
  })

/**
 * Reload requests: SIGHUP, and changes in the file's directory that concern the file. The
 * directory is watched rather than the file because editors and Kubernetes ConfigMap updates
 * replace the file (a new inode), which a watch on the file itself would miss. Both are in
 * place when this returns, and removed when the scope closes.
 */
const listen = (file: string, queue: Queue.Enqueue<Trigger>): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const onHangup = () => void Queue.offerUnsafe(queue, "SIGHUP")
      process.on("SIGHUP", onHangup)
      const name = basename(file)
      const watcher = yield* Effect.try(() =>
        watch(dirname(file), (_event, changed) => {
          // Kubernetes swaps a `..data` symlink; a null name means the platform did not say.
          if (changed === null || changed === name || changed.startsWith("..")) {
            Queue.offerUnsafe(queue, "file")
          }
        }),
      ).pipe(
        Effect.tapError((e) =>
          Effect.logWarning(
            `hot reload on file change is off (cannot watch ${dirname(file)}); SIGHUP still reloads`,
          ).pipe(Effect.annotateLogs({ error: String(e.cause) })),
        ),
        Effect.option,
      )
      return { onHangup, watcher }
    }),
    ({ onHangup, watcher }) =>
      Effect.sync(() => {
        process.removeListener("SIGHUP", onHangup)
        if (watcher._tag === "Some") watcher.value.close()
      }),
  )

/** Applies reload requests, debounced and one at a time, until the scope closes. */
export const watchAndReload = <A>(
  reloader: Reloader<A>,
  file: string,
  debounce: Duration.Duration = Duration.millis(500),
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const requests = yield* Queue.unbounded<Trigger>()
    yield* listen(file, requests)
    yield* Stream.fromQueue(requests).pipe(
      Stream.debounce(debounce),
      // A bug in one reload must not end the watching: log it and wait for the next request.
      Stream.runForEach((trigger) =>
        reloader
          .reload(trigger)
          .pipe(Effect.catchDefect((defect) => Effect.logError("pipeline reload failed", defect))),
      ),
      Effect.forkScoped,
    )
  })
