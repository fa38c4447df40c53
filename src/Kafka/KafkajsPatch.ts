/**
 * What the project's patch of kafkajs (patches/kafkajs+2.2.4.patch, applied by `npm ci`) adds,
 * seen from here: the decoded bytes one partition's part of a fetch may hold, the record batch a
 * partition could not decode, and checks that its producer side and the consumer's
 * `beforeRejoin` (awaited when the group rebalances, before kafkajs rejoins it) are there. The patch also
 * decodes headers in linear time and keeps every header name as an own property; on the
 * producer side it encodes each record into one buffer of its exact size, groups a send's
 * messages by partition in linear time and hashes keys without 64-bit arithmetic (see the patch).
 */
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import type { Batch } from "kafkajs"

interface DecodeLimits {
  maxDecodedBytesPerPartition: number
}

const require = createRequire(import.meta.url)

const notPatched = "kafkajs is not patched (patches/kafkajs+2.2.4.patch): run npm ci, which applies it"

const decodeLimits = (): DecodeLimits => {
  const decodeMessages = require("kafkajs/src/protocol/requests/fetch/v4/decodeMessages") as {
    readonly limits?: DecodeLimits
  }
  if (decodeMessages.limits === undefined) throw new Error(notPatched)
  return decodeMessages.limits
}

/** Past this many decoded bytes, the rest of a partition's fetched record batches waits for the next fetch. */
export const limitDecodedBytesPerPartition = (bytes: number): void => {
  decodeLimits().maxDecodedBytesPerPartition = bytes
}

type RecordEncoder = (record: { key: string; value: string; headers: Record<string, string> }) => {
  readonly buf: Buffer
  readonly offset: number
}

/**
 * Throws unless the patch's record encoder is installed: it writes a record into a buffer of the
 * record's exact size, where kafkajs' own starts every record and header at 512 bytes.
 */
export const requirePatchedEncoder = (): void => {
  const encodeRecord = require("kafkajs/src/protocol/recordBatch/record/v0") as RecordEncoder
  const encoded = encodeRecord({ key: "key", value: "value", headers: { name: "value" } })
  if (encoded.buf.length !== encoded.offset) throw new Error(notPatched)
}

/** Throws unless `consumer.run` takes `beforeRejoin`, awaited before kafkajs rejoins a rebalancing group. */
export const requireRejoinHook = (): void => {
  const runner = readFileSync(require.resolve("kafkajs/src/consumer/runner"), "utf8")
  if (!runner.includes("await this.beforeRejoin()")) throw new Error(notPatched)
}

/** A record batch of the fetched partition that could not be decoded: its first offset and the error. */
export interface DecodeFailure {
  readonly offset: string
  readonly error: unknown
}

export const decodeFailureOf = (batch: Batch): DecodeFailure | undefined => {
  const failure: unknown = Reflect.get(batch, "decodeError")
  return typeof failure === "object" && failure !== null && "offset" in failure && "error" in failure
    ? { offset: String(failure.offset), error: failure.error }
    : undefined
}
