/**
 * The service's settings, read from the environment (and a .env file when present; the real
 * environment wins), with `__` between section and key. Every problem is collected and
 * reported at once, before anything connects. Secrets are Redacted from the moment they are
 * read, and no error message ever repeats a secret's value.
 */
import { readFileSync } from "node:fs"
import { isIP } from "node:net"
import { parseEnv } from "node:util"
import { getHeapStatistics } from "node:v8"
import { Context, Data, Duration, Effect, Layer, Redacted } from "effect"

export type LogLevelName = "DEBUG" | "INFO" | "WARNING" | "ERROR"

export interface AppSettings {
  readonly kafka: {
    readonly brokers: ReadonlyArray<string>
    readonly sasl: { readonly username: string; readonly password: Redacted.Redacted<string> } | undefined
    readonly clientId: string
    readonly topicSource: string
    readonly topicSink: string
    readonly topicDlq: string
    readonly consumerGroup: string
    readonly autoOffsetReset: "earliest" | "latest"
    readonly createTopics: boolean
    readonly maxMessageBytes: number
    readonly sessionTimeout: Duration.Duration
    /** At most this long between offset commits of a partition while it is being read. */
    readonly commitInterval: Duration.Duration
    /** exactly_once: each batch's Kafka writes and consumed offset in one transaction (Kafka/Transactions.ts). */
    readonly delivery: "at_least_once" | "exactly_once"
    /** kafkajs' request timeout: how long one request may wait for the broker's answer. */
    readonly requestTimeout: Duration.Duration
    /** A send's deadline, kafkajs' own retries included (six request timeouts). */
    readonly sendDeadline: Duration.Duration
    /** The codec of the sink and dead-letter producers' record batches. */
    readonly compression: "none" | "gzip" | "snappy" | "lz4" | "zstd"
    /** What one fetch may bring, all partitions together (the broker's limit of the response). */
    readonly fetchMaxBytes: number
    /**
     * What one partition's part of a fetch may bring, and hold once decoded (decompressed, with
     * each message's objects): past it, the rest is left for the next fetch.
     */
    readonly fetchMaxBytesPerPartition: number
    /** A fetch is answered once the broker has this many bytes for it, or after fetchMaxWait. */
    readonly fetchMinBytes: number
    readonly fetchMaxWait: Duration.Duration
  }
  readonly mongodb: {
    readonly uri: Redacted.Redacted<string>
    readonly database: string
    readonly collection: string
    /** Bounds every wait on the server: a socket read, a connection from the pool. */
    readonly timeout: Duration.Duration
    /** Documents per replace command (the path for keys that exist already). */
    readonly replaceBatchSize: number
    /** How a record is written over a stored document of its key: replaced, merged (its fields set), or not at all (insert only). */
    readonly writeModel: "replace" | "merge" | "insert"
    /** What a message whose value is null does: deletes its key's document, is counted and skipped, or is dead-lettered. */
    readonly onTombstone: "delete" | "ignore" | "dead_letter"
    /** With the insert model, what a record whose key is stored already does: is counted and skipped, or is dead-lettered. */
    readonly onExisting: "skip" | "dead_letter"
  }
  readonly pipeline: {
    readonly file: string
    readonly batchSize: number
    readonly maxWorkers: number
    readonly partitionsConcurrency: number
    /** Chunks of one partition in process at once; their writes still go in offset order. */
    readonly batchesInFlight: number
    /** Message bytes the chunks in flight may hold, across partitions. */
    readonly maxInFlightBytes: number
    readonly retryCount: number
    readonly retryDelay: Duration.Duration
    readonly maxRetryDelay: Duration.Duration
    readonly shutdownTimeout: Duration.Duration
    /** How long a partition may stay stalled before /readyz reports 503. */
    readonly stallTimeout: Duration.Duration
    /** Deepest nesting of objects and arrays a record may have (the top-level object is 1). */
    readonly maxNestingDepth: number
    /** Longest record key, in UTF-8 bytes. */
    readonly maxKeyBytes: number
    /** What the source's values are: records, or Debezium change events (their rows, and deletes). */
    readonly sourceFormat: "plain" | "debezium"
  }
  readonly logging: { readonly level: LogLevelName; readonly format: "json" | "text" }
  readonly metrics: {
    readonly port: number
    /** The address the HTTP port listens on; `::` is every interface, IPv6 and IPv4. */
    readonly host: string
    /** When set, `/` and `/status.json` (and the page's files) need it; the probes and /metrics never do. */
    readonly statusToken: Redacted.Redacted<string> | undefined
    readonly progressInterval: Duration.Duration
  }
}

