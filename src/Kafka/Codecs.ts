/**
 * The record batch codecs Kafka defines, registered in kafkajs (which reads only gzip by itself):
 * snappy and lz4 from native packages (prebuilt binaries in the npm packages, no build step),
 * zstd from Node's own zlib. Registered once per process, before the first fetch or send.
 *
 * Snappy in Kafka comes in two framings: the Java client writes xerial's stream format (a magic
 * header, then length-prefixed blocks); librdkafka and others write one raw snappy block. Both
 * are read; xerial's is written, as the Java client does, so every consumer reads it.
 */
import { promisify } from "node:util"
import * as zlib from "node:zlib"
import kafkajs from "kafkajs"
import * as lz4 from "lz4-napi"
import * as snappy from "snappy"

// kafkajs is CommonJS and these two are not among the names Node finds in it for an ES import.
const { CompressionCodecs, CompressionTypes } = kafkajs

/** What a codec is given to compress: kafkajs' encoder, whose buffer holds the records. */
interface Encoder {
  readonly buffer: Buffer
}

interface Codec {
  readonly compress: (encoder: Encoder) => Promise<Buffer>
  readonly decompress: (buffer: Buffer) => Promise<Buffer>
}

const xerialMagic = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00])
const xerialHeaderBytes = 16
// xerial's default block size: the Java client's readers expect blocks of about this size.
const xerialBlockBytes = 32 * 1024

const isXerial = (buffer: Buffer): boolean =>
  buffer.length >= xerialHeaderBytes && buffer.subarray(0, xerialMagic.length).equals(xerialMagic)

const readXerial = (buffer: Buffer): Buffer => {
  const blocks: Buffer[] = []
  let at = xerialHeaderBytes
  while (at < buffer.length) {
    if (at + 4 > buffer.length) throw new Error("snappy (xerial): truncated block length")
    const length = buffer.readUInt32BE(at)
    at += 4
    if (at + length > buffer.length) throw new Error("snappy (xerial): truncated block")
    blocks.push(snappy.uncompressSync(buffer.subarray(at, at + length), { asBuffer: true }) as Buffer)
    at += length
  }
  return Buffer.concat(blocks)
}

const writeXerial = (buffer: Buffer): Buffer => {
  const header = Buffer.alloc(xerialHeaderBytes)
  xerialMagic.copy(header)
  header.writeInt32BE(1, 8) // version
  header.writeInt32BE(1, 12) // compatible version
  const parts: Buffer[] = [header]
  for (let at = 0; at < buffer.length; at += xerialBlockBytes) {
    const block = snappy.compressSync(buffer.subarray(at, at + xerialBlockBytes))
    const length = Buffer.alloc(4)
    length.writeUInt32BE(block.length)
    parts.push(length, block)
  }
  return Buffer.concat(parts)
}

export const snappyCodec: Codec = {
  compress: async (encoder) => writeXerial(encoder.buffer),
  decompress: async (buffer) =>
    isXerial(buffer) ? readXerial(buffer) : (snappy.uncompressSync(buffer, { asBuffer: true }) as Buffer),
}

/** Kafka's lz4 (message format 2) is the standard LZ4 frame format. */
export const lz4Codec: Codec = {
  compress: (encoder) => lz4.compressFrame(encoder.buffer),
  decompress: (buffer) => lz4.decompressFrame(buffer),
}

const zstdCompress = promisify(zlib.zstdCompress)
const zstdDecompress = promisify(zlib.zstdDecompress)

export const zstdCodec: Codec = {
  compress: (encoder) => zstdCompress(encoder.buffer),
  decompress: (buffer) => zstdDecompress(buffer),
}

/** Makes kafkajs read and write snappy, lz4 and zstd (gzip it has). Safe to call more than once. */
export const registerCodecs = (): void => {
  CompressionCodecs[CompressionTypes.Snappy] = () => snappyCodec
  CompressionCodecs[CompressionTypes.LZ4] = () => lz4Codec
  CompressionCodecs[CompressionTypes.ZSTD] = () => zstdCodec
}

/** The codecs by the name KAFKA__COMPRESSION gives them. */
export const compressionTypes = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
} as const

export type CompressionName = keyof typeof compressionTypes

export const compressionNames = Object.keys(compressionTypes) as ReadonlyArray<CompressionName>
