/**
 * kafkajs 2.2.4 arms timers with negative delays, which Node 24 reports as a
 * TimeoutNegativeWarning on every run (kafkajs issue #1751). The timers behave as 1 ms
 * timers, so the warning is noise: drop exactly that one and keep every other warning.
 */
let installed = false

export const silenceKafkajsTimeoutWarning = (): void => {
  if (installed) return
  installed = true
  const previous = process.listeners("warning")
  process.removeAllListeners("warning")
  process.on("warning", (warning) => {
    if (warning.name === "TimeoutNegativeWarning") return
    for (const listener of previous) listener(warning)
  })
}
