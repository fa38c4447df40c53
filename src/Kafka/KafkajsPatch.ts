/**
 * What the project's patch of kafkajs (patches/kafkajs+2.2.4.patch, applied by `npm ci`) adds,
 * seen from here: the decoded bytes one partition's part of a fetch may hold, and the record
 * batch a partition could not decode. The patch also decodes headers in linear time and keeps
 * every header name as an own property (see the patch).
 */
import { createRequire } from "node:module"
import type { Batch } from "kafkajs"

interface DecodeLimits {
  maxDecodedBytesPerPartition: number
}

const require = createRequire(import.meta.url)

const decodeLimits = (): DecodeLimits => {
  const decodeMessages = require("kafkajs/src/protocol/requests/fetch/v4/decodeMessages") as {
    readonly limits?: DecodeLimits
  }
  if (decodeMessages.limits === undefined)
    throw new Error("kafkajs is not patched (patches/kafkajs+2.2.4.patch): run npm ci, which applies it")
  return decodeMessages.limits
}

/** Past this many decoded bytes, the rest of a partition's fetched record batches waits for the next fetch. */
export const limitDecodedBytesPerPartition = (bytes: number): void => {
  decodeLimits().maxDecodedBytesPerPartition = bytes
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