export class ConfigProblems extends Data.TaggedError("ConfigProblems")<{
  readonly problems: ReadonlyArray<string>
}> {
  override get message() {
    return `invalid configuration (${this.problems.length} problem${this.problems.length === 1 ? "" : "s"}):\n${this.problems.map((p) => `  - ${p}`).join("\n")}`
  }
}

export type Env = Readonly<Record<string, string | undefined>>

/** Reads one setting after another, collecting every problem instead of stopping at the first. */
class Reader {
  readonly problems: string[] = []
  /** Every name a setting read, set or not: the names the service knows. */
  readonly names = new Set<string>()
  constructor(private readonly env: Env) {}

  private raw(name: string): string | undefined {
    this.names.add(name)
    const value = this.env[name]?.trim()
    return value === undefined || value === "" ? undefined : value
  }

  string(name: string, fallback?: string): string {
    const value = this.raw(name) ?? fallback
    if (value === undefined) {
      this.problems.push(`${name}: required but not set`)
      return ""
    }
    return value
  }

  optional(name: string): string | undefined {
    return this.raw(name)
  }

  secret(name: string): Redacted.Redacted<string> {
    return Redacted.make(this.string(name), { label: name })
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const value = this.raw(name)
    if (value === undefined) return fallback
    const n = Number(value)
    if (!/^[+-]?\d+$/.test(value) || n < min || n > max) {
      this.problems.push(`${name}: expected a whole number from ${min} to ${max}, got "${value}"`)
      return fallback
    }
    return n
  }

  seconds(name: string, fallback: number, min: number, max: number): Duration.Duration {
    const value = this.raw(name)
    if (value === undefined) return Duration.seconds(fallback)
    const n = Number(value)
    if (!Number.isFinite(n) || n < min || n > max) {
      this.problems.push(`${name}: expected a number of seconds from ${min} to ${max}, got "${value}"`)
      return Duration.seconds(fallback)
    }
    return Duration.millis(Math.round(n * 1000))
  }

  oneOf<const A extends string>(name: string, choices: ReadonlyArray<A>, fallback: A, fold = true): A {
    const value = this.raw(name)
    if (value === undefined) return fallback
    const wanted = fold ? value.toUpperCase() : value
    const found = choices.find((c) => (fold ? c.toUpperCase() : c) === wanted)
    if (found === undefined) {
      this.problems.push(`${name}: expected one of ${choices.join(", ")}, got "${value}"`)
      return fallback
    }
    return found
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.raw(name)
    if (value === undefined) return fallback
    if (/^(true|1|yes)$/i.test(value)) return true
    if (/^(false|0|no)$/i.test(value)) return false
    this.problems.push(`${name}: expected true or false, got "${value}"`)
    return fallback
  }
}

const brokerPattern = /^[^\s:,]+:\d{1,5}$/

/** The sections of the service's settings: a variable under one of them that no setting reads is a mistake. */
export const settingPrefixes = ["KAFKA__", "MONGODB__", "PIPELINE__", "METRICS__", "LOGGING__"] as const

/** Read before the settings are: by main.ts, which sets the heap limits (README "Memory"). */
const readElsewhere = ["PIPELINE__HEAP_LIMITS"]

