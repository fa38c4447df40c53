/**
 * Reading dates and timestamps from record values, shared by type conversion and
 * standardization so both accept exactly the same inputs.
 *
 * Accepted: ISO-8601 date-times with or without a zone ("2026-11-27T10:00:00+02:00",
 * "2026-11-27T10:00:00.123Z", "2026-11-27T10:00:00" = UTC), the space form
 * "2026-11-27 10:00:00", a bare date "2026-11-27" (midnight UTC), and integer numbers as
 * epoch milliseconds; years 0000-9999. Every component is range-checked, so 2026-02-30 or 25:00 are rejected rather
 * than rolled over the way Date would.
 */
import type { Json } from "./Record.js"

// Years 0000-9999 only: toISOString writes other years as "+012345-..." which nothing here
// (or in most consumers) reads back, so standardizing would not be idempotent.
const minEpochMs = -62_167_219_200_000
const maxEpochMs = 253_402_300_799_999
const inRange = (epochMs: number): boolean => epochMs >= minEpochMs && epochMs <= maxEpochMs

const isoPattern =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i

// Longer than any ISO-8601 form above: no need to trim or match a huge string.
const maxLength = 40

const daysInMonth = (year: number, month: number): number => {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}

const zoneOffsetMinutes = (zone: string | undefined): number | undefined => {
  if (zone === undefined || zone === "Z" || zone === "z") return 0
  const sign = zone[0] === "-" ? -1 : 1
  const digits = zone.slice(1).replace(":", "")
  const hours = Number(digits.slice(0, 2))
  const minutes = digits.length > 2 ? Number(digits.slice(2)) : 0
  if (hours > 23 || minutes > 59) return undefined
  return sign * (hours * 60 + minutes)
}

const parseIsoString = (input: string): number | undefined => {
  if (input.length > maxLength + 20) return undefined
  const text = input.trim()
  if (text.length > maxLength) return undefined
  const match = isoPattern.exec(text)
  if (match === null) return undefined
  const [, y, mo, d, h, mi, s, fraction, zone] = match
  const year = Number(y)
  const month = Number(mo)
  const day = Number(d)
  const hour = h === undefined ? 0 : Number(h)
  const minute = mi === undefined ? 0 : Number(mi)
  const second = s === undefined ? 0 : Number(s)
  const millis = fraction === undefined ? 0 : Number(fraction.slice(0, 3).padEnd(3, "0"))
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined
  if (hour > 23 || minute > 59 || second > 59) return undefined
  const offset = zoneOffsetMinutes(zone)
  if (offset === undefined) return undefined
  const date = new Date(0)
  // setUTCFullYear, unlike Date.UTC, does not map years 0-99 to 1900-1999.
  date.setUTCFullYear(year, month - 1, day)
  date.setUTCHours(hour, minute, second, millis)
  return date.getTime() - offset * 60_000
}

/** Epoch milliseconds of a timestamp value, or undefined when it is not one. */
export const parseTimestamp = (value: Json): number | undefined => {
  if (typeof value === "number") {
    return Number.isInteger(value) && inRange(value) ? value : undefined
  }
  if (typeof value !== "string") return undefined
  const epochMs = parseIsoString(value)
  return epochMs !== undefined && inRange(epochMs) ? epochMs : undefined
}

/** ISO-8601 in UTC with milliseconds, e.g. "2026-11-27T08:00:00.000Z". */
export const toIsoTimestamp = (value: Json): string | undefined => {
  const epochMs = parseTimestamp(value)
  return epochMs === undefined ? undefined : new Date(epochMs).toISOString()
}

/** "YYYY-MM-DD"; a timestamp gives its UTC calendar date. */
export const toIsoDate = (value: Json): string | undefined => toIsoTimestamp(value)?.slice(0, 10)
