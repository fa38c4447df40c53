/**
 * What a dead letter says about itself, read back from its headers (Pipeline/Messages.ts writes
 * them), and the headers a replay adds to what it writes. A dead letter carries the original
 * message whole (key, value, headers) beside the `pipeline.*` headers: taking those off gives
 * the original back, and its source coordinates say where it was first read.
 */
import type { IHeaders, KafkaMessage, Message } from "kafkajs"
import type { Reason, SourcePosition } from "../Domain/Record.js"
import { header } from "../Pipeline/Messages.js"

/** The headers a replay adds to the messages it writes (sink and dead-letter topics). */
export const replayHeader = {
  /** How many times the record has been replayed: 1 after its first replay. */
  count: "pipeline.replay.count",
  /** The dead letter it was replayed from: `<topic>/<partition>/<offset>`. */
  from: "pipeline.replay.from",
  /** The fingerprint of the pipeline and settings it was replayed with (Fingerprint.ts). */
  pipeline: "pipeline.replay.pipeline",
} as const

const pipelineNames: ReadonlySet<string> = new Set([...Object.values(header), ...Object.values(replayHeader)])

type Headers = KafkaMessage["headers"]

/** A header's text: the first value when the name was repeated; undefined when absent. */
export const headerText = (headers: Headers | IHeaders | undefined, name: string): string | undefined => {
  const value = headers?.[name]
  const first = Array.isArray(value) ? value[0] : value
  return first === undefined ? undefined : String(first)
}

const integer = (text: string | undefined): bigint | undefined =>
  text !== undefined && /^\d+$/.test(text) ? BigInt(text) : undefined

/** A dead letter as its headers describe it. */
export interface DeadLetterInfo {
  /** `pipeline.error.stage`; undefined for a message that is no dead letter. */
  readonly stage: string | undefined
  /** Every reason, as `pipeline.error.reasons` lists them (none when that header was cut or is missing). */
  readonly reasons: ReadonlyArray<Reason>
  /** Where the original was first read, when the headers say it. */
  readonly source: SourcePosition | undefined
  /** The original message's timestamp, when the headers say it. */
  readonly sourceTimestamp: string | undefined
  /** How many times the record had been replayed before this dead letter was written. */
  readonly replays: number
  /** The fingerprint of the pipeline a replay wrote this dead letter with, if a replay did. */
  readonly pipeline: string | undefined
  /** The dead letter does not hold the original whole (cut to fit the topic, or its value left out). */
  readonly truncated: boolean
}

const isReason = (u: unknown): u is Reason =>
  typeof u === "object" &&
  u !== null &&
  "task" in u &&
  typeof u.task === "string" &&
  "rule" in u &&
  typeof u.rule === "string" &&
  "message" in u &&
  typeof u.message === "string" &&
  (!("field" in u) || u.field === undefined || typeof u.field === "string")

export const reasonsOf = (text: string | undefined): ReadonlyArray<Reason> => {
  if (text === undefined) return []
  try {
    const parsed: unknown = JSON.parse(text)
    return Array.isArray(parsed) ? parsed.filter(isReason) : []
  } catch {
    // Cut at the header's limit: the stage and the message header still say what happened.
    return []
  }
}

export const describeDeadLetter = (message: KafkaMessage): DeadLetterInfo => {
  const headers = message.headers
  const stage = headerText(headers, header.errorStage)
  const topic = headerText(headers, header.sourceTopic)
  const partition = integer(headerText(headers, header.sourcePartition))
  const offset = integer(headerText(headers, header.sourceOffset))
  const replays = integer(headerText(headers, replayHeader.count))
  return {
    stage,
    reasons: reasonsOf(headerText(headers, header.errorReasons)),
    source:
      topic !== undefined && partition !== undefined && offset !== undefined
        ? { topic, partition: Number(partition), offset: offset.toString() }
        : undefined,
    sourceTimestamp: headerText(headers, header.sourceTimestamp),
    replays: replays === undefined ? 0 : Number(replays),
    pipeline: headerText(headers, replayHeader.pipeline),
    truncated:
      headerText(headers, header.truncatedFrom) !== undefined ||
      // Past the parse, the original had a value: a dead letter without one lost it.
      (stage !== "parse" && (message.value === null || message.value.length === 0)),
  }
}

/**
 * The original message back from its dead letter: the same key and value, its own headers
 * without the `pipeline.*` ones, its own timestamp; the offset stays the dead letter's, which is
 * how the processor tells the messages of a batch apart.
 */
export const originalOf = (message: KafkaMessage, info: DeadLetterInfo): KafkaMessage => {
  const headers: IHeaders = {}
  for (const [name, value] of Object.entries(message.headers ?? {}))
    if (!pipelineNames.has(name)) headers[name] = value
  return {
    key: message.key,
    value: message.value,
    timestamp: info.sourceTimestamp ?? message.timestamp,
    attributes: message.attributes,
    offset: message.offset,
    headers,
  }
}

/** What a replay writes of one dead letter carries: where the record was first read, and the replay. */
export interface ReplayStamp {
  readonly source: SourcePosition | undefined
  /** The record's replay count once this replay is done. */
  readonly count: number
  /** The dead letter it was replayed from, `<topic>/<partition>/<offset>`. */
  readonly from: string
  readonly pipeline: string
}

/**
 * A message the pipeline wrote for a replayed record, stamped: its source coordinates are the
 * original's (the pipeline wrote the dead letter's), and the replay headers say what happened.
 */
export const stamp = (message: Message, replay: ReplayStamp): Message => ({
  ...message,
  headers: {
    ...message.headers,
    ...(replay.source === undefined
      ? {}
      : {
          [header.sourceTopic]: replay.source.topic,
          [header.sourcePartition]: String(replay.source.partition),
          [header.sourceOffset]: replay.source.offset,
        }),
    [replayHeader.count]: String(replay.count),
    [replayHeader.from]: replay.from,
    [replayHeader.pipeline]: replay.pipeline,
  },
})

/** The dead letter a message written by the pipeline belongs to: its partition and offset, as the pipeline wrote them. */
export const positionIn = (message: Message): string | undefined => {
  const partition = headerText(message.headers, header.sourcePartition)
  const offset = headerText(message.headers, header.sourceOffset)
  return partition === undefined || offset === undefined ? undefined : `${partition}/${offset}`
}