const editDistance = (a: string, b: string): number => {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      )
    previous = current
  }
  return previous[b.length]!
}

/**
 * Each variable under the settings' prefixes (in any case) that is none of `known`: a typo
 * (`MONGODB__COLECTION`) or a setting this version does not have, which would otherwise be
 * ignored without a word. Named with the nearest known name when it is near, else with the
 * section's settings.
 */
export const unknownSettings = (env: Env, known: ReadonlySet<string>): ReadonlyArray<string> => {
  const names = [...known, ...readElsewhere].sort()
  return Object.keys(env)
    .filter((name) => env[name] !== undefined && !names.includes(name))
    .filter((name) => settingPrefixes.some((prefix) => name.toUpperCase().startsWith(prefix)))
    .sort()
    .map((name) => {
      const upper = name.toUpperCase()
      const [nearest] = names
        .map((candidate) => ({ candidate, distance: editDistance(upper, candidate) }))
        .sort((a, b) => a.distance - b.distance)
      if (nearest !== undefined && nearest.distance <= Math.max(2, Math.floor(nearest.candidate.length / 5)))
        return `${name}: no such setting; did you mean ${nearest.candidate}?`
      const prefix = settingPrefixes.find((p) => upper.startsWith(p))!
      const section = names.filter((n) => n.startsWith(prefix))
      return `${name}: no such setting (the ${prefix} settings: ${section.join(", ")}; .env.example lists them all)`
    })
}

/**
 * What a fetch may bring by default: an eighth of the heap this process may grow to (its
 * decoded messages are held in the heap until their batches are written), between 1 and 64 MiB.
 * With the service's heap limits that is about 23 MiB.
 */
export const defaultFetchMaxBytes = (heapLimit: number = getHeapStatistics().heap_size_limit): number =>
  Math.min(64 * 1_048_576, Math.max(1_048_576, Math.floor(heapLimit / 8 / 65_536) * 65_536))

