/**
 * ESLint rule: imports between the folders of src/ point one way, along the data path.
 *
 *   door → route → tunnel → live → session → backends → balancer      (an earlier hop may import a later one)
 *   origin                                                            (the embedded server: codecs and core only)
 *   tunnel/codec                                                      (pure codecs: import nothing else; type-only
 *                                                                      imports of core/errors allowed)
 *   core, config                                                      (importable by all; core imports core and codecs,
 *                                                                      config imports core and codecs)
 *   web, ops                                                          (read the others; nobody imports them)
 *   entry files (main, gateway, cli, route/worker)                    (may import anything)
 */
import path from 'node:path'

const HOPS = ['door', 'route', 'tunnel', 'live', 'session', 'backends', 'balancer']
const ENTRIES = new Set(['main.ts', 'gateway.ts', 'cli.ts', 'route/worker.ts'])

/** The group a file of src/ belongs to ('codec' for src/tunnel/codec), or null outside src/. */
export function groupOf (file, srcDir) {
  const rel = path.relative(srcDir, file).split(path.sep).join('/')
  if (rel.startsWith('..')) return null
  if (ENTRIES.has(rel)) return 'entry'
  const parts = rel.split('/')
  if (parts.length === 1) return 'root'
  if (parts[0] === 'tunnel' && parts[1] === 'codec') return 'codec'
  return parts[0]
}

/** Why `from` may not import `to` (groups), or null when it may. `typeOnly`: an `import type`. */
export function refusal (from, to, toRel, typeOnly) {
  if (from === to || from === 'entry') return null
  if (from === 'codec') {
    return typeOnly && toRel === 'core/errors.ts' ? null : 'a codec imports nothing outside src/tunnel/codec'
  }
  if (to === 'entry' || to === 'root') return 'only entry files import the entry files'
  if (to === 'codec') return null
  if (from === 'core') return to === 'core' ? null : 'src/core imports only core and the codecs'
  if (from === 'config') return to === 'core' ? null : 'src/config imports only core and the codecs'
  if (to === 'core' || to === 'config') return null
  if (to === 'web' || to === 'ops') {
    return (from === 'web' || from === 'ops') ? null : `nobody imports src/${to} (it reads the others)`
  }
  if (from === 'web' || from === 'ops') return null
  if (from === 'origin' || to === 'origin') return 'the origin is on its own (codecs and core only)'
  const a = HOPS.indexOf(from)
  const b = HOPS.indexOf(to)
  if (a === -1 || b === -1) return `src/${from} is not a known folder`
  return a < b
    ? null
    : `src/${from} may not import src/${to}: imports point from an earlier hop to a later one (${HOPS.join(' → ')})`
}

export default {
  meta: {
    type: 'problem',
    docs: { description: 'imports between the hop folders of src/ point one way' },
    schema: [{ type: 'object', properties: { srcDir: { type: 'string' } }, additionalProperties: false }],
    messages: { upward: '{{why}}' }
  },
  create (context) {
    const srcDir = path.resolve(context.cwd, context.options[0]?.srcDir ?? 'src')
    const file = context.filename
    const from = groupOf(file, srcDir)
    if (from === null) return {}
    const check = (node, source, typeOnly) => {
      if (typeof source !== 'string' || !source.startsWith('.')) return
      const target = path.resolve(path.dirname(file), source).replace(/\.js$/, '.ts')
      const to = groupOf(target, srcDir)
      if (to === null) return
      const why = refusal(from, to, path.relative(srcDir, target).split(path.sep).join('/'), typeOnly)
      if (why !== null) context.report({ node, messageId: 'upward', data: { why } })
    }
    return {
      ImportDeclaration (node) { check(node, node.source.value, node.importKind === 'type') },
      ExportNamedDeclaration (node) { if (node.source) check(node, node.source.value, node.exportKind === 'type') },
      ExportAllDeclaration (node) { check(node, node.source.value, node.exportKind === 'type') },
      ImportExpression (node) { if (node.source.type === 'Literal') check(node, node.source.value, false) }
    }
  }
}
