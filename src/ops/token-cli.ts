/**
 * `tunnelgate token`: mint an access token the gateway accepts (auth.tokenSecrets; formats in
 * src/tunnel/codec/access.ts and docs/security.md). The secret never comes from the command line (it
 * would show in `ps` and shell history): it is read from an environment variable
 * (TUNNELGATE_TOKEN_SECRET, or the one --secret-env names) or, when that is unset, from standard
 * input. The token alone goes to stdout (for `TOKEN=$(tunnelgate token …)`); its expiry and an
 * example URL go to stderr.
 */
import { parseArgs } from 'node:util'
import { TunnelgateError } from '../core/errors.js'
import { mintToken, TOKEN_MAX_CHARS, type TokenFormat } from '../tunnel/codec/access.js'

export const TOKEN_USAGE = `Usage:
  tunnelgate token --path /STREAM [--ttl SECONDS | --expires UNIX-SECONDS|ISO-DATE] [--format hmac|jwt]
                   [--secret-env NAME] [--url rtsp://HOST[:PORT]] [--param token]
      Mints a token for the stream path (and everything below it) that a gateway with the same
      secret in auth.tokenSecrets accepts until it expires. The secret (16+ characters) is read from
      $TUNNELGATE_TOKEN_SECRET (or the variable --secret-env names), else from standard input;
      never from the command line. Prints the token on stdout, its expiry and an example URL on stderr.
      --ttl         lifetime in seconds (default ${3600}, at most ${366 * 86400})
      --expires     absolute expiry instead of --ttl
      --format      hmac (tg1.…, default) or jwt (HS256, claims path, exp, iat)
      --url         gateway URL for the example (default rtsp://localhost)
      --param       query parameter of the example (auth.tokenQueryParam, default token)`

/** Limits of what the command mints. */
export const TOKEN_LIMITS = {
  defaultTtlSeconds: 3600,
  /** Longest lifetime accepted (a year and a day): a longer-lived token is a secret of its own. */
  maxTtlSeconds: 366 * 86400,
  maxPathChars: 1024,
  /** Same bound as config validation of auth.tokenSecrets[]. */
  minSecretChars: 16
}

export const DEFAULT_SECRET_ENV = 'TUNNELGATE_TOKEN_SECRET'

export interface TokenIo {
  env: NodeJS.ProcessEnv
  stdin: AsyncIterable<Buffer | string> & { isTTY?: boolean }
  out: (s: string) => void
  err: (s: string) => void
  /** Clock in Unix seconds (tests). */
  now?: () => number
}

const bad = (msg: string): TunnelgateError => new TunnelgateError('TG_ERR_CFG_INVALID', `token: ${msg}`)

function parseExpiry (v: string): number {
  if (/^\d{1,12}$/.test(v)) return Number(v)
  const ms = /^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(v) ? Date.parse(v) : NaN
  if (Number.isNaN(ms)) throw bad(`--expires must be Unix seconds or an ISO-8601 date (got '${v}')`)
  return Math.floor(ms / 1000)
}

/** Run `tunnelgate token …` (argv without the subcommand); returns the token. */
export async function tokenMain (argv: string[], io: TokenIo): Promise<string> {
  let v
  try {
    v = parseArgs({
      args: argv,
      options: {
        path: { type: 'string' },
        ttl: { type: 'string' },
        expires: { type: 'string' },
        format: { type: 'string' },
        'secret-env': { type: 'string' },
        url: { type: 'string' },
        param: { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      },
      strict: true,
      allowPositionals: false
    }).values
  } catch (err) { throw bad(`${(err as Error).message}\n\n${TOKEN_USAGE}`) }
  if (v.help === true) { io.out(TOKEN_USAGE + '\n'); return '' }
  const now = Math.floor(io.now?.() ?? Date.now() / 1000)

  const path = v.path
  if (path === undefined) throw bad(`--path is required\n\n${TOKEN_USAGE}`)
  if (!path.startsWith('/') || path.length > TOKEN_LIMITS.maxPathChars || /[\s?#\x00-\x1f\x7f]/.test(path)) {
    throw bad('--path must start with \'/\', have no query, fragment, spaces or control characters, and at ' +
      `most ${TOKEN_LIMITS.maxPathChars} characters (got '${path.slice(0, 80)}')`)
  }
  const format = (v.format ?? 'hmac') as TokenFormat
  if (format !== 'hmac' && format !== 'jwt') throw bad(`--format must be hmac or jwt (got '${v.format}')`)
  if (v.ttl !== undefined && v.expires !== undefined) throw bad('give --ttl or --expires, not both')
  let exp: number
  if (v.expires !== undefined) { exp = parseExpiry(v.expires) } else {
    if (v.ttl !== undefined && !/^\d{1,9}$/.test(v.ttl)) {
      throw bad(`--ttl must be a whole number of seconds (got '${v.ttl}')`)
    }
    exp = now + (v.ttl === undefined ? TOKEN_LIMITS.defaultTtlSeconds : Number(v.ttl))
  }
  if (exp <= now) throw bad(`the expiry ${new Date(exp * 1000).toISOString()} is not in the future`)
  if (exp - now > TOKEN_LIMITS.maxTtlSeconds) {
    throw bad(`the lifetime ${exp - now} s is longer than ${TOKEN_LIMITS.maxTtlSeconds} s (a year and a day)`)
  }
  const param = v.param ?? 'token'
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(param)) {
    throw bad('--param must be 1-64 characters of A-Z a-z 0-9 _ . - (as auth.tokenQueryParam)')
  }
  const base = (v.url ?? 'rtsp://localhost').replace(/\/+$/, '')
  if (!/^(rtsp|rtsph|https?):\/\/[^\s/?#]+$/i.test(base)) {
    throw bad(`--url must be scheme://host[:port] with no path (got '${base.slice(0, 80)}')`)
  }

  const envName = v['secret-env'] ?? DEFAULT_SECRET_ENV
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(envName)) {
    throw bad(`--secret-env must name an environment variable (got '${envName.slice(0, 80)}')`)
  }
  let secret = io.env[envName] ?? ''
  let from = `$${envName}`
  if (secret === '') {
    if (io.stdin.isTTY === true) {
      throw bad(`set ${envName} to the secret (one of auth.tokenSecrets) or give it on standard input`)
    }
    const chunks: Buffer[] = []
    for await (const c of io.stdin) chunks.push(Buffer.from(c))
    secret = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
    from = 'standard input'
  }
  if (secret.length < TOKEN_LIMITS.minSecretChars) {
    throw bad(`the secret (from ${from}) must have at least ${TOKEN_LIMITS.minSecretChars} characters, as ` +
      'auth.tokenSecrets[] does')
  }

  const token = mintToken(format, secret, path, exp, now)
  if (token.length > TOKEN_MAX_CHARS) {
    throw bad(`the token would be ${token.length} characters, more than the ${TOKEN_MAX_CHARS} a gateway reads: use ` +
      'a shorter --path')
  }
  io.out(token + '\n')
  const url = `${base}${path}?${param}=${encodeURIComponent(token)}`
  io.err(`${format} token for ${path} (and below), expires ${new Date(exp * 1000).toISOString()} (secret ` +
    `from ${from})\n`)
  io.err(`example: ffplay -rtsp_transport http '${url}'\n`)
  io.err(`     or on the tunnel GET as the header  Authorization: Bearer ${token}\n`)
  return token
}
