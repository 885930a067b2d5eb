#!/usr/bin/env node
// Starts the compiled gateway (dist/). Run `npm run build` first when working from a checkout.
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url))
if (!existsSync(main)) {
  process.stderr.write('tunnelgate: dist/ is missing; run `npm run build` first\n')
  process.exit(1)
}
await import(pathToFileURL(main).href)
