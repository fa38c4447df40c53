/**
 * The last line of defence for secrets: every log line and every message the process prints
 * passes through `scrub`, which blanks the configured secret values (however a driver or a
 * library chose to echo them: verbatim, JSON-escaped or percent-decoded) and the password of
 * any `scheme://user:password@host` URI. Settings keep secrets Redacted; this catches what
 * third-party code might still repeat in an error message.
 */
import { Redacted } from "effect"
import type { AppSettings, Env } from "../Config/AppConfig.js"

export const redactedMark = "<redacted>"

/** The environment variables whose values are secrets. */
export const secretVariables = [
  "KAFKA__API_SECRET",
  "MONGODB__CONNECTION_STRING",
  "METRICS__STATUS_TOKEN",
] as const

/**
 * A secret this long or longer is blanked wherever it appears. A shorter one (a weak password
 * is the user's choice, and must not leak all the same) is blanked wherever it stands alone:
 * not inside a longer run of letters and digits, so that a secret `ab` leaves the word
 * "about" alone but not `password=ab` or `"ab"`.
 */
const anywhereLength = 4

const uriPassword = (uri: string): string | undefined =>
  /^[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:([^@/\s]+)@/i.exec(uri)?.[1]

const decoded = (text: string): string => {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/** Every form in which a secret might show up in text. */
const variants = (secret: string): ReadonlyArray<string> => {
  const password = uriPassword(secret)
  const forms = [secret, ...(password === undefined ? [] : [password, decoded(password)])]
  return forms.flatMap((s) => [s, JSON.stringify(s).slice(1, -1)])
}

const unique = (values: ReadonlyArray<string>): ReadonlyArray<string> =>
  [...new Set(values.filter((v) => v.length > 0))]
    // Longest first, so that a URI is blanked whole before its password is looked for.
    .sort((a, b) => b.length - a.length)

export const secretsOfSettings = (settings: AppSettings): ReadonlyArray<string> =>
  unique(
    [
      Redacted.value(settings.mongodb.uri),
      ...(settings.kafka.sasl === undefined ? [] : [Redacted.value(settings.kafka.sasl.password)]),
      ...(settings.metrics.statusToken === undefined ? [] : [Redacted.value(settings.metrics.statusToken)]),
    ].flatMap(variants),
  )

/** For text printed before the settings are decoded (a bad configuration, a usage error). */
export const secretsOfEnv = (env: Env): ReadonlyArray<string> =>
  unique(secretVariables.flatMap((name) => variants(env[name]?.trim() ?? "")))

const credentialsInUri = /([a-z][a-z0-9+.-]*:\/\/[^:/@\s"]*:)[^@/\s"]+@/gi

const standingAlone = new Map<string, RegExp>()
const alone = (secret: string): RegExp => {
  let pattern = standingAlone.get(secret)
  if (pattern === undefined) {
    const escaped = secret.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&")
    pattern = new RegExp(`(?<![\\p{L}\\p{N}])${escaped}(?![\\p{L}\\p{N}])`, "gu")
    standingAlone.set(secret, pattern)
  }
  return pattern
}

export const scrub = (text: string, secrets: ReadonlyArray<string>): string => {
  let out = text
  for (const secret of secrets) {
    if (!out.includes(secret)) continue
    out =
      secret.length >= anywhereLength
        ? out.split(secret).join(redactedMark)
        : out.replace(alone(secret), redactedMark)
  }
  return out.replace(credentialsInUri, `$1${redactedMark}@`)
}
