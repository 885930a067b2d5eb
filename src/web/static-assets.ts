/**
 * Page files of the web surface, kept as files (HTML, scripts, styles) beside the modules that serve
 * them: src/web/<folder> when running from src/, dist/web/<folder> once the build copied them
 * (`npm run build`, docker/Dockerfile). Read once at start-up, so a missing file fails then.
 */
import { readFileSync } from 'node:fs'
import { dirname, extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml'
}

export interface StaticAsset { body: Buffer, type: string }

/** `names` of the asset folder `folder` (under src/web or dist/web), with their content types. */
export function loadAssets (folder: string, names: readonly string[]): Map<string, StaticAsset> {
  const dir = join(dirname(fileURLToPath(import.meta.url)), folder)
  return new Map(names.map(name => {
    const asset = { body: readFileSync(join(dir, name)), type: TYPES[extname(name)] ?? 'application/octet-stream' }
    return [name, asset]
  }))
}
