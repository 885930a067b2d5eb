// Lint: neostandard (standard's rules for TypeScript, its style rules left to the formatter, prettier),
// plus the hop-order rule for src/ (eslint/hop-order.js).
import neostandard from 'neostandard'
import hopOrder from './eslint/hop-order.js'

export default [
  ...neostandard({ ts: true, noStyle: true, ignores: ['dist/**', 'node_modules/**', 'scratch/**', 'test/fixtures/**', '.tap/**'] }),
  {
    files: ['src/**/*.ts'],
    plugins: { tunnelgate: { rules: { 'hop-order': hopOrder } } },
    rules: { 'tunnelgate/hop-order': 'error' }
  }
]
