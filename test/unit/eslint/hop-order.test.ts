/**
 * The hop-order lint rule (eslint/hop-order.js) through ESLint itself: an upward import between the
 * hop folders, a codec importing anything, an import of src/ops or src/web from a hop all fail; the
 * allowed directions pass; and src/ as it is passes.
 */
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { ESLint } from 'eslint'
import tseslint from 'typescript-eslint'
import hopOrder, { refusal } from '../../../eslint/hop-order.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

function eslint (): ESLint {
  return new ESLint({
    cwd: ROOT,
    overrideConfigFile: true,
    overrideConfig: [{
      files: ['src/**/*.ts'],
      languageOptions: { parser: tseslint.parser, sourceType: 'module' },
      linterOptions: { reportUnusedDisableDirectives: 'off' },
      plugins: { tunnelgate: { rules: { 'hop-order': hopOrder } } },
      rules: { 'tunnelgate/hop-order': 'error' }
    }]
  })
}

async function lint (file: string, code: string): Promise<string[]> {
  const [r] = await eslint().lintText(code, { filePath: `${ROOT}${file}` })
  return r!.messages.map(m => m.message)
}

t.test('upward imports fail, downward ones pass', async t => {
  t.match(await lint('src/session/x.ts', "import { Relay } from '../route/relay.js'\n"),
    [/src\/session may not import src\/route/], 'session → route')
  t.match(await lint('src/backends/x.ts', "import type { ProxySession } from '../session/proxy-session.js'\n"),
    [/src\/backends may not import src\/session/], 'a type-only upward import fails too')
  t.match(await lint('src/tunnel/codec/x.ts', "import { BackendPool } from '../../backends/pool.js'\n"),
    [/a codec imports nothing/], 'codec → backends')
  t.match(await lint('src/tunnel/codec/x.ts', "import { ERROR_CODES } from '../../core/errors.js'\n"),
    [/a codec imports nothing/], 'a codec importing a value from core')
  t.match(await lint('src/route/x.ts', "import { AccessLog } from '../ops/access-log.js'\n"),
    [/nobody imports src\/ops/], 'route → ops')
  t.match(await lint('src/core/x.ts', "import { Relay } from '../route/relay.js'\n"), [/src\/core imports only core/],
    'core → route')
  t.same(await lint('src/door/x.ts',
    "import { Relay } from '../route/relay.js'\nimport { ProxySession } from '../session/proxy-session.js'\n"),
  [], 'door → route, door → session')
  t.same(await lint('src/tunnel/codec/x.ts', "import type { ErrorCode } from '../../core/errors.js'\n"), [],
    'a codec may name the error codes (type only)')
  t.same(await lint('src/ops/x.ts', "import { Relay } from '../route/relay.js'\n"), [], 'ops reads the others')
  t.same(await lint('src/main.ts', "import { AccessLog } from './ops/access-log.js'\n"), [],
    'entry files import anything')
})

t.test('the rule table', async t => {
  t.equal(refusal('route', 'door', 'door/x.ts', false) !== null, true)
  t.equal(refusal('live', 'session', 'session/x.ts', true), null, 'live plugs into the session')
  t.equal(refusal('session', 'live', 'live/x.ts', true) !== null, true)
  t.equal(refusal('origin', 'session', 'session/x.ts', false) !== null, true)
})

t.test('src/ as it is keeps the rule', async t => {
  const results = await eslint().lintFiles(['src/**/*.ts'])
  const found = results.flatMap(r => r.messages.map(m => `${r.filePath.slice(ROOT.length)}:${m.line} ${m.message}`))
  t.same(found, [], 'no upward import in src/')
})
