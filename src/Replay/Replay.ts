/**
 * `replay`: dead letters through the pipeline again, once a rule, a mapping or the data has been
 * fixed. Reads the dead-letter topic over a range (Range.ts) with a consumer group of its own,
 * which remembers how far it has read, and the ledger of what any replay replayed (Ledger.ts);
 * takes the dead letters the flags select and the ledger lacks (Selection.ts), gives each its
 * original bytes and headers back (Headers.ts), and runs them
 * through the service's own processor with the current pipeline file and settings: the same
 * transforms, admission, sinks, dead-letter topic and delivery mode (exactly_once: each batch's
 * Kafka writes and the group's offset in one transaction, as the service does). Each record
 * carries its original source position, which MongoDB's monotonic writes compare. A dry run does
 * all of that with sinks and a producer that write nothing, and commits nothing.
 */
import { Data, Duration, Effect, Layer, Runtime } from "effect"
import { AppConfig, type AppSettings } from "../Config/AppConfig.js"
import type { PipelineSpec } from "../Config/PipelineSpec.js"
import { KafkaAdmin } from "../Kafka/KafkaAdmin.js"
import { KafkaClient } from "../Kafka/KafkaClient.js"
import { KafkaProducer } from "../Kafka/Producer.js"
import { createMissingTopics } from "../Kafka/Topics.js"
import { KafkaTransactions } from "../Kafka/Transactions.js"
import { MongoDb } from "../Mongo/MongoDb.js"
import * as Logging from "../Observability/Logging.js"
import { secretsOfSettings } from "../Observability/Redaction.js"
import { fingerprintOf } from "./Fingerprint.js"
import { inspect, ReplayProblems, topicExists } from "./Inspect.js"
import { ensureLedger, ledgerTopicOf, loadLedger } from "./Ledger.js"
import type { ReplayOptions } from "./Options.js"
import { describeRange, groupPosition, type PartitionRange } from "./Range.js"
import { readRanges } from "./Reader.js"
import { makeReplayer } from "./Replayer.js"
import { progressLine, reportText, summaryOf } from "./Report.js"

/** The replay stopped after a failure, already logged (exit code 1). */
export class ReplayFailed extends Data.TaggedError("ReplayFailed") {
  override readonly [Runtime.errorExitCode]: number = 1
  override readonly [Runtime.errorReported] = false
}

/** Another replay of the same group is running: two at once would share its partitions. */
class GroupBusy extends Data.TaggedError("GroupBusy")<{ readonly group: string; readonly members: number }> {
  override get message() {
    return `group "${this.group}" has ${this.members} member(s) now: another replay of it is running (wait for it to end, or give this one another --group)`
  }
}

/** How often a progress line is written while the replay runs. */
export const progressEvery = Duration.seconds(5)

/** The service's settings as the replay's Kafka clients need them: its topic and its group take the source's place. */
const replaySettings = (settings: AppSettings, options: ReplayOptions): AppSettings => ({
  ...settings,
  kafka: { ...settings.kafka, topicSource: options.topic, consumerGroup: options.group },
})

