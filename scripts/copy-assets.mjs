// Build step after tsc: every file under src/ that is not TypeScript (the web pages' HTML, scripts,
// styles, icons) is copied to the same place under dist/, where the compiled modules look for it.
import { cpSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const src = join(root, 'src')
const dist = join(root, 'dist')

function copyAssets (dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) copyAssets(path)
    else if (!name.endsWith('.ts')) cpSync(path, join(dist, relative(src, path)))
  }
}

copyAssets(src)
