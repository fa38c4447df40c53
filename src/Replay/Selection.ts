/**
 * Which dead letters a replay sends through the pipeline again, and why it passes over the
 * others: a message that is no dead letter, one the ledger says was replayed already (by any run,
 * Ledger.ts), one that does not hold its original whole, one replayed as often as the limit
 * allows, one a replay wrote with the same pipeline (replayed again it would end the same way),
 * and one that --reason/--key leave out (the only one a later run may still replay).
 */
import type { KafkaMessage } from "kafkajs"
import { type DeadLetterInfo, describeDeadLetter } from "./Headers.js"

export interface Selection {
  /** Stages, rules, tasks, fields or error kinds; a dead letter matching any is selected (none: every one). */
  readonly reasons: ReadonlyArray<string>
  /** Record keys; a dead letter whose key is any of them is selected (none: every one). */
  readonly keys: ReadonlyArray<string>
  /** A record replayed this many times is replayed no more. */
  readonly maxReplays: number
  /** The fingerprint of the pipeline and settings of this replay. */
  readonly fingerprint: string
  /** The dead letters replayed already (`<partition>/<offset>`), as the ledger says. */
  readonly replayed: ReadonlySet<string>
}

export type PassedOver =
  | "not_dead_letter"
  | "replayed"
  | "truncated"
  | "over_limit"
  | "same_pipeline"
  | "not_selected"

export type Decision =
  | { readonly _tag: "Replay"; readonly info: DeadLetterInfo }
  | { readonly _tag: "PassedOver"; readonly why: PassedOver; readonly info: DeadLetterInfo }

const same = (a: string | undefined, b: string) => a !== undefined && a.toLowerCase() === b

/**
 * Whether the dead letter was turned away for `wanted`: its stage (`validation`, `parse`,
 * `mongodb_sink`, ...), or one of its reasons' rule (`Range`, `json`, `record_error`), error kind
 * (`record` for `record_error`), task (`quality`), field (`amount`), `task.field` or
 * `task.rule`. Case does not matter.
 */
export const hasReason = (info: DeadLetterInfo, wanted: string): boolean => {
  const w = wanted.trim().toLowerCase()
  if (same(info.stage, w)) return true
  return info.reasons.some(
    (r) =>
      same(r.rule, w) ||
      (r.rule.endsWith("_error") && same(r.rule.slice(0, -"_error".length), w)) ||
      same(r.task, w) ||
      same(r.field, w) ||
      same(`${r.task}.${r.rule}`, w) ||
      (r.field !== undefined && same(`${r.task}.${r.field}`, w)),
  )
}

/** What to do with `message`, the dead letter at `position` (`<partition>/<offset>`). */
export const decide = (selection: Selection, message: KafkaMessage, position: string): Decision => {
  const info = describeDeadLetter(message)
  const passOver = (why: PassedOver): Decision => ({ _tag: "PassedOver", why, info })
  if (info.stage === undefined) return passOver("not_dead_letter")
  if (selection.replayed.has(position)) return passOver("replayed")
  if (info.truncated) return passOver("truncated")
  if (info.replays >= selection.maxReplays) return passOver("over_limit")
  if (info.pipeline === selection.fingerprint) return passOver("same_pipeline")
  if (selection.reasons.length > 0 && !selection.reasons.some((r) => hasReason(info, r)))
    return passOver("not_selected")
  if (selection.keys.length > 0) {
    const key = message.key?.toString()
    if (key === undefined || !selection.keys.includes(key)) return passOver("not_selected")
  }
  return { _tag: "Replay", info }
}
