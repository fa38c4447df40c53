/**
 * What the sinks are given: the valid records of a batch that every sink can take. A record
 * without a usable key, nested too deep, with a field name MongoDB refuses, or larger than a
 * sink accepts reaches no sink at all: it is refused here, with the stage of the sink that
 * cannot take it and the reason, and goes to the dead-letter topic. So a record is never
 * written to one sink and refused by the other for a limit.
 */
import { getPath, type Path, parsePath } from "../Domain/Path.js"
import { describeKeyProblem, keyOf, type PipelineRecord, type Reason } from "../Domain/Record.js"
import { shapeProblem } from "../Domain/Shape.js"
import type { BatchOrigin } from "../Kafka/Messages.js"
import type { Keyed, Sink, SinkStage } from "./Sinks.js"

export interface Refusal {
  readonly record: PipelineRecord
  readonly stage: SinkStage
  readonly reason: Reason
}

export interface Admission {
  /** Valid records every sink can take, in batch order. */
  readonly admitted: ReadonlyArray<Keyed>
  /** Valid records some sink cannot take, in batch order. */
  readonly refused: ReadonlyArray<Refusal>
}

export interface AdmissionLimits {
  readonly maxNestingDepth: number
  readonly maxKeyBytes: number
}

/**
 * Admission over the sinks of one plan. Pure for a given input: the sinks of a batch run in
 * parallel and each asks for the same records' admission, so the result is kept per input
 * array and computed once.
 */
export const makeAdmission = (
  sinks: ReadonlyArray<Sink<unknown>>,
  keyFields: ReadonlyArray<string>,
  limits: AdmissionLimits,
) => {
  const keyPaths: ReadonlyArray<Path> = keyFields.map(parsePath)
  const first = sinks[0]
  const mongo = sinks.find((s) => s.stage === "mongodb_sink")
  const known = new WeakMap<ReadonlyArray<PipelineRecord>, Admission>()

  const check = (record: PipelineRecord, origin: BatchOrigin): Keyed | Refusal => {
    const at = first?.stage ?? "mongodb_sink"
    const task = first?.name ?? "sink"
    const key =
      record.key ??
      keyOf(
        keyPaths.map((p) => getPath(record.value, p)),
        limits.maxKeyBytes,
      )
    if (typeof key !== "string") {
      return {
        record,
        stage: at,
        reason: {
          task,
          field: keyFields.join(","),
          rule: "key",
          message: describeKeyProblem(key, keyFields),
        },
      }
    }
    const shape = shapeProblem(record.value, limits.maxNestingDepth)
    if (shape !== undefined && (shape.rule === "depth" || mongo !== undefined)) {
      const by =
        shape.rule === "depth" || mongo === undefined
          ? { stage: at, task }
          : { stage: mongo.stage, task: mongo.name }
      return { record, stage: by.stage, reason: { task: by.task, rule: shape.rule, message: shape.message } }
    }
    const keyed: Keyed = { record, key }
    for (const sink of sinks) {
      let reason: Reason | undefined
      try {
        reason = sink.refuses(keyed, origin)
      } catch (e) {
        reason = {
          task: sink.name,
          rule: "encoding",
          message: `cannot be encoded: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
        }
      }
      if (reason !== undefined) return { record, stage: sink.stage, reason }
    }
    return keyed
  }

  return (records: ReadonlyArray<PipelineRecord>, origin: BatchOrigin): Admission => {
    const done = known.get(records)
    if (done !== undefined) return done
    const admitted: Keyed[] = []
    const refused: Refusal[] = []
    for (const record of records) {
      if (record.status !== "valid") continue
      const outcome = check(record, origin)
      if ("stage" in outcome) refused.push(outcome)
      else admitted.push(outcome)
    }
    const admission = { admitted, refused }
    known.set(records, admission)
    return admission
  }
}