const replayRanges = (settings: AppSettings, spec: PipelineSpec, options: ReplayOptions) =>
  Effect.gen(function* () {
    const exactlyOnce = settings.kafka.delivery === "exactly_once" && !options.dryRun
    const found = yield* inspect(options, settings.kafka.brokers)
    if (found.members > 0 && !options.dryRun)
      return yield* new GroupBusy({ group: options.group, members: found.members })
    const fingerprint = fingerprintOf(spec, settings)
    const ranges: ReadonlyArray<PartitionRange> = found.ranges
    const offsets = ranges.reduce((n, r) => n + Number(r.end - r.start), 0)
    yield* Effect.logInfo(
      options.dryRun ? "replay starting (dry run: nothing is written)" : "replay starting",
    ).pipe(
      Effect.annotateLogs({
        topic: options.topic,
        group: options.group,
        ranges: ranges.map(describeRange).join(", "),
        offsets,
        reasons: options.reasons.join(", "),
        keys: options.keys.length,
        max_replays: options.maxReplays,
        delivery: settings.kafka.delivery,
        pipeline_file: settings.pipeline.file,
        pipeline: fingerprint,
        dlq: settings.kafka.topicDlq,
        sink: settings.kafka.topicSink,
        mongodb: `${settings.mongodb.database}.${settings.mongodb.collection}`,
      }),
    )
    for (const note of found.notes) yield* Effect.logWarning(note)

    const ledger = ledgerTopicOf(options.topic)
    if (!options.dryRun && offsets > 0) {
      if (settings.kafka.createTopics) yield* ensureLedger(ledger, settings.kafka.brokers)
      else if (!(yield* topicExists(ledger, settings.kafka.brokers)))
        return yield* new ReplayProblems({
          problems: [
            `the replay ledger, topic "${ledger}", does not exist and KAFKA__CREATE_TOPICS is false: create it (cleanup.policy=compact)`,
          ],
        })
    }
    const replayed =
      offsets === 0
        ? new Set<string>()
        : yield* loadLedger(
            ledger,
            settings.kafka.brokers,
            `${options.group}.ledger-reader.${Date.now().toString(36)}`,
          )
    // A partition this run does not begin reading where its group is: the group's offset stays there.
    const holdAt = new Map<number, bigint>()
    for (const p of found.partitions) {
      const position = groupPosition(p)
      const range = ranges.find((r) => r.partition === p.partition)
      if (range !== undefined && range.start > position && range.start < range.end)
        holdAt.set(p.partition, position)
    }

    const { handle, tally } = yield* makeReplayer(
      settings,
      spec,
      options,
      fingerprint,
      {
        mongo: yield* MongoDb,
        producer: yield* KafkaProducer,
        transactions: exactlyOnce ? yield* KafkaTransactions : undefined,
      },
      { ledger, replayed, holdAt },
    ).pipe(Effect.orDie)

    const startedAt = Date.now()
    let complete = false
    let last = { at: startedAt, read: 0 }
    const progress = Effect.gen(function* () {
      const now = Date.now()
      const rate = ((tally.totals.read - last.read) * 1000) / Math.max(1, now - last.at)
      last = { at: now, read: tally.totals.read }
      yield* Effect.logInfo(progressLine(tally, offsets, rate)).pipe(
        Effect.annotateLogs({ progress: { ...tally.totals, passedOverTotal: tally.passedOverTotal() } }),
      )
    }).pipe(Effect.delay(progressEvery), Effect.forever)

    const finished = Effect.suspend(() => {
      const seconds = (Date.now() - startedAt) / 1000
      return Effect.logInfo(
        complete ? "replay finished" : "replay stopped before the end of its range: run it again to go on",
      ).pipe(
        Effect.annotateLogs({
          summary: {
            ...summaryOf(tally),
            dryRun: options.dryRun,
            complete,
            seconds: Math.round(seconds * 10) / 10,
          },
          topic: options.topic,
          group: options.group,
        }),
        Effect.andThen(
          Effect.sync(() =>
            process.stdout.write(
              reportText(tally, {
                dryRun: options.dryRun,
                seconds,
                complete,
                maxReplays: options.maxReplays,
              }),
            ),
          ),
        ),
      )
    })

    yield* Effect.gen(function* () {
      yield* Effect.forkScoped(progress)
      yield* readRanges(
        {
          brokers: settings.kafka.brokers,
          topic: options.topic,
          // A dry run reads the same range and commits nothing: in a group of its own, gone when it ends.
          group: options.dryRun ? `${options.group}.dry-run.${Date.now().toString(36)}` : options.group,
          ranges,
          batchSize: settings.pipeline.batchSize,
          partitionsConcurrency: settings.pipeline.partitionsConcurrency,
          sessionTimeout: settings.kafka.sessionTimeout,
          fetchMaxBytes: settings.kafka.fetchMaxBytes,
          fetchMaxBytesPerPartition: settings.kafka.fetchMaxBytesPerPartition,
          shutdownTimeout: settings.pipeline.shutdownTimeout,
          commit: !options.dryRun && !exactlyOnce,
        },
        handle,
      )
      complete = true
    }).pipe(Effect.scoped, Effect.ensuring(finished))
  })

/** Kafka and MongoDB as the service has them; the topics it writes to made if they are missing (KAFKA__CREATE_TOPICS). */
const layers = (settings: AppSettings) =>
  KafkaTransactions.layer.pipe(
    Layer.provideMerge(KafkaProducer.layer),
    Layer.provideMerge(KafkaAdmin.layer),
    Layer.provide(
      Layer.effectDiscard(
        settings.kafka.createTopics
          ? createMissingTopics([settings.kafka.topicSink, settings.kafka.topicDlq], settings.kafka.brokers)
          : Effect.void,
      ),
    ),
    Layer.provideMerge(KafkaClient.layer),
    Layer.provideMerge(MongoDb.layer),
    Layer.provideMerge(Layer.succeed(AppConfig, settings)),
  )

/**
 * Runs the replay: exit code 0 once the range is read (or after a clean stop by SIGTERM/SIGINT),
 * ReplayProblems for what the command line names and the broker lacks (exit code 2), ReplayFailed
 * after any other failure (exit code 1), logged.
 */
export const replay = (
  settings: AppSettings,
  spec: PipelineSpec,
  options: ReplayOptions,
): Effect.Effect<void, ReplayProblems | ReplayFailed> => {
  const failed = (cause: unknown) =>
    // A known condition is one line; anything else comes with its cause.
    (cause instanceof GroupBusy
      ? Effect.logError(cause.message)
      : Effect.logError("the replay stopped after a failure", cause)
    ).pipe(Effect.andThen(Effect.fail(new ReplayFailed())))
  return replayRanges(settings, spec, options).pipe(
    Effect.provide(layers(replaySettings(settings, options))),
    Effect.catch(
      (error): Effect.Effect<never, ReplayProblems | ReplayFailed> =>
        error instanceof ReplayProblems ? Effect.fail(error) : failed(error),
    ),
    Effect.catchDefect(failed),
    Effect.provide(Logging.layer(settings.logging, secretsOfSettings(settings))),
  )
}
