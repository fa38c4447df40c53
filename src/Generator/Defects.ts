/**
 * Invalid records and non-records. An invalid record is a valid one with exactly one defect,
 * tagged in `_defect`, so a test can check the pipeline rejects it for that reason and no other.
 * Non-records (malformed JSON, oversized messages) are bytes; their tag travels in a header.
 */
import type { JsonObject } from "../Domain/Record.js"
import type { Random } from "./Random.js"
import type { OrderRecord } from "./Valid.js"

export const RECORD_DEFECTS = [
  "missing_required_field",
  "wrong_type",
  "out_of_range",
  "bad_pattern",
  "bad_date",
  "bad_enum",
] as const
export type RecordDefect = (typeof RECORD_DEFECTS)[number]

export const MESSAGE_DEFECTS = ["malformed_json", "oversized"] as const
export type MessageDefect = (typeof MESSAGE_DEFECTS)[number]

export type Defect = RecordDefect | MessageDefect

/** Which field (dotted path) was damaged and how. */
export interface AppliedDefect {
  readonly defect: RecordDefect
  readonly field: string
}

/** Keeps the damaged value's representation (string or number) like the value it replaces. */
const sameShape = (original: unknown, n: number, asString: string): string | number =>
  typeof original === "string" ? asString : n

const damage: { readonly [D in RecordDefect]: (rng: Random, record: OrderRecord) => string } = {
  missing_required_field: (rng, record) => {
    const field = rng.pick(["customer.email", "order.amount", "created_at", "event_id"] as const)
    if (field === "customer.email") delete record.customer.email
    else if (field === "order.amount") delete record.order.amount
    else delete record[field]
    return field
  },
  wrong_type: (rng, record) => {
    const order = record.order
    if (rng.chance(0.5)) {
      order.amount = "abc"
      return "order.amount"
    }
    order.quantity = "three"
    return "order.quantity"
  },
  out_of_range: (rng, record) => {
    const order = record.order
    const r = rng.next()
    if (r < 1 / 3) {
      order.amount = sameShape(order.amount, -5, "-5.00")
      return "order.amount"
    }
    order.quantity = r < 2 / 3 ? sameShape(order.quantity, 0, "0") : sameShape(order.quantity, 5000, "5000")
    return "order.quantity"
  },
  bad_pattern: (_rng, record) => {
    record.customer.email = "not-an-email"
    return "customer.email"
  },
  bad_date: (rng, record) => {
    record.created_at = rng.pick(["2026-13-45T99:00:00Z", "yesterday"])
    return "created_at"
  },
  bad_enum: (rng, record) => {
    if (rng.chance(0.5)) {
      record.status = "lost"
      return "status"
    }
    record.order.currency = "XYZ"
    return "order.currency"
  },
}

/** Damages `record` in place with exactly one defect and tags it. */
export const applyDefect = (rng: Random, record: OrderRecord): AppliedDefect => {
  const defect = rng.pick<RecordDefect>(RECORD_DEFECTS)
  const field = damage[defect](rng, record)
  record._defect = defect
  return { defect, field }
}

/**
 * Bytes that are not JSON, in the ways producers really break it. None contains a newline,
 * so the line-oriented outputs keep one message per line.
 */
export const malformedJson = (rng: Random, record: JsonObject): string => {
  const json = JSON.stringify(record)
  const id = String(record.event_id)
  switch (rng.int(0, 3)) {
    case 0:
      return json.slice(0, rng.int(1, json.length - 1)) // a truncated object never parses
    case 1:
      return `${json.slice(0, -1)},}`
    case 2:
      return `{'event_id': '${id}', 'status': 'paid'}`
    default:
      return `event_id=${id};status=paid`
  }
}

/**
 * A well-formed record padded to exactly `bytes` bytes (ASCII, so characters are bytes):
 * the only thing wrong with it is its size.
 */
export const oversizedJson = (record: JsonObject, bytes: number): string => {
  const empty = JSON.stringify({ ...record, padding: "" })
  return `${empty.slice(0, -2)}${"x".repeat(Math.max(0, bytes - empty.length))}"}`
}
