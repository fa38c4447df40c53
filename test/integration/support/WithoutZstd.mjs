// Preloaded into the service (NODE_OPTIONS=--import=...) by a test: kafkajs' zstd codec is
// withheld, whatever registers one later, so that a zstd record batch is one this client cannot
// decode, as a client lacking a codec meets it.
import { createRequire } from "node:module"

const require = createRequire(import.meta.url)
const { CompressionCodecs, CompressionTypes } = require("kafkajs")

Object.defineProperty(CompressionCodecs, CompressionTypes.ZSTD, {
  get: () => () => {
    throw new Error("ZSTD compression withheld by the test (test/integration/support/WithoutZstd.mjs)")
  },
  set: () => undefined,
  enumerable: true,
  configurable: false,
})
