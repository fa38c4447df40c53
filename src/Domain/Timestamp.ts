/**
 * Reading dates and timestamps from record values, shared by type conversion and
 * standardization so both accept exactly the same inputs.
 *
 * Accepted: ISO-8601 date-times with or without a zone ("2026-11-27T10:00:00+02:00",
 * "2026-11-27T10:00:00.123Z", "2026-11-27T10:00:00" = UTC, "+0200" and "+02" zones too), the
 * space form "2026-11-27 10:00:00", minutes without seconds, a bare date "2026-11-27"
 * (midnight UTC), and integer numbers as epoch milliseconds; years 0000-9999. Every component
 * is range-checked, so 2026-02-30 or 25:00 are rejected rather than rolled over the way Date
 * would. Parsing and formatting are by hand, without Date or regular expressions: they run
 * twice per record in the seed pipeline.
 */
import type { Json } from "./Record.js"

// Years 0000-9999 only: toISOString writes other years as "+012345-..." which nothing here
// (or in most consumers) reads back, so standardizing would not be idempotent.
const minEpochMs = -62_167_219_200_000
const maxEpochMs = 253_402_300_799_999
const inRange = (epochMs: number): boolean => epochMs >= minEpochMs && epochMs <= maxEpochMs

// Longer than any accepted form (nanoseconds and a zone included).
const maxLength = 40

const isLeap = (year: number): boolean => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)

const daysInMonth = (year: number, month: number): number => {
  if (month === 2) return isLeap(year) ? 29 : 28
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
const daysFromCivil = (year: number, month: number, day: number): number => {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yearOfEra = y - era * 400
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear
  return era * 146_097 + dayOfEra - 719_468
}

/** The number written by `length` ASCII digits at `at`, or -1. */
const digits = (text: string, at: number, length: number): number => {
  let value = 0
  for (let i = at; i < at + length; i++) {
    const code = text.charCodeAt(i) - 48 // NaN past the end, which fails the test below
    if (!(code >= 0 && code <= 9)) return -1
    value = value * 10 + code
  }
  return value
}

const isSpace = (code: number): boolean => code === 32 || (code >= 9 && code <= 13)

const parseIsoString = (input: string): number | undefined => {
  let start = 0
  let end = input.length
  while (start < end && isSpace(input.charCodeAt(start))) start++
  while (end > start && isSpace(input.charCodeAt(end - 1))) end--
  if (end - start > maxLength || end - start < 10) return undefined
  const text = start === 0 && end === input.length ? input : input.slice(start, end)
  const length = text.length

  const year = digits(text, 0, 4)
  const month = digits(text, 5, 2)
  const day = digits(text, 8, 2)
  if (year < 0 || month < 1 || day < 1 || text[4] !== "-" || text[7] !== "-") return undefined
  if (month > 12 || day > daysInMonth(year, month)) return undefined
  let ms = daysFromCivil(year, month, day) * 86_400_000
  if (length === 10) return ms

  const separator = text[10]
  if (separator !== "T" && separator !== "t" && separator !== " ") return undefined
  const hour = digits(text, 11, 2)
  const minute = digits(text, 14, 2)
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || text[13] !== ":") return undefined
  ms += hour * 3_600_000 + minute * 60_000
  let at = 16
  if (text[at] === ":") {
    const second = digits(text, at + 1, 2)
    if (second < 0 || second > 59) return undefined
    ms += second * 1000
    at += 3
    if (text[at] === "." || text[at] === ",") {
      let fractionEnd = at + 1
      while (fractionEnd < length && fractionEnd - at <= 9 && digits(text, fractionEnd, 1) >= 0) fractionEnd++
      const count = fractionEnd - at - 1
      if (count < 1 || count > 9) return undefined
      // Milliseconds: the first three digits, padded; finer digits are dropped, not rounded.
      const firstThree = Math.min(count, 3)
      ms += digits(text, at + 1, firstThree) * 10 ** (3 - firstThree)
      at = fractionEnd
    }
  }
  if (at === length) return ms
  const zone = text[at]
  if ((zone === "Z" || zone === "z") && at + 1 === length) return ms
  if (zone !== "+" && zone !== "-") return undefined
  const rest = length - at - 1
  const zoneHours = digits(text, at + 1, 2)
  let zoneMinutes = 0
  if (rest === 5 && text[at + 3] === ":") zoneMinutes = digits(text, at + 4, 2)
  else if (rest === 4) zoneMinutes = digits(text, at + 3, 2)
  else if (rest !== 2) return undefined
  if (zoneHours < 0 || zoneHours > 23 || zoneMinutes < 0 || zoneMinutes > 59) return undefined
  const offset = (zoneHours * 60 + zoneMinutes) * 60_000
  return zone === "+" ? ms - offset : ms + offset
}

/** Epoch milliseconds of a timestamp value, or undefined when it is not one. */
export const parseTimestamp = (value: Json): number | undefined => {
  if (typeof value === "number") return Number.isInteger(value) && inRange(value) ? value : undefined
  if (typeof value !== "string" || value.length > maxLength * 4) return undefined
  const epochMs = parseIsoString(value)
  return epochMs !== undefined && inRange(epochMs) ? epochMs : undefined
}

/** The form toISOString writes; such a string is checked and returned as it is. */
const isCanonical = (text: string): boolean =>
  text.length === 24 &&
  text[10] === "T" &&
  text[13] === ":" &&
  text[16] === ":" &&
  text[19] === "." &&
  text[23] === "Z" &&
  digits(text, 20, 3) >= 0

const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`)
const pad3 = (n: number): string => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`)
const pad4 = (n: number): string => (n < 1000 ? `0${pad3(n)}` : `${n}`)

/**
 * What Date#toISOString writes for years 0000-9999, computed directly (civil_from_days): the
 * native method costs several times more, and it runs for every record.
 */
export const formatIso = (epochMs: number): string => {
  const days = Math.floor(epochMs / 86_400_000)
  let rest = epochMs - days * 86_400_000
  const z = days + 719_468
  const era = Math.floor(z / 146_097)
  const dayOfEra = z - era * 146_097
  const yearOfEra = Math.floor(
    (dayOfEra -
      Math.floor(dayOfEra / 1460) +
      Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  )
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100))
  const shiftedMonth = Math.floor((5 * dayOfYear + 2) / 153)
  const day = dayOfYear - Math.floor((153 * shiftedMonth + 2) / 5) + 1
  const month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
  const hours = Math.floor(rest / 3_600_000)
  rest -= hours * 3_600_000
  const minutes = Math.floor(rest / 60_000)
  rest -= minutes * 60_000
  const seconds = Math.floor(rest / 1000)
  const millis = rest - seconds * 1000
  return `${pad4(year)}-${pad2(month)}-${pad2(day)}T${pad2(hours)}:${pad2(minutes)}:${pad2(seconds)}.${pad3(millis)}Z`
}

/** ISO-8601 in UTC with milliseconds, e.g. "2026-11-27T08:00:00.000Z". */
export const toIsoTimestamp = (value: Json): string | undefined => {
  const epochMs = parseTimestamp(value)
  if (epochMs === undefined) return undefined
  // Standardizing what conversion already wrote is the common case: nothing to format.
  return typeof value === "string" && isCanonical(value) ? value : formatIso(epochMs)
}

/** "YYYY-MM-DD"; a timestamp gives its UTC calendar date. */
export const toIsoDate = (value: Json): string | undefined => toIsoTimestamp(value)?.slice(0, 10)