/** Decodes the settings from an environment map; pure, so tests can feed any map. */
export const decodeSettings = (env: Env): Effect.Effect<AppSettings, ConfigProblems> =>
  Effect.suspend(() => {
    const r = new Reader(env)
    const brokers = r
      .string("KAFKA__BOOTSTRAP_SERVERS")
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "")
    for (const b of brokers) {
      if (!brokerPattern.test(b)) r.problems.push(`KAFKA__BOOTSTRAP_SERVERS: "${b}" is not host:port`)
    }
    const apiKey = r.optional("KAFKA__API_KEY")
    const apiSecret = r.optional("KAFKA__API_SECRET")
    if ((apiKey === undefined) !== (apiSecret === undefined)) {
      r.problems.push("KAFKA__API_KEY and KAFKA__API_SECRET: set both (SASL/PLAIN) or neither")
    }
    const topicSource = r.string("KAFKA__TOPIC_SOURCE")
    const uri = r.secret("MONGODB__CONNECTION_STRING")
    const uriValue = Redacted.value(uri)
    if (uriValue !== "" && !/^mongodb(\+srv)?:\/\/\S+$/.test(uriValue)) {
      // Never echo the value: it usually carries a password.
      r.problems.push("MONGODB__CONNECTION_STRING: expected a mongodb:// or mongodb+srv:// URI")
    }
    const requestTimeout = r.seconds("KAFKA__REQUEST_TIMEOUT_SECONDS", 30, 1, 600)
    const partitionsConcurrency = r.int("PIPELINE__PARTITIONS_CONCURRENCY", 3, 1, 1000)
    const fetchMaxBytes = r.int("KAFKA__FETCH_MAX_BYTES", defaultFetchMaxBytes(), 65_536, 1024 * 1_048_576)
    // Every interface by default: probes (a kubelet's) and Prometheus reach a container's port
    // from outside it, never on its loopback; the status page is what the token is for.
    const metricsHost = r.string("METRICS__HOST", "::")
    if (isIP(metricsHost) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(metricsHost))
      r.problems.push(
        `METRICS__HOST: expected an address to listen on (::, 0.0.0.0, 127.0.0.1, a host name), got "${metricsHost}"`,
      )
    const token = r.optional("METRICS__STATUS_TOKEN")
    // Never echo the value: it is a secret.
    if (token !== undefined && !/^[\x21-\x7e]{16,}$/.test(token))
      r.problems.push(
        "METRICS__STATUS_TOKEN: expected at least 16 printable ASCII characters without spaces (e.g. `openssl rand -hex 16`)",
      )
    const statusToken =
      token === undefined ? undefined : Redacted.make(token, { label: "METRICS__STATUS_TOKEN" })
    const writeModel = r.oneOf("MONGODB__WRITE_MODEL", ["replace", "merge", "insert"], "replace")
    const onExisting = r.oneOf("MONGODB__ON_EXISTING", ["skip", "dead_letter"], "skip")
    // Replace and merge write over a stored key: a dead_letter there would never be used.
    if (onExisting === "dead_letter" && writeModel !== "insert")
      r.problems.push(
        `MONGODB__ON_EXISTING: dead_letter applies to MONGODB__WRITE_MODEL=insert only (it is ${writeModel}, which writes over a stored key)`,
      )
    const settings: AppSettings = {
      kafka: {
        brokers,
        sasl:
          apiKey !== undefined && apiSecret !== undefined
            ? { username: apiKey, password: Redacted.make(apiSecret, { label: "KAFKA__API_SECRET" }) }
            : undefined,
        clientId: r.string("KAFKA__CLIENT_ID", "kafka-mongo-pipeline"),
        topicSource,
        topicSink: r.string("KAFKA__TOPIC_SINK"),
        topicDlq: r.string("KAFKA__TOPIC_DLQ", `${topicSource}.dlq`),
        consumerGroup: r.string("KAFKA__CONSUMER_GROUP"),
        autoOffsetReset: r.oneOf("KAFKA__AUTO_OFFSET_RESET", ["earliest", "latest"], "earliest"),
        createTopics: r.boolean("KAFKA__CREATE_TOPICS", true),
        maxMessageBytes: r.int("KAFKA__MAX_MESSAGE_BYTES", 1_048_576, 1, 100 * 1_048_576),
        sessionTimeout: r.seconds("KAFKA__SESSION_TIMEOUT_SECONDS", 30, 6, 1800),
        commitInterval: r.seconds("KAFKA__COMMIT_INTERVAL_SECONDS", 1, 0, 3600),
        delivery: r.oneOf("KAFKA__DELIVERY", ["at_least_once", "exactly_once"], "at_least_once"),
        requestTimeout,
        sendDeadline: Duration.times(requestTimeout, 6),
        compression: r.oneOf("KAFKA__COMPRESSION", ["none", "gzip", "snappy", "lz4", "zstd"], "lz4"),
        fetchMaxBytes,
        fetchMaxBytesPerPartition: r.int(
          "KAFKA__FETCH_MAX_BYTES_PER_PARTITION",
          Math.max(65_536, Math.floor(fetchMaxBytes / partitionsConcurrency)),
          65_536,
          1024 * 1_048_576,
        ),
        // Chosen by the benchmark's latency at half load (see the README).
        fetchMinBytes: r.int("KAFKA__FETCH_MIN_BYTES", 65_536, 1, 64 * 1_048_576),
        fetchMaxWait: Duration.millis(r.int("KAFKA__FETCH_MAX_WAIT_MS", 25, 1, 10_000)),
      },
      mongodb: {
        uri,
        database: r.string("MONGODB__DATABASE"),
        collection: r.string("MONGODB__COLLECTION"),
        timeout: r.seconds("MONGODB__TIMEOUT_SECONDS", 30, 1, 3600),
        replaceBatchSize: r.int("MONGODB__REPLACE_BATCH_SIZE", 25, 1, 100_000),
        writeModel,
        onTombstone: r.oneOf("MONGODB__ON_TOMBSTONE", ["delete", "ignore", "dead_letter"], "dead_letter"),
        onExisting,
      },
      pipeline: {
        file: r.string("PIPELINE__FILE", "config/pipeline.yaml"),
        batchSize: r.int("PIPELINE__BATCH_SIZE", 500, 1, 100_000),
        maxWorkers: r.int("PIPELINE__MAX_WORKERS", 10, 1, 1000),
        partitionsConcurrency,
        batchesInFlight: r.int("PIPELINE__BATCHES_IN_FLIGHT", 3, 1, 100),
        maxInFlightBytes: r.int("PIPELINE__MAX_IN_FLIGHT_BYTES", 16 * 1_048_576, 1_048_576, 4096 * 1_048_576),
        retryCount: r.int("PIPELINE__RETRY_COUNT", 3, 0, 100),
        retryDelay: r.seconds("PIPELINE__RETRY_DELAY_SECONDS", 5, 0, 3600),
        maxRetryDelay: r.seconds("PIPELINE__MAX_RETRY_DELAY_SECONDS", 60, 0, 86_400),
        shutdownTimeout: r.seconds("PIPELINE__SHUTDOWN_TIMEOUT_SECONDS", 30, 0, 3600),
        stallTimeout: r.seconds("PIPELINE__STALL_TIMEOUT_SECONDS", 60, 0, 86_400),
        // MongoDB stores documents nested at most 100 levels deep; the strictest of the sinks.
        maxNestingDepth: r.int("PIPELINE__MAX_NESTING_DEPTH", 100, 2, 100),
        // 1 KiB: what MongoDB's indexes took as a key for years (KeyTooLong beyond it).
        maxKeyBytes: r.int("PIPELINE__MAX_KEY_BYTES", 1024, 1, 1_048_576),
        sourceFormat: r.oneOf("PIPELINE__SOURCE_FORMAT", ["plain", "debezium"], "plain"),
      },
      logging: {
        level: r.oneOf("LOGGING__LEVEL", ["DEBUG", "INFO", "WARNING", "ERROR"], "INFO"),
        format: r.oneOf("LOGGING__FORMAT", ["json", "text"], "json"),
      },
      metrics: {
        port: r.int("METRICS__PORT", 9464, 0, 65_535),
        host: metricsHost,
        statusToken,
        progressInterval: r.seconds("METRICS__PROGRESS_INTERVAL_SECONDS", 30, 0, 86_400),
      },
    }
    r.problems.push(...unknownSettings(env, r.names))
    return r.problems.length > 0
      ? Effect.fail(new ConfigProblems({ problems: r.problems }))
      : Effect.succeed(settings)
  })

/** The process environment over the variables of a .env file (the real environment wins). */
export const readEnvironment = (envFile = process.env.ENV_FILE ?? ".env"): Env => {
  let fromFile: Env = {}
  try {
    fromFile = parseEnv(readFileSync(envFile, "utf8"))
  } catch {
    // No .env file is the normal case in production.
  }
  return { ...fromFile, ...process.env }
}

/** A printable view of the settings: secrets print as `<redacted:NAME>` (Redacted's own toJSON). */
export const describeSettings = (s: AppSettings): string =>
  JSON.stringify(
    s,
    // `this[key]` is the value before its own toJSON ran: a Duration, not Duration's JSON form.
    function (this: Record<string, unknown>, key, value: unknown) {
      const raw = this[key]
      return Duration.isDuration(raw) ? Duration.format(raw) : value
    },
    2,
  )

export class AppConfig extends Context.Service<AppConfig, AppSettings>()("pipeline/AppConfig") {
  static readonly layer = Layer.effect(
    AppConfig,
    Effect.suspend(() => decodeSettings(readEnvironment())),
  )
  static readonly layerFrom = (env: Env) => Layer.effect(AppConfig, decodeSettings(env))
}
