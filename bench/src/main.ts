/**
 * Entry of the bench package: `node bench/dist/main.js [...]` (`npm run bench`, and `tunnelgate bench`
 * in a checkout, run this). See docs/benchmarks.md.
 */
import { benchMain } from './cli.js'

await benchMain(process.argv.slice(2))
process.exit(0)
