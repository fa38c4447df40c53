/**
 * An independent reading of the record contract, written from the issue text rather than from
 * the generator: which defects (if any) does a record value have? The tests hold the
 * generator to it: valid records have none, invalid ones exactly the one they are tagged with.
 */
import type { RecordDefect } from "../../src/Generator/Defects.js"

export interface Violation {
  readonly defect: RecordDefect
  readonly field: string
}

const EMAIL = /^[^@\s]+@[^@\s]+\.[a-z]{2,}$/
const E164 = /^\+[1-9]\d{7,14}$/
const COUNTRY_CODE: Record<string, string> = { US: "1", CA: "1", GB: "44", DE: "49", FR: "33" }
const LOCAL_DATE = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(Z|[+-]\d{2}:\d{2})?$/

const isObject = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const numeric = (u: unknown): number | "wrong_type" =>
  typeof u === "number"
    ? u
    : typeof u === "string" && /^-?\d+(\.\d+)?$/.test(u.trim())
      ? Number(u)
      : "wrong_type"

/** A date string or epoch ms that names a real instant (no month 13, no hour 99). */
export const isRealDate = (u: unknown): boolean => {
  if (typeof u === "number") return Number.isFinite(u) && u > 0
  if (typeof u !== "string") return false
  const m = LOCAL_DATE.exec(u)
  if (m === null) return false
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number]
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s))
  return (
    date.getUTCFullYear() === y &&
    date.getUTCMonth() === mo - 1 &&
    date.getUTCDate() === d &&
    date.getUTCHours() === h &&
    date.getUTCMinutes() === mi &&
    date.getUTCSeconds() === s
  )
}

/** E.164 form of a phone number, with the US as the default country for numbers without "+". */
export const toE164 = (phone: string): string | undefined => {
  const trimmed = phone.trim()
  const digits = trimmed.replace(/[^\d]/g, "")
  const e164 = trimmed.startsWith("+") ? `+${digits}` : digits.length === 10 ? `+1${digits}` : undefined
  return e164 !== undefined && E164.test(e164) ? e164 : undefined
}

export const violations = (value: unknown): Array<Violation> => {
  const out: Array<Violation> = []
  const add = (defect: RecordDefect, field: string) => out.push({ defect, field })
  if (!isObject(value)) return [{ defect: "wrong_type", field: "" }]
  const customer = isObject(value.customer) ? value.customer : {}
  const order = isObject(value.order) ? value.order : {}

  if (typeof value.event_id !== "string") add("missing_required_field", "event_id")
  else if (!/^evt-[0-9a-f]+$/.test(value.event_id)) add("bad_pattern", "event_id")

  for (const name of ["first_name", "last_name"] as const) {
    const v = customer[name]
    if (typeof v !== "string" || v.trim() === "") add("missing_required_field", `customer.${name}`)
  }

  const email = customer.email
  if (email === undefined) add("missing_required_field", "customer.email")
  else if (typeof email !== "string" || !EMAIL.test(email.trim().toLowerCase()))
    add("bad_pattern", "customer.email")

  const country = typeof customer.country === "string" ? customer.country.trim().toUpperCase() : ""
  const prefix = COUNTRY_CODE[country]
  if (prefix === undefined) add("bad_enum", "customer.country")
  const phone = typeof customer.phone === "string" ? toE164(customer.phone) : undefined
  if (phone === undefined || (prefix !== undefined && !phone.startsWith(`+${prefix}`)))
    add("bad_pattern", "customer.phone")

  if (order.amount === undefined) add("missing_required_field", "order.amount")
  else {
    const amount = numeric(order.amount)
    if (amount === "wrong_type") add("wrong_type", "order.amount")
    else if (amount < 0.01 || amount > 100_000) add("out_of_range", "order.amount")
  }

  const quantity = numeric(order.quantity)
  if (quantity === "wrong_type" || !Number.isInteger(quantity)) add("wrong_type", "order.quantity")
  else if (quantity < 1 || quantity > 1000) add("out_of_range", "order.quantity")

  const currency = typeof order.currency === "string" ? order.currency.toUpperCase() : ""
  if (!["USD", "EUR", "GBP"].includes(currency)) add("bad_enum", "order.currency")

  if (!["pending", "paid", "shipped", "cancelled"].includes(String(value.status))) add("bad_enum", "status")

  if (value.created_at === undefined) add("missing_required_field", "created_at")
  else if (!isRealDate(value.created_at)) add("bad_date", "created_at")

  if (!["true", "false", "1", "0", true, false].includes(value.is_priority as string | boolean))
    add("wrong_type", "is_priority")

  if (
    value.tags !== undefined &&
    !(Array.isArray(value.tags) && value.tags.every((t) => typeof t === "string"))
  )
    add("wrong_type", "tags")

  return out
}
