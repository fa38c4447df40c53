/**
 * What a message takes in a record batch on the wire, uncompressed: for cutting sends into
 * requests and for checking what a topic accepts before sending.
 */
import type { IHeaders, Message } from "kafkajs"
import type { SourceHeaders } from "../Domain/Record.js"

const bytesOf = (value: string | Buffer | null | undefined): number =>
  value === null || value === undefined
    ? 0
    : typeof value === "string"
      ? Buffer.byteLength(value)
      : value.length

// A record's own framing in a batch: length, attributes, timestamp and offset deltas, varints.
const recordOverheadBytes = 32
const headerOverheadBytes = 8

/** About what the headers take in a record batch (a little more, never less). */
export const headersSize = (headers: IHeaders | SourceHeaders | undefined): number => {
  let bytes = 0
  if (headers !== undefined) {
    for (const name of Object.keys(headers)) {
      const value = headers[name]
      bytes += headerOverheadBytes + Buffer.byteLength(name)
      if (Array.isArray(value)) for (const v of value) bytes += headerOverheadBytes + bytesOf(v)
      else bytes += bytesOf(value as string | Buffer | undefined)
    }
  }
  return bytes
}

/** About what the message takes in a record batch, uncompressed (a little more, never less). */
export const encodedSize = (message: Message): number =>
  recordOverheadBytes + bytesOf(message.key) + bytesOf(message.value) + headersSize(message.headers)

// A UTF-16 unit is at most 3 UTF-8 bytes: a string's length bounds its bytes without reading it.
const boundOf = (value: string | Buffer | null | undefined): number =>
  value === null || value === undefined ? 0 : typeof value === "string" ? value.length * 3 : value.length

/** At least encodedSize(message), from the strings' lengths alone (no UTF-8 counting). */
export const encodedSizeBound = (message: Message): number => {
  let bytes = recordOverheadBytes + boundOf(message.key) + boundOf(message.value)
  const headers = message.headers
  if (headers !== undefined) {
    for (const name in headers) {
      const value = headers[name]
      bytes += headerOverheadBytes + name.length * 3
      if (Array.isArray(value)) for (const v of value) bytes += headerOverheadBytes + boundOf(v)
      else bytes += boundOf(value as string | Buffer | undefined)
    }
  }
  return bytes
}
