// Lint and format: neostandard (standard's rules and style for TypeScript; `npm run format` applies the
// style), the 120-column limit, and the hop-order rule for src/ (eslint/hop-order.js).
import globals from 'globals'
import neostandard from 'neostandard'
import hopOrder from './eslint/hop-order.js'

const MAX_LEN = { code: 120, ignoreUrls: true, ignoreRegExpLiterals: true }

export default [
  { ignores: ['dist/**', 'bench/dist/**', 'node_modules/**', 'scratch/**', 'test/fixtures/**', '.tap/**'] },
  ...neostandard({ ts: true }),
  {
    rules: {
      // `void promise` marks a promise deliberately left to run (its errors handled inside); as a value it stays
      // refused.
      'no-void': ['error', { allowAsStatement: true }],
      // The head grammar, path and token checks exist to find control bytes.
      'no-control-regex': 'off'
    }
  },
  {
    // Lines of 120 at most.
    files: ['src/**', 'bench/**', 'eslint/**', 'scripts/**'],
    rules: { '@stylistic/max-len': ['error', MAX_LEN] }
  },
  {
    // Tests quote protocol text (captured heads, expected log lines) as template literals, kept whole.
    files: ['test/**'],
    rules: { '@stylistic/max-len': ['error', { ...MAX_LEN, ignoreTemplateLiterals: true }] }
  },
  {
    // Loops that wait for a flag set by a socket or timer callback.
    files: ['test/**/*.ts'],
    rules: { 'no-unmodified-loop-condition': 'off' }
  },
  {
    // The status and watch pages' scripts run in the browser.
    files: ['src/web/**/*.js'],
    languageOptions: { globals: globals.browser }
  },
  {
    files: ['src/**/*.ts'],
    plugins: { tunnelgate: { rules: { 'hop-order': hopOrder } } },
    rules: { 'tunnelgate/hop-order': 'error' }
  }
]
