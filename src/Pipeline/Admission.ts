/**
 * What the sinks are given. Each sink reads the records as they stand at its own task; of
 * those it is given the valid ones that every sink can take. A record is given to no sink at
 * all when any transform marked it invalid (on any branch), or when some sink cannot take its
 * version: no usable key, nested too deep, a field name MongoDB refuses, a number a double
 * cannot hold or text that is not well-formed UTF-16 (the two sinks would store different
 * values), or larger than the sink accepts. Such a refusal carries the stage of the sink that
 * cannot take the record and the reason, and the record goes to the dead-letter topic. So a
 * record is never written to one sink and refused by the other for a limit.
 */
import { getPath, type Path, parsePath } from "../Domain/Path.js"
import { describeKeyProblem, KeyProblem, keyOf, type PipelineRecord, type Reason } from "../Domain/Record.js"
import { shapeProblem } from "../Domain/Shape.js"
import type { ParsedBatch } from "./Batch.js"
import type { BatchOrigin } from "./Messages.js"
import type { Keyed, Sink, SinkStage } from "./Sinks.js"

type Records = ReadonlyArray<PipelineRecord>

export interface Refusal {
  readonly record: PipelineRecord
  readonly stage: SinkStage
  readonly reason: Reason
}

export interface Admission {
  /** Per sink, by name: the valid records it can take and every other sink can take too, in batch order. */
  readonly admitted: ReadonlyMap<string, ReadonlyArray<Keyed>>
  /** Valid records some sink cannot take, in batch order (each record once). */
  readonly refused: ReadonlyArray<Refusal>
  /** Offsets of the records some transform marked invalid: no sink gets them. */
  readonly invalid: ReadonlySet<string>
}

interface Inspected {
  /** The record with its key, as every sink that takes this version is given it; or why it has no key. */
  readonly keyed: Keyed | KeyProblem
  readonly shape: ReturnType<typeof shapeProblem>
}

export interface AdmissionLimits {
  readonly maxNestingDepth: number
  readonly maxKeyBytes: number
}

/**
 * Admission over the sinks of one plan: the processor asks once per batch, before any sink
 * writes, and gives each sink what it admitted.
 */
export const makeAdmission = (
  sinks: ReadonlyArray<Sink<unknown>>,
  keyFields: ReadonlyArray<string>,
  limits: AdmissionLimits,
  transforms: ReadonlyArray<string>,
  inputOf: (sink: string, batch: ParsedBatch, outputs: (task: string) => Records) => Records,
) => {
  const keyPaths: ReadonlyArray<Path> = keyFields.map(parsePath)

  /** The key and the shape problem of a version of a record; sinks that read the same version share them. */
  const inspect = (record: PipelineRecord, seen: Map<PipelineRecord, Inspected>): Inspected => {
    const known = seen.get(record)
    if (known !== undefined) return known
    const key =
      record.key ??
      keyOf(
        keyPaths.map((p) => getPath(record.value, p)),
        limits.maxKeyBytes,
      )
    const shape = typeof key === "string" ? shapeProblem(record.value, limits.maxNestingDepth) : undefined
    const inspected: Inspected = { keyed: typeof key === "string" ? { record, key } : key, shape }
    seen.set(record, inspected)
    return inspected
  }

  /** Why `sink` cannot take this version of a record, or its key. */
  const check = (
    sink: Sink<unknown>,
    record: PipelineRecord,
    origin: BatchOrigin,
    seen: Map<PipelineRecord, Inspected>,
  ): Keyed | Reason => {
    const { keyed, shape } = inspect(record, seen)
    if (keyed instanceof KeyProblem) {
      return {
        task: sink.name,
        field: keyFields.join(","),
        rule: "key",
        message: describeKeyProblem(keyed, keyFields),
      }
    }
    // Field names only matter to MongoDB; depth to every sink (encoders recurse), and so do
    // numbers a double cannot hold and text that is not well-formed (the sinks would store
    // different values). shapeProblem reports those before a field name.
    if (shape !== undefined && (shape.rule !== "field_name" || sink.stage === "mongodb_sink")) {
      return shape.field === undefined
        ? { task: sink.name, rule: shape.rule, message: shape.message }
        : { task: sink.name, field: shape.field, rule: shape.rule, message: shape.message }
    }
    try {
      return sink.refuses(keyed, origin) ?? keyed
    } catch (e) {
      return {
        task: sink.name,
        rule: "encoding",
        message: `cannot be encoded: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
      }
    }
  }

  return (batch: ParsedBatch, outputs: (task: string) => Records): Admission => {
    const invalid = new Set<string>()
    for (const name of transforms) {
      for (const record of outputs(name)) if (record.status === "invalid") invalid.add(record.offset)
    }
    const refusedAt = new Map<string, Refusal>()
    const seen = new Map<PipelineRecord, Inspected>()
    const candidates = sinks.map((sink) => {
      const keyed: Keyed[] = []
      for (const record of inputOf(sink.name, batch, outputs)) {
        if (record.status !== "valid" || (invalid.size > 0 && invalid.has(record.offset))) continue
        const outcome = check(sink, record, batch.origin, seen)
        if ("record" in outcome) keyed.push(outcome)
        else if (!refusedAt.has(record.offset))
          refusedAt.set(record.offset, { record, stage: sink.stage, reason: outcome })
      }
      return keyed
    })
    // Nothing refused (most batches): each sink's candidates are what it is given.
    const admitted = new Map(
      sinks.map(
        (sink, i) =>
          [
            sink.name,
            refusedAt.size === 0
              ? candidates[i]!
              : candidates[i]!.filter((k) => !refusedAt.has(k.record.offset)),
          ] as const,
      ),
    )
    let refused: ReadonlyArray<Refusal> = []
    if (refusedAt.size > 0) {
      const order = new Map(batch.records.map((r, i) => [r.offset, i]))
      refused = [...refusedAt.values()].sort(
        (a, b) => (order.get(a.record.offset) ?? 0) - (order.get(b.record.offset) ?? 0),
      )
    }
    return { admitted, refused, invalid }
  }
}
