/** Addresses of the local stack that the integration tests run against. */
import { randomUUID } from "node:crypto"
import { settings } from "../../../scripts/stack.js"

export const kafkaBrokers = [`${settings.host}:${settings.kafkaPort}`]
export const mongoUri = `mongodb://${settings.host}:${settings.mongoPort}/`

/** A name no other test run uses, so tests never see each other's data. */
export const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`
