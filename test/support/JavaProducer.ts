/**
 * Produces to Kafka exactly as the Java client (kafka-clients 4.1.2) does, and reads back as it
 * does, for tests that must see what producers in the wild send: compressed batches (gzip,
 * snappy, lz4, zstd), many headers with any names and null values, transactions. Runs
 * test/support/java/Produce.java with the broker's own jars (`.stack/kafka/lib/*`, no build
 * step); one JVM per call, about 2 s.
 */
import { spawn } from "node:child_process"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { settings } from "../../scripts/stack.js"
import { kafkaBrokers } from "../integration/support/Stack.js"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const program = join(root, "test", "support", "java", "Produce.java")
const classpath = join(settings.dir, "kafka", "lib", "*")
/** A short-lived JVM: C1 only, the serial collector, no perf-data file. */
const jvmFlags = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:-UsePerfData", "-Xmx256m"]

/** Bytes as they are, or a string sent as its UTF-8 bytes. */
export type JavaBytes = Buffer | string

export interface JavaHeader {
  /** Any string; Kafka stores it as UTF-8. Names may repeat; the order is kept. */
  readonly name: string
  readonly value: JavaBytes | null
}

export interface JavaRecord {
  /** Default: the client's partitioner (the key's hash, or the sticky partition for a null key). */
  readonly partition?: number
  readonly key?: JavaBytes | null
  /** null: a tombstone. */
  readonly value: JavaBytes | null
  /** Milliseconds; default: the client's clock at send. */
  readonly timestamp?: number
  readonly headers?: ReadonlyArray<JavaHeader>
}

export interface JavaProduceSpec {
  readonly topic: string
  readonly records: ReadonlyArray<JavaRecord>
  /** Default: the local stack's broker. */
  readonly bootstrapServers?: ReadonlyArray<string>
  /** Default: none. */
  readonly compression?: "none" | "gzip" | "snappy" | "lz4" | "zstd"
  /** With a large `batchSize`, many records go in one (compressed) batch. */
  readonly lingerMs?: number
  readonly batchSize?: number
  readonly acks?: "all" | "-1" | "1" | "0"
  /** Default: the client's own (true, unless acks is not all). */
  readonly enableIdempotence?: boolean
  /** All the records in one transaction of this id, committed (or aborted with `abort`). */
  readonly transactionalId?: string
  readonly abort?: boolean
  /** Any other producer setting, e.g. `{ "compression.zstd.level": "9" }`. */
  readonly config?: Readonly<Record<string, string>>
  /** How long the JVM may take before it is killed; default 120 s. */
  readonly timeoutMs?: number
}

/** Where each record was written, in the order of `records`. */
export interface JavaProduced {
  readonly partition: number
  /** -1 with acks=0. */
  readonly offset: string
}

export interface JavaConsumeSpec {
  readonly topic: string
  readonly bootstrapServers?: ReadonlyArray<string>
  /** Stop after this many records; without it, at the end offsets the partitions had when the read began. */
  readonly count?: number
  /** Stop then with what was read (not an error; compare the count); default 30 s. */
  readonly timeoutMs?: number
  /** Default read_committed. */
  readonly isolationLevel?: "read_committed" | "read_uncommitted"
  /** Default: every partition of the topic. */
  readonly partitions?: ReadonlyArray<number>
  readonly config?: Readonly<Record<string, string>>
}

export interface JavaConsumed {
  readonly partition: number
  readonly offset: string
  readonly timestamp: string
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: ReadonlyArray<{ readonly name: string; readonly value: Buffer | null }>
}

export class JavaClientError extends Error {
  override readonly name = "JavaClientError"
}

const asBytes = (b: JavaBytes): Buffer => (typeof b === "string" ? Buffer.from(b, "utf8") : b)
/** Text as text (readable in the spec), bytes as base64. */
const wire = (b: JavaBytes | null | undefined) =>
  b === null || b === undefined
    ? null
    : typeof b === "string"
      ? { text: b }
      : { base64: b.toString("base64") }
