/**
 * Valid records: every field inside the contract, but in the messy shapes real producers
 * send (padding, mixed case, numbers as strings, three date formats, local phone formats),
 * so the pipeline's conversion and standardization tasks have real work to do.
 */
import type { JsonObject } from "../Domain/Record.js"
import type { NonEmpty, Random } from "./Random.js"

/** A non-empty word list from one line, to keep the lists readable. */
const words = (line: string): NonEmpty<string> => {
  const [head = "", ...tail] = line.split(" ")
  return [head, ...tail]
}

const FIRST_NAMES = words(
  "alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy rupert sybil trent victor zoe",
)
const LAST_NAMES = words(
  "smith jones taylor brown williams wilson johnson davies miller martin bernard dubois muller schmidt fischer weber garcia",
)
const DOMAINS = words("example.com example.org example.net mail.example.co.uk example.de")
const STATUSES = words("pending paid shipped cancelled")
const CURRENCIES = words("USD EUR GBP")
const PRIORITY: NonEmpty<string | boolean> = ["true", "false", "1", "0", true, false]
const TAGS = words("gift express fragile bulk vip")
const OFFSETS: NonEmpty<string> = ["Z", "+00:00", "+01:00", "+02:00", "-05:00", "-08:00", "+05:30"]

type Country = "US" | "CA" | "GB" | "DE" | "FR"
// US-heavy, like the default phone region the pipeline assumes.
const COUNTRIES: NonEmpty<Country> = ["US", "US", "US", "CA", "GB", "DE", "FR"]
const US_AREAS = words("415 212 646 312 206 617 303 512")
const CA_AREAS = words("604 416 514 403")

/** Records are dated within this many days before the base time. */
const SPREAD_DAYS = 30

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1)
const digits = (rng: Random, n: number): string => {
  let out = ""
  for (let i = 0; i < n; i++) out += String(rng.int(0, 9))
  return out
}

const messyCase = (rng: Random, s: string): string => {
  const r = rng.next()
  return r < 0.4 ? capitalize(s) : r < 0.7 ? s : s.toUpperCase()
}

const messyPadding = (rng: Random, s: string): string => {
  const r = rng.next()
  return r < 0.6 ? s : r < 0.75 ? `  ${s} ` : r < 0.9 ? ` ${s}` : `${s}  `
}

const messyDomain = (rng: Random, domain: string): string => {
  const r = rng.next()
  if (r < 0.6) return domain
  if (r < 0.8) return domain.toUpperCase()
  const dot = domain.lastIndexOf(".")
  return capitalize(domain.slice(0, dot)) + domain.slice(dot).toUpperCase()
}

const email = (rng: Random, first: string, last: string): string => {
  const suffix = rng.chance(0.3) ? String(rng.int(1, 99)) : ""
  const local = rng.chance(0.5) ? `${capitalize(first)}.${capitalize(last)}` : `${first}.${last}`
  const domain = messyDomain(rng, rng.pick(DOMAINS))
  return messyPadding(rng, `${local}${suffix}@${domain}`)
}

const country = (rng: Random, code: Country): string => {
  const r = rng.next()
  return r < 0.6 ? code : r < 0.85 ? code.toLowerCase() : ` ${rng.chance(0.5) ? code : code.toLowerCase()} `
}

// Fictional ranges only: NANP 555-01xx, Ofcom drama numbers, and short test-looking EU numbers.
const phone = (rng: Random, code: Country): string => {
  switch (code) {
    case "US":
    case "CA": {
      const area = rng.pick(code === "US" ? US_AREAS : CA_AREAS)
      const line = `01${digits(rng, 2)}`
      return rng.chance(0.5) ? `(${area}) 555-${line}` : `${area}.555.${line}`
    }
    case "GB":
      return rng.chance(0.5) ? `+44 20 7946 0${digits(rng, 3)}` : `+44 161 496 0${digits(rng, 3)}`
    case "DE":
      return `+49 ${rng.pick(["30", "89", "40"])} ${rng.int(1, 9)}${digits(rng, 6)}`
    case "FR":
      return `+33 ${rng.pick(["1", "6"])} ${digits(rng, 2)} ${digits(rng, 2)} ${digits(rng, 2)} ${digits(rng, 2)}`
  }
}

/** Cents in [1, 10_000_000], mostly everyday amounts, sometimes exactly on a bound. */
const amountCents = (rng: Random): number => {
  const r = rng.next()
  if (r < 0.01) return 1
  if (r < 0.02) return 10_000_000
  if (r < 0.9) return rng.int(100, 200_000)
  return Math.round(10 ** (rng.next() * 7)) // log-uniform over the whole range
}

const amount = (rng: Random): string | number => {
  const cents = amountCents(rng)
  return rng.chance(0.5) ? (cents / 100).toFixed(2) : cents / 100
}

const quantity = (rng: Random): string | number => {
  const r = rng.next()
  const q = r < 0.01 ? 1000 : r < 0.9 ? rng.int(1, 10) : rng.int(1, 1000)
  return rng.chance(0.5) ? String(q) : q
}

const currency = (rng: Random): string => {
  const c = rng.pick(CURRENCIES)
  const r = rng.next()
  return r < 0.5 ? c : r < 0.8 ? c.toLowerCase() : capitalize(c.toLowerCase())
}

/** One of the three accepted date shapes for an instant within SPREAD_DAYS before `baseTime`. */
const createdAt = (rng: Random, baseTime: number): string | number => {
  const instant = baseTime - rng.int(0, SPREAD_DAYS * 86_400) * 1000
  const r = rng.next()
  if (r < 0.3) return instant
  if (r < 0.6) return new Date(instant).toISOString().slice(0, 19).replace("T", " ")
  const offset = rng.pick(OFFSETS)
  const offsetMinutes = offset === "Z" ? 0 : (offset.startsWith("-") ? -1 : 1) * minutesOf(offset.slice(1))
  const local = new Date(instant + offsetMinutes * 60_000).toISOString().slice(0, 19)
  return `${local}${offset}`
}

const minutesOf = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5))

const tags = (rng: Random): string[] => {
  const chosen = new Set<string>()
  const n = rng.int(1, 3)
  while (chosen.size < n) chosen.add(rng.pick(TAGS))
  return [...chosen]
}

/** The shape every generated record starts from; the nested objects are always present. */
export interface OrderRecord extends JsonObject {
  customer: JsonObject
  order: JsonObject
}

/** A valid record with the given event id; `baseTime` (epoch ms) anchors `created_at`. */
export const validRecord = (rng: Random, eventId: string, baseTime: number): OrderRecord => {
  const first = rng.pick(FIRST_NAMES)
  const last = rng.pick(LAST_NAMES)
  const code = rng.pick(COUNTRIES)
  const record: OrderRecord = {
    event_id: eventId,
    customer: {
      first_name: messyPadding(rng, messyCase(rng, first)),
      last_name: messyPadding(rng, messyCase(rng, last)),
      email: email(rng, first, last),
      phone: phone(rng, code),
      country: country(rng, code),
    },
    order: { amount: amount(rng), currency: currency(rng), quantity: quantity(rng) },
    status: rng.pick(STATUSES),
    created_at: createdAt(rng, baseTime),
    is_priority: rng.pick(PRIORITY),
  }
  if (rng.chance(0.5)) record.tags = tags(rng)
  return record
}
