/**
 * The media directory: every .mp4/.mov/.m4v file opened and validated once at start-up.
 * A file that is not valid MP4 or carries an unsupported codec is logged once and skipped.
 * Names resolve with or without the extension (`demo` and `demo.mp4`).
 */
import { readdir } from 'node:fs/promises'
import { extname, join } from 'node:path'
import { MediaSource } from './media-source.js'
import type { OriginLogger } from './options.js'

const EXTENSIONS = new Set(['.mp4', '.mov', '.m4v'])

export class MediaCatalog {
  readonly #byName = new Map<string, MediaSource>()
  readonly #sources: MediaSource[] = []

  static async load (dir: string, log: OriginLogger, maxPayload?: number): Promise<MediaCatalog> {
    const cat = new MediaCatalog()
    const entries = (await readdir(dir, { withFileTypes: true })).filter(
      (e) => e.isFile() && EXTENSIONS.has(extname(e.name).toLowerCase())
    )
    entries.sort((a, b) => a.name.localeCompare(b.name))
    for (const e of entries) {
      const file = join(dir, e.name)
      try {
        const src = await MediaSource.open(file, maxPayload)
        if (cat.#byName.has(src.name)) {
          log.warn({ file, name: src.name }, 'origin: skipping media file: another file has the same name')
          await src.close()
          continue
        }
        cat.#byName.set(src.name, src)
        cat.#byName.set(e.name, src)
        cat.#sources.push(src)
        log.info(
          { file, name: src.name, durationSec: src.durationSec, tracks: src.tracks.map((t) => t.kind) },
          'origin: media loaded'
        )
      } catch (err) {
        log.warn({ file, reason: err instanceof Error ? err.message : String(err) }, 'origin: skipping media file')
      }
    }
    return cat
  }

  get (name: string): MediaSource | undefined { return this.#byName.get(name) }

  names (): string[] { return this.#sources.map((s) => s.name) }

  async close (): Promise<void> { await Promise.all(this.#sources.map((s) => s.close())) }
}
