/**
 * The producer's side of kafkajs in this process, without a broker: a send of N sink-like
 * messages (a key, a JSON value of about 400 bytes, the four `pipeline.*` headers and up to two
 * source headers, some of them null) grouped by partition with kafkajs' default partitioner, then
 * encoded as a Produce request (record batches, then the request), the work `producer.send` does
 * before it writes to the socket. The installed kafkajs (as `npm ci` patches it) is timed, and
 * with `--baseline <dir>` another copy of kafkajs beside it, alternately, after a check that both
 * encode the same messages to the same bytes.
 *
 * A baseline: `npm pack kafkajs@2.2.4` and unpack it to /tmp, then `npx patch-package` against an
 * older patch, or copy node_modules/kafkajs before changing it (`cp -r node_modules/kafkajs /tmp/before`).
 *
 * Each round encodes sends for at least `--min-ms`; the figure is µs per message, the median of
 * the rounds after one of warm-up.
 *
 * Run with `npm run bench -- produce-encoding [--messages 500] [--rounds 9] [--min-ms 300]
 * [--codec none|lz4] [--baseline <kafkajs dir>]`.
 */

import { createRequire } from "node:module"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { lz4Codec } from "../src/Kafka/Codecs.js"

const require = createRequire(import.meta.url)

interface Message {
  readonly key: string
  readonly value: string
  readonly headers: Record<string, string | Buffer | null>
}
interface PartitionMetadata {
  readonly partitionId: number
  readonly leader: number
}
type Partitioner = (args: {
  topic: string
  partitionMetadata: PartitionMetadata[]
  message: Message
}) => number
interface TopicData {
  readonly topic: string
  readonly partitions: Array<{ partition: number; messages: Message[]; firstSequence?: number }>
}
interface Kafkajs {
  readonly name: string
  readonly group: (args: {
    topic: string
    partitionMetadata: PartitionMetadata[]
    messages: Message[]
    partitioner: Partitioner
  }) => Record<string, Message[]>
  readonly createTopicData: (
    data: Array<{ topic: string; partitions: string[]; messagesPerPartition: Record<string, Message[]> }>,
  ) => TopicData[]
  readonly produce: (args: {
    acks: number
    timeout: number
    compression: number
    topicData: TopicData[]
  }) => { encode(): Promise<{ readonly buffer: Buffer }> }
  readonly partitioner: Partitioner
}

const load = (name: string, dir: string): Kafkajs => {
  const from = (path: string) => require(join(dir, "src", path))
  const compression = from("protocol/message/compression") as { Codecs: Record<number, () => unknown> }
  compression.Codecs[3] = () => lz4Codec
  return {
    name,
    group: from("producer/groupMessagesPerPartition"),
    createTopicData: from("producer/createTopicData"),
    produce: from("protocol/requests/produce/v3/request"),
    partitioner: (from("producer/partitioners/default") as () => Partitioner)(),
  }
}

const { values: options } = parseArgs({
  args: process.argv.slice(2),
  options: {
    messages: { type: "string", default: "500" },
    rounds: { type: "string", default: "9" },
    "min-ms": { type: "string", default: "300" },
    codec: { type: "string", default: "none" },
    baseline: { type: "string" },
  },
})
const messageCount = Number(options.messages)
const rounds = Number(options.rounds)
const minMs = Number(options["min-ms"])
const compression = options.codec === "lz4" ? 3 : 0

const topic = "pipeline.sink"
const partitionMetadata: PartitionMetadata[] = [0, 1, 2].map((partitionId) => ({ partitionId, leader: 1 }))

const sinkLike = (i: number): Message => {
  const source: Record<string, Buffer | null> =
    i % 3 === 0
      ? {}
      : i % 3 === 1
        ? { traceparent: Buffer.from(`00-${"a".repeat(32)}-${"b".repeat(16)}-01`) }
        : {
            "content-type": Buffer.from("application/json"),
            "x-retry": null,
          }
  return {
    key: `customer-${100_000 + i}`,
    value: JSON.stringify({
      id: 100_000 + i,
      name: `Customer ${i} Ünïcode`,
      email: `customer${i}@example.com`,
      status: i % 5 === 0 ? "inactive" : "active",
      amount: Math.round(i * 137.17) / 100,
      currency: "EUR",
      createdAt: new Date(1_700_000_000_000 + i * 1000).toISOString(),
      address: {
        street: `${i} Main Street`,
        city: "Springfield",
        zip: String(10_000 + (i % 90_000)),
        country: "DE",
      },
      tags: ["alpha", "beta", "gamma"].slice(0, 1 + (i % 3)),
      notes: "x".repeat(60 + (i % 40)),
    }),
    headers: {
      ...source,
      "pipeline.correlation_id": `0f8e${i % 10}c2a-7d3b-4c1e-9a55-${String(i).padStart(12, "0")}`,
      "pipeline.source.topic": "pipeline.source",
      "pipeline.source.partition": String(i % 3),
      "pipeline.source.offset": String(1_000_000 + i),
    },
  }
}
const messages = Array.from({ length: messageCount }, (_, i) => sinkLike(i))

const encodeSend = async (k: Kafkajs): Promise<Buffer> => {
  const messagesPerPartition = k.group({ topic, partitionMetadata, messages, partitioner: k.partitioner })
  const topicData = k.createTopicData([
    { topic, partitions: Object.keys(messagesPerPartition), messagesPerPartition },
  ])
  for (const { partitions } of topicData) for (const entry of partitions) entry.firstSequence = 0
  const request = k.produce({ acks: -1, timeout: 30_000, compression, topicData })
  return (await request.encode()).buffer
}

/** µs per message over sends for at least `minMs`. */
const round = async (k: Kafkajs): Promise<number> => {
  let sends = 0
  const start = performance.now()
  let elapsed = 0
  while (elapsed < minMs) {
    await encodeSend(k)
    sends++
    elapsed = performance.now() - start
  }
  return (elapsed * 1000) / (sends * messageCount)
}

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

const main = async () => {
  const trees = [load("installed", join(import.meta.dirname, "..", "node_modules", "kafkajs"))]
  if (options.baseline !== undefined) trees.unshift(load("baseline", options.baseline))
  if (trees.length === 2) {
    // Same bytes from both: the clock fixed, as the request stamps the batch with Date.now().
    const now = Date.now
    Date.now = () => 1_700_000_000_000
    const [a, b] = await Promise.all(trees.map(encodeSend))
    Date.now = now
    if (a === undefined || b === undefined || !a.equals(b))
      throw new Error("the two copies encode different bytes")
    process.stdout.write(`same bytes from both copies (${a.length} bytes for ${messageCount} messages)\n`)
  }
  const times = new Map(trees.map((k) => [k.name, [] as number[]]))
  for (let r = 0; r <= rounds; r++) {
    for (const k of r % 2 === 0 ? trees : [...trees].reverse()) {
      const us = await round(k)
      if (r > 0) times.get(k.name)?.push(us)
    }
  }
  process.stdout.write(
    `${messageCount} messages a send, codec ${options.codec}, ${rounds} rounds of at least ${minMs} ms, µs per message (median):\n`,
  )
  for (const [name, us] of times)
    process.stdout.write(
      `  ${name.padEnd(10)} ${median(us).toFixed(2)}  (rounds: ${us.map((u) => u.toFixed(2)).join(" ")})\n`,
    )
  const base = times.get("baseline")
  const installed = times.get("installed")
  if (base !== undefined && installed !== undefined)
    process.stdout.write(`  installed / baseline: ${(median(installed) / median(base)).toFixed(2)}\n`)
}

await main()
