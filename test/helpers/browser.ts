/**
 * Headless Chromium (Debian's `chromium` package, launched through playwright-core; no browser
 * download) for the player-page tests, with the flags measured in shared/reference/browser.md, and
 * the checks those tests share: the video's currentTime advances, no error event, and pixels read
 * back through a canvas are not black.
 */
import { existsSync } from 'node:fs'
import { chromium, type Browser, type Page } from 'playwright-core'

export const CHROMIUM = '/usr/lib/chromium/chromium'

export async function launchChromium (): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (see .ci/run)`)
  return await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required'
    ],
    timeout: 30_000
  })
}

export interface PageLog {
  /** Uncaught page errors and console errors (the favicon 404 filtered out). */
  errors: string[]
  /** Every WebSocket frame the page received, as text heads (for protocol assertions). */
  wsFramesIn: number
}

/** Record page errors and WebSocket traffic of `page`. */
export function watchPage (page: Page): PageLog {
  const log: PageLog = { errors: [], wsFramesIn: 0 }
  page.on('pageerror', e => log.errors.push(`pageerror: ${e.message}`))
  page.on('console', m => {
    if (m.type() === 'error' && !/favicon\.ico|404 \(Not Found\)/.test(m.text() + (m.location().url ?? ''))) {
      log.errors.push(`console: ${m.text()}`)
    }
  })
  page.on('websocket', ws => { ws.on('framereceived', () => { log.wsFramesIn++ }) })
  return log
}

export interface PlayerState {
  state: string
  offset: number
  duration: number | null
  position: number
  message: string
  kind: string
  errors: Array<string | number>
}

export async function playerState (page: Page): Promise<PlayerState> {
  return await page.evaluate('window.tgPlayer.state()') as PlayerState
}

export async function videoTime (page: Page): Promise<number> {
  return await page.evaluate("document.querySelector('video').currentTime") as number
}

/** Wait until `fn` holds (polled in the test process), or throw with the last value. */
export async function until<T> (
  fn: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs: number,
  what: string
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let v = await fn()
  while (!ok(v)) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(v)}`)
    }
    await new Promise(resolve => setTimeout(resolve, 200))
    v = await fn()
  }
  return v
}

/** Share of pixels that are not black (any channel > 24) in a frame drawn from the video. */
export async function nonBlackShare (page: Page): Promise<{ share: number, width: number, height: number }> {
  // (page-side code as a string: the test tsconfig has no DOM library)
  return await page.evaluate(`(() => {
    const v = document.querySelector('video')
    const c = document.createElement('canvas')
    c.width = v.videoWidth
    c.height = v.videoHeight
    const g = c.getContext('2d')
    g.drawImage(v, 0, 0)
    const d = g.getImageData(0, 0, c.width, c.height).data
    let lit = 0
    for (let i = 0; i < d.length; i += 4) if (d[i] > 24 || d[i + 1] > 24 || d[i + 2] > 24) lit++
    return { share: lit / (d.length / 4), width: c.width, height: c.height }
  })()`) as { share: number, width: number, height: number }
}

/** Video error events seen by the page since load (installed before the player script runs). */
export async function installErrorProbe (page: Page): Promise<void> {
  await page.addInitScript(`
    window.__videoErrors = []
    document.addEventListener('error', e => {
      const t = e.target
      if (t !== null && t.tagName === 'VIDEO') window.__videoErrors.push('video error ' + (t.error ? t.error.code + ': ' + t.error.message : '?'))
    }, true)
  `)
}

export async function videoErrors (page: Page): Promise<string[]> {
  return await page.evaluate('window.__videoErrors') as string[]
}

/**
 * The player at `url` plays: currentTime advances by ≥ `seconds` with no error event, and a frame
 * read through a canvas is not black. Returns what was measured.
 */
export async function checkPlays (
  page: Page,
  url: string,
  seconds = 5,
  timeoutMs = 30_000
): Promise<{ t0: number, t1: number, share: number, width: number, height: number, state: PlayerState }> {
  await page.goto(url)
  const t0 = await until(
    () => videoTime(page),
    t => t > 0,
    timeoutMs,
    `the video at ${url} to start`
  )
  const t1 = await until(
    () => videoTime(page),
    t => t >= t0 + seconds,
    timeoutMs,
    `currentTime to advance ${seconds} s at ${url}`
  )
  const pixels = await nonBlackShare(page)
  return { t0, t1, ...pixels, state: await playerState(page) }
}
