/**
 * The kinds of sink a pipeline file may name, in one list: each with its `type`, its settings
 * (a sink may leave them out) and where it writes, as the status page shows it. The pipeline
 * needs exactly one sink of each kind; the runtime builds each kind with its own factory
 * (Pipeline/PipelineDag.ts), whose list of kinds follows from this one.
 */
import { Effect, Schema } from "effect"
import { PathString } from "../Domain/Path.js"
import type { AppSettings } from "./AppConfig.js"

const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

export const MongoSinkSettings = Schema.Struct({
  writeConcern: Schema.Union([Schema.Literal("majority"), NonNegativeInt]).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed("majority" as const)),
  ),
  journal: Schema.Boolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(true))),
  /**
   * The sink always writes unordered: a failed document never stops the others, and goes to the
   * dead-letter topic on its own. The key is accepted as `false` only, so a file asking for
   * ordered writes learns at load that it does not get them.
   */
  ordered: Schema.Boolean.check(
    Schema.makeFilter((ordered: boolean) =>
      ordered
        ? "the MongoDB sink always writes unordered (each document on its own); remove the key or set false"
        : undefined,
    ),
  ).pipe(Schema.withDecodingDefaultKey(Effect.succeed(false))),
  /** What a write does to a stored document of its key; MONGODB__WRITE_MODEL when left out. */
  writeModel: Schema.optionalKey(Schema.Literals(["replace", "merge", "insert"])),
  /** With the insert model, what a record whose key is stored does; MONGODB__ON_EXISTING when left out. */
  onExisting: Schema.optionalKey(Schema.Literals(["skip", "dead_letter"])),
  /**
   * The record field(s) whose values make the document's `_id` (a business key; several: the
   * JSON array of the values, in their order), instead of the pipeline's record key.
   */
  documentKey: Schema.optionalKey(
    Schema.Union([PathString, Schema.Array(PathString).check(Schema.isMinLength(1), Schema.isUnique())]),
  ),
  /**
   * A field (a timestamp or a number) that orders the versions of a document: a write whose value
   * is older than the stored document's is left alone, whatever partition it comes from.
   */
  newerBy: Schema.optionalKey(PathString),
})
export type MongoSinkSettings = typeof MongoSinkSettings.Type

export const KafkaSinkSettings = Schema.Struct({
  /** The codec of this sink's record batches; KAFKA__COMPRESSION when left out. */
  compression: Schema.optionalKey(Schema.Literals(["none", "gzip", "snappy", "lz4", "zstd"])),
})
export type KafkaSinkSettings = typeof KafkaSinkSettings.Type

const emptyByDefault = <S extends Schema.Top>(settings: S) =>
  settings.pipe(Schema.withDecodingDefaultKey(Effect.succeed({})))

export const sinkKinds = [
  {
    type: "mongodb_sink",
    settings: emptyByDefault(MongoSinkSettings),
    target: (settings: AppSettings) => `${settings.mongodb.database}.${settings.mongodb.collection}`,
  },
  {
    type: "kafka_sink",
    settings: emptyByDefault(KafkaSinkSettings),
    target: (settings: AppSettings) => settings.kafka.topicSink,
  },
] as const

type SinkKind = (typeof sinkKinds)[number]

/** A sink's `type`; also the dead-letter stage of what it turns away. */
export type SinkType = SinkKind["type"]
export const sinkTypes: ReadonlyArray<SinkType> = sinkKinds.map((kind) => kind.type)

export type SinkSettings<T extends SinkType> = Extract<SinkKind, { readonly type: T }>["settings"]["Type"]

/** A decoded sink task: its name, kind and settings. */
export type SinkTask = {
  readonly [T in SinkType]: { readonly name: string; readonly type: T; readonly settings: SinkSettings<T> }
}[SinkType]

export const isSink = (type: unknown): type is SinkType =>
  (sinkTypes as ReadonlyArray<unknown>).includes(type)

/** Where a task writes, when it is a sink: the MongoDB collection, the sink topic. */
export const targetOf = (type: string, settings: AppSettings): string | undefined =>
  sinkKinds.find((kind) => kind.type === type)?.target(settings)

export const isSinkTask = <T extends { readonly type: string }>(
  task: T,
): task is Extract<T, { readonly type: SinkType }> => isSink(task.type)

/** One factory for each kind of sink, taking that kind's settings. */
export type SinkFactoriesOf<A> = {
  readonly [T in SinkType]: (name: string, settings: SinkSettings<T>) => A
}

/** A sink built by the factory of its kind. */
export const buildSink = <A>(factories: SinkFactoriesOf<A>, task: SinkTask): A =>
  (factories[task.type] as (name: string, settings: SinkTask["settings"]) => A)(task.name, task.settings)
