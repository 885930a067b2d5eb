/**
 * Real HTTP backends for the HTTP-route tests: Debian nginx started by the test (no daemon, no
 * master process, a generated config, a tmp prefix, loopback port), and media made by ffmpeg at
 * test time (HLS with short segments, a progressive MP4).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './ports.js'

export interface TestContext { teardown (fn: () => void | Promise<void>): void }

export interface Nginx {
  name: string
  port: number
  url: string
  pid: number
  /**
   * Parsed access log lines (fields: client, request, status, bytes, host, xff, xfhost, xfproto, range,
   * connection).
   */
  accessLog (): Array<Record<string, string>>
  kill (): Promise<void>
  running (): boolean
}

export const NGINX_BIN = '/usr/sbin/nginx'
export const haveNginx = existsSync(NGINX_BIN)

export { freePort }

export async function waitPort (port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>(resolve => {
      const c = net.connect(port, '127.0.0.1')
      c.once('connect', () => { c.destroy(); resolve(true) })
      c.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`port ${port} not listening after ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

const FIELDS = [
  'client',
  'request',
  'status',
  'bytes',
  'host',
  'xff',
  'xfhost',
  'xfproto',
  'range',
  'connection',
  'cookie',
  'xhop',
  'proxyauth',
  'auth'
]

/** Start nginx serving `root` on a free loopback port (or `opts.port`, e.g. to restart one); killed at teardown. */
export async function startNginx (
  t: TestContext,
  root: string,
  name: string,
  opts: { port?: number } = {}
): Promise<Nginx> {
  const prefix = mkdtempSync(join(tmpdir(), `tg-nginx-${name}-`))
  t.teardown(() => {
    rmSync(prefix, { recursive: true, force: true })
  })
  for (let attempt = 0; ; attempt++) {
    const port = opts.port ?? await freePort()
    const conf = `daemon off;
master_process off;
worker_processes 1;
error_log ${prefix}/error.log warn;
pid ${prefix}/nginx.pid;
events { worker_connections 512; }
http {
  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; video/mp4 mp4; text/html html; text/plain txt; }
  default_type application/octet-stream;
  log_format tg '$remote_addr\\t$request\\t$status\\t$body_bytes_sent\\t$http_host\\t$http_x_forwarded_for\\t$http_x_forwarded_host\\t$http_x_forwarded_proto\\t$http_range\\t$http_connection\\t$http_cookie\t$http_x_hop\t$http_proxy_authorization\t$http_authorization';
  access_log ${prefix}/access.log tg;
  client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy; fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;
  sendfile on; keepalive_timeout 30s; server_tokens off;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    add_header X-Backend ${name} always;
    location = /redirect-me { return 302 http://127.0.0.1:${port}/hls/stream.m3u8; }
  }
}
`
    writeFileSync(join(prefix, 'nginx.conf'), conf)
    const child: ChildProcess = spawn(
      NGINX_BIN,
      ['-p', prefix, '-e', join(prefix, 'error.log'), '-c', join(prefix, 'nginx.conf')],
      { stdio: ['ignore', 'ignore', 'pipe'] }
    )
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    let exited = false
    const exit = new Promise<void>(resolve =>
      child.once('exit', () => {
        exited = true
        resolve()
      })
    )
    t.teardown(async () => {
      if (!exited) {
        child.kill('SIGKILL')
        await exit
      }
    })
    try {
      await Promise.race([
        waitPort(port),
        exit.then(() => {
          throw new Error(`nginx exited: ${stderr}${readMaybe(join(prefix, 'error.log'))}`)
        })
      ])
    } catch (err) {
      if (attempt < 3 && opts.port === undefined && /in use/.test(String(err))) continue
      throw err
    }
    return {
      name,
      port,
      url: `http://127.0.0.1:${port}`,
      pid: child.pid!,
      accessLog: () =>
        readMaybe(join(prefix, 'access.log'))
          .split('\n')
          .filter(Boolean)
          .map(l => Object.fromEntries(l.split('\t').map((v, i) => [FIELDS[i] ?? `f${i}`, v]))),
      async kill () {
        if (!exited) {
          child.kill('SIGKILL')
          await exit
        }
      },
      running: () => !exited
    }
  }
}

function readMaybe (f: string): string { try { return readFileSync(f, 'utf8') } catch { return '' } }

export interface Media { root: string, hlsDir: string, mp4: string, mp4Bytes: Buffer, segments: number }

/**
 * Make the test media with ffmpeg: root/hls/stream.m3u8 (VOD, `seconds` long, 1 s segments,
 * H.264 baseline + AAC) and root/media/clip.mp4 (progressive, faststart).
 */
export function makeMedia (t: TestContext, seconds = 24): Media {
  const root = mkdtempSync(join(tmpdir(), 'tg-http-media-'))
  t.teardown(() => { rmSync(root, { recursive: true, force: true }) })
  const hlsDir = join(root, 'hls')
  mkdirSync(hlsDir)
  mkdirSync(join(root, 'media'))
  const common = [
    '-hide_banner',
    '-v',
    'error',
    '-f',
    'lavfi',
    '-i',
    `testsrc=size=320x240:rate=25:duration=${seconds}`,
    '-f',
    'lavfi',
    '-i',
    `sine=frequency=440:sample_rate=44100:duration=${seconds}`,
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-profile:v',
    'baseline',
    '-pix_fmt',
    'yuv420p',
    '-g',
    '25',
    '-keyint_min',
    '25',
    '-sc_threshold',
    '0',
    '-c:a',
    'aac',
    '-b:a',
    '64k'
  ]
  const hls = spawnSync(
    'ffmpeg',
    [
      ...common,
      '-f',
      'hls',
      '-hls_time',
      '1',
      '-hls_playlist_type',
      'vod',
      '-hls_segment_filename',
      join(hlsDir, 'seg%03d.ts'),
      join(hlsDir, 'stream.m3u8')
    ],
    { encoding: 'utf8', timeout: 60_000 }
  )
  if (hls.status !== 0) throw new Error(`ffmpeg -f hls failed: ${hls.stderr}`)
  const mp4 = join(root, 'media', 'clip.mp4')
  const m = spawnSync(
    'ffmpeg',
    [...common.map(a => a.replace(`duration=${seconds}`, 'duration=6')), '-movflags', '+faststart', mp4],
    { encoding: 'utf8', timeout: 60_000 }
  )
  if (m.status !== 0) throw new Error(`ffmpeg mp4 failed: ${m.stderr}`)
  const playlist = readFileSync(join(hlsDir, 'stream.m3u8'), 'utf8')
  return {
    root,
    hlsDir,
    mp4,
    mp4Bytes: readFileSync(mp4),
    segments: playlist.split('\n').filter(l => l.endsWith('.ts')).length
  }
}
