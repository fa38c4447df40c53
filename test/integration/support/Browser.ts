/**
 * A real headless Chromium for the tests of the status page: the machine's own browser
 * (Debian's `chromium`, or CHROMIUM_PATH), driven by playwright-core, which never downloads a
 * browser of its own. Each launch has a fresh profile, removed when it closes.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BrowserContext, chromium } from "playwright-core"

export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"

export interface Browser {
  readonly context: BrowserContext
  readonly close: () => Promise<void>
}

export const launchChromium = async (
  options: {
    readonly width?: number
    readonly height?: number
    readonly colorScheme?: "light" | "dark"
  } = {},
): Promise<Browser> => {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `no Chromium at ${chromiumPath}: install Debian's package (apt-get install chromium) or set CHROMIUM_PATH`,
    )
  }
  const profile = mkdtempSync(join(tmpdir(), "status-page-chromium-"))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: options.width ?? 1440, height: options.height ?? 900 },
    colorScheme: options.colorScheme ?? "light",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  })
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined)
      rmSync(profile, { recursive: true, force: true })
    },
  }
}
