/**
 * `npm run bench`: the full benchmark from source (tsx), report into docs/. Pass --quick for a
 * short run, --out DIR to write elsewhere. `tunnelgate bench` runs the same from dist/.
 */
import { fileURLToPath } from 'node:url'
import { benchMain } from '../../bench/src/cli.js'

await benchMain(process.argv.slice(2), fileURLToPath(new URL('../../docs', import.meta.url)))
process.exit(0)