const fromBase64 = (s: string | null): Buffer | null => (s === null ? null : Buffer.from(s, "base64"))

/** Sends `spec.records` in order with one Java producer; resolves once every one is acknowledged. */
export const produceWithJava = async (spec: JavaProduceSpec): Promise<ReadonlyArray<JavaProduced>> => {
  const { timeoutMs = 120_000, bootstrapServers = kafkaBrokers, records, ...options } = spec
  const input = {
    ...options,
    bootstrapServers: bootstrapServers.join(","),
    records: records.map((r) => ({
      ...(r.partition === undefined ? {} : { partition: r.partition }),
      ...(r.timestamp === undefined ? {} : { timestamp: r.timestamp }),
      key: wire(r.key),
      value: wire(r.value),
      headers: (r.headers ?? []).map((h) => ({
        name: h.name,
        value: h.value === null ? null : asBytes(h.value).toString("base64"),
      })),
    })),
  }
  const stdout = await runJava("produce", input, timeoutMs)
  const produced = JSON.parse(stdout) as ReadonlyArray<JavaProduced>
  if (!Array.isArray(produced) || produced.length !== records.length) {
    throw new JavaClientError(`Produce.java produce: expected ${records.length} results, got: ${stdout}`)
  }
  return produced
}

/** Reads a topic from the beginning with a Java consumer (read_committed unless told otherwise). */
export const consumeWithJava = async (spec: JavaConsumeSpec): Promise<ReadonlyArray<JavaConsumed>> => {
  const { bootstrapServers = kafkaBrokers, timeoutMs = 30_000, ...options } = spec
  const input = { ...options, timeoutMs, bootstrapServers: bootstrapServers.join(",") }
  // The JVM's own start and the client's connection come on top of the read's timeout.
  const stdout = await runJava("consume", input, timeoutMs + 60_000)
  return stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const r = JSON.parse(line) as {
        partition: number
        offset: string
        timestamp: string
        key: string | null
        value: string | null
        headers: ReadonlyArray<{ name: string; value: string | null }>
      }
      return {
        partition: r.partition,
        offset: r.offset,
        timestamp: r.timestamp,
        key: fromBase64(r.key),
        value: fromBase64(r.value),
        headers: r.headers.map((h) => ({ name: h.name, value: fromBase64(h.value) })),
      }
    })
}

/** Runs Produce.java in `mode` with `input` as its stdin; its stdout, or an error with its stderr. */
const runJava = (mode: "produce" | "consume", input: unknown, timeoutMs: number): Promise<string> =>
  new Promise((resolvePromise, reject) => {
    const child = spawn("java", [...jvmFlags, "-cp", classpath, program, mode], {
      cwd: root,
      stdio: ["pipe", "pipe", "pipe"],
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on("data", (b: Buffer) => out.push(b))
    child.stderr.on("data", (b: Buffer) => err.push(b))
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, timeoutMs)
    const stderr = () => Buffer.concat(err).toString("utf8").trim()
    child.on("error", (e) => {
      clearTimeout(timer)
      reject(new JavaClientError(`could not run java (Java 17+ must be on the PATH): ${e.message}`))
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      const why = timedOut
        ? `timed out after ${timeoutMs} ms`
        : code === 0
          ? undefined
          : `exited with ${code ?? signal}`
      if (why === undefined) return resolvePromise(Buffer.concat(out).toString("utf8"))
      // The program's own message first (its last lines), then all of stderr with the client's log.
      const all = stderr()
      const own = all.split("\n").filter((l) => l.startsWith("Produce.java") || l.startsWith("  caused by:"))
      const message = own.length > 0 ? `: ${own.join("\n")}` : ""
      reject(new JavaClientError(`Produce.java ${mode} ${why}${message}\nstderr:\n${all || "(empty)"}`))
    })
    // A JVM that dies before reading its input closes the pipe; the exit code tells why.
    child.stdin.on("error", () => undefined)
    child.stdin.end(JSON.stringify(input))
  })
