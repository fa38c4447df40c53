/**
 * Phone numbers to E.164 ("+14155550134") without a full numbering-plan library: a small
 * table of countries (calling code, trunk prefix, national number shape) is enough to read the
 * usual national and international spellings, and to refuse what cannot be a phone number.
 *
 * Rules:
 * - Spacing and punctuation (space, ".", "-", "/", parentheses) are ignored; any other
 *   character (letters, "ext", "#") makes the number unreadable.
 * - "+…" or the country's international prefix ("00", "011" in North America) starts an
 *   international number. A "(0)" after the country code is dropped ("+44 (0)20 …"). When
 *   the calling code is in the table, the national part must fit that country's shape.
 * - Anything else is a national number of the default country: it must start with the trunk
 *   prefix where the country has one ("020 7946 0958" in GB; optional "1" in North America),
 *   which is dropped, and the rest must fit the country's shape.
 * E.164 output is read back unchanged, so normalising twice is the same as once.
 */

interface CountryPlan {
  readonly callingCode: string
  /** Dialled before national numbers at home, dropped in the international form. */
  readonly trunkPrefix?: string
  /** North America dials 10 digits at home: there the trunk "1" is optional. */
  readonly trunkOptional?: boolean
  readonly internationalPrefix: string
  /** The national significant number, without trunk prefix. */
  readonly national: RegExp
}

const nanp: CountryPlan = {
  callingCode: "1",
  trunkPrefix: "1",
  trunkOptional: true,
  internationalPrefix: "011",
  national: /^[2-9]\d{2}[2-9]\d{6}$/,
}

const plans: Readonly<Record<string, CountryPlan>> = {
  US: nanp,
  CA: nanp,
  GB: { callingCode: "44", trunkPrefix: "0", internationalPrefix: "00", national: /^[1-9]\d{8,9}$/ },
  DE: { callingCode: "49", trunkPrefix: "0", internationalPrefix: "00", national: /^[1-9]\d{5,12}$/ },
  FR: { callingCode: "33", trunkPrefix: "0", internationalPrefix: "00", national: /^[1-9]\d{8}$/ },
  NL: { callingCode: "31", trunkPrefix: "0", internationalPrefix: "00", national: /^[1-9]\d{8}$/ },
  BE: { callingCode: "32", trunkPrefix: "0", internationalPrefix: "00", national: /^[1-9]\d{7,8}$/ },
  CH: { callingCode: "41", trunkPrefix: "0", internationalPrefix: "00", national: /^[1-9]\d{8}$/ },
  AT: { callingCode: "43", trunkPrefix: "0", internationalPrefix: "00", national: /^[1-9]\d{3,12}$/ },
  IE: { callingCode: "353", trunkPrefix: "0", internationalPrefix: "00", national: /^[1-9]\d{6,8}$/ },
  // Italy and Spain have no trunk prefix: a leading 0 belongs to the number.
  IT: { callingCode: "39", internationalPrefix: "00", national: /^\d{6,11}$/ },
  ES: { callingCode: "34", internationalPrefix: "00", national: /^[6-9]\d{8}$/ },
  AU: { callingCode: "61", trunkPrefix: "0", internationalPrefix: "0011", national: /^[1-9]\d{8}$/ },
  IN: { callingCode: "91", trunkPrefix: "0", internationalPrefix: "00", national: /^[1-9]\d{9}$/ },
  JP: { callingCode: "81", trunkPrefix: "0", internationalPrefix: "010", national: /^[1-9]\d{8,9}$/ },
}

/** Countries whose national numbers can be read (ISO 3166-1 alpha-2). */
export const phoneCountries: ReadonlyArray<string> = Object.keys(plans)

const byCallingCode = new Map<string, CountryPlan>(
  Object.values(plans).map((plan) => [plan.callingCode, plan]),
)

// Long enough for any formatted number; anything longer is not worth scanning.
const maxInputLength = 40

const isSpace = (code: number): boolean => code === 32 || (code >= 9 && code <= 13) || code === 160
// The punctuation people put in phone numbers: . - / ( )
const isPunctuation = (code: number): boolean =>
  code === 46 || code === 45 || code === 47 || code === 40 || code === 41

/** E.164 for a phone number, or undefined when it cannot be read as one. */
export const toE164 = (input: string, defaultCountry: string): string | undefined => {
  let at = 0
  let end = input.length
  while (at < end && isSpace(input.charCodeAt(at))) at++
  while (end > at && isSpace(input.charCodeAt(end - 1))) end--
  if (end === at || end - at > maxInputLength) return undefined
  const plus = input.charCodeAt(at) === 43
  if (plus) at++
  // One pass: collect the digits, refuse anything that is not a digit, space or punctuation.
  let digits = ""
  for (; at < end; at++) {
    const code = input.charCodeAt(at)
    if (code >= 48 && code <= 57) digits += input[at]
    else if (plus && code === 40 && input.charCodeAt(at + 1) === 48 && input.charCodeAt(at + 2) === 41)
      at += 2
    else if (!isSpace(code) && !isPunctuation(code)) return undefined
  }
  if (digits.length === 0) return undefined
  if (plus) return international(digits)
  const home = plans[defaultCountry]
  if (home === undefined) return undefined
  if (digits.startsWith(home.internationalPrefix))
    return international(digits.slice(home.internationalPrefix.length))
  const trunk = home.trunkPrefix
  if (trunk !== undefined && home.trunkOptional !== true && !digits.startsWith(trunk)) return undefined
  return national(digits, home)
}

/** Drops a trunk prefix when present: in the international form it is optional everywhere. */
const national = (digits: string, plan: CountryPlan): string | undefined => {
  let number = digits
  if (plan.trunkPrefix !== undefined && number.startsWith(plan.trunkPrefix) && !plan.national.test(number)) {
    number = number.slice(plan.trunkPrefix.length)
  }
  return plan.national.test(number) ? `+${plan.callingCode}${number}` : undefined
}

const international = (digits: string): string | undefined => {
  // E.164 allows at most 15 digits; calling codes never start with 0.
  if (digits.length < 7 || digits.length > 15 || digits.startsWith("0")) return undefined
  for (let length = 1; length <= 3; length++) {
    const plan = byCallingCode.get(digits.slice(0, length))
    if (plan !== undefined) return national(digits.slice(length), plan)
  }
  return `+${digits}`
}
