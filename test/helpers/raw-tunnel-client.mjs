// A hand-written QuickTime RTSP-over-HTTP tunnel client on plain `net` sockets, for tests that
// run it inside a network namespace (`ip netns exec NS node raw-tunnel-client.mjs '<json>'`).
// No dependencies, no TypeScript: it must start with a bare `node`.
//
// Modes (one JSON argument):
//   {"mode":"one","get":"H:P","post":"H:P","path":"/demo","frames":50}
//       one tunnel (GET to `get`, POST to `post`), OPTIONS/DESCRIBE/SETUP*/PLAY, read `frames`
//       `$` frames from the GET, TEARDOWN; prints one JSON result line.
//   {"mode":"load","portals":["H:P","H:P"],"total":50,"concurrency":4,"frames":10,"holdMs":0,"gapMs":0,"path":"/demo"}
//       `total` such tunnels (each playing ≥ `frames` frames and ≥ `holdMs` ms), `concurrency` at a time, GET and
//       POST on different portals (alternating); prints one JSON line per finished tunnel, then {"done":true}.
//   {"mode":"wait","tcp":["H:P",...],"timeoutMs":15000}
//       until every address accepts a TCP connection; prints {"ok":true} or exits 1.
//   {"mode":"fetch","urls":["http://H:P/metrics",...]}
//       GET each URL (fetch); prints {"url":…,"status":…,"body":…} lines.
//   {"mode":"raw","to":"H:P","send":"…","timeoutMs":3000}
//       write `send` on one connection, print {"received":…} with what came back until it closed (or the time-out).
import net from 'node:net'
import { randomBytes } from 'node:crypto'

const cfg = JSON.parse(process.argv[2] ?? '{}')

function hostPort (s) {
  const i = s.lastIndexOf(':')
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) }
}

/** Connect with a timeout; resolves the connected socket. */
function dial (addr, timeoutMs = 4000) {
  return new Promise((resolve, reject) => {
    const { host, port } = hostPort(addr)
    const s = net.connect({ host, port, noDelay: true })
    const t = setTimeout(() => { s.destroy(); reject(new Error(`connect ${addr} timed out`)) }, timeoutMs)
    s.once('connect', () => { clearTimeout(t); s.removeAllListeners('error'); resolve(s) })
    s.once('error', (e) => { clearTimeout(t); reject(new Error(`connect ${addr}: ${e.message}`)) })
  })
}

/**
 * Reads the GET leg: the HTTP reply head, then a stream of RTSP responses and `$` frames.
 * `next()` resolves the next unit: {kind:'head',text} | {kind:'response',status,headers,body} |
 * {kind:'frame',channel,length}.
 */
class GetReader {
  constructor (socket) {
    this.buf = Buffer.alloc(0)
    this.units = []
    this.waiters = []
    this.headDone = false
    this.error = null
    socket.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.parse() })
    socket.on('error', (e) => this.fail(e))
    socket.on('close', () => this.fail(new Error('GET leg closed')))
  }

  fail (e) {
    if (this.error === null) this.error = e
    for (const w of this.waiters.splice(0)) w.reject(this.error)
  }

  push (u) {
    const w = this.waiters.shift()
    if (w !== undefined) w.resolve(u)
    else this.units.push(u)
  }

  parse () {
    for (;;) {
      if (!this.headDone) {
        const end = this.buf.indexOf('\r\n\r\n')
        if (end === -1) return
        this.push({ kind: 'head', text: this.buf.toString('latin1', 0, end) })
        this.buf = this.buf.subarray(end + 4)
        this.headDone = true
        continue
      }
      if (this.buf.length === 0) return
      if (this.buf[0] === 0x24) {
        if (this.buf.length < 4) return
        const len = this.buf.readUInt16BE(2)
        if (this.buf.length < 4 + len) return
        this.push({ kind: 'frame', channel: this.buf[1], length: len })
        this.buf = this.buf.subarray(4 + len)
        continue
      }
      const end = this.buf.indexOf('\r\n\r\n')
      if (end === -1) return
      const lines = this.buf.toString('latin1', 0, end).split('\r\n')
      const headers = {}
      for (const l of lines.slice(1)) {
        const c = l.indexOf(':')
        if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim()
      }
      const clen = Number(headers['content-length'] ?? 0)
      if (this.buf.length < end + 4 + clen) return
      const body = this.buf.toString('latin1', end + 4, end + 4 + clen)
      const m = /^RTSP\/1\.0 (\d{3})/.exec(lines[0])
      this.push(
        m
          ? { kind: 'response', status: Number(m[1]), line: lines[0], headers, body }
          : { kind: 'garbage', line: lines[0] }
      )
      this.buf = this.buf.subarray(end + 4 + clen)
    }
  }

  next (timeoutMs = 5000) {
    if (this.units.length > 0) return Promise.resolve(this.units.shift())
    if (this.error !== null) return Promise.reject(this.error)
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (u) => { clearTimeout(t); resolve(u) },
        reject: (e) => { clearTimeout(t); reject(e) }
      }
      const t = setTimeout(() => {
        const i = this.waiters.indexOf(w)
        if (i !== -1) this.waiters.splice(i, 1)
        reject(new Error(`no data on the GET leg within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiters.push(w)
    })
  }

  /** The reply with this CSeq (frames in between are counted). */
  async response (cseq, counter) {
    for (;;) {
      const u = await this.next()
      if (u.kind === 'frame') { counter.frames++; continue }
      if (u.kind === 'response' && u.headers.cseq === String(cseq)) return u
      if (u.kind === 'garbage') throw new Error(`unexpected bytes on the GET leg: ${u.line.slice(0, 80)}`)
    }
  }
}

/** One tunnel, start to TEARDOWN. Returns a result object (never throws). */
async function tunnel ({ get, post, path, frames, holdMs = 0 }) {
  const started = Date.now()
  const cookie = randomBytes(16).toString('hex')
  const url = `rtsp://${get}${path}`
  const res = { get, post, cookie, started, ok: false, frames: 0, steps: [] }
  let g, p
  try {
    g = await dial(get)
    const reader = new GetReader(g)
    g.write(`GET ${path} HTTP/1.0\r\nUser-Agent: raw-tunnel-client\r\nx-sessioncookie: ${cookie}\r\n` +
      'Accept: application/x-rtsp-tunnelled\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n\r\n')
    const head = await reader.next()
    if (head.kind !== 'head' || !head.text.startsWith('HTTP/1.0 200 OK')) {
      throw new Error(`GET reply: ${head.text ?? head.kind}`)
    }
    res.steps.push('GET 200')
    p = await dial(post)
    p.on('error', () => {})
    p.write(`POST ${path} HTTP/1.0\r\nUser-Agent: raw-tunnel-client\r\nx-sessioncookie: ${cookie}\r\n` +
      'Content-Type: application/x-rtsp-tunnelled\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n' +
      'Content-Length: 32767\r\nExpires: Sun, 9 Jan 1972 00:00:00 GMT\r\n\r\n')
    let cseq = 0
    let session = null
    const counter = { frames: 0 }
    // Each RTSP message is base64-encoded on its own, as QuickTime does.
    const send = async (method, uri, extra = []) => {
      const n = ++cseq
      const lines = [`${method} ${uri} RTSP/1.0`, `CSeq: ${n}`, 'User-Agent: raw-tunnel-client', ...extra]
      if (session !== null) lines.push(`Session: ${session}`)
      p.write(Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1').toString('base64'))
      const r = await reader.response(n, counter)
      res.steps.push(`${method} ${r.status}`)
      if (r.status !== 200) throw new Error(`${method} -> ${r.line}`)
      return r
    }
    await send('OPTIONS', url)
    const desc = await send('DESCRIBE', url, ['Accept: application/sdp'])
    const base = (desc.headers['content-base'] ?? url + '/').replace(/\/?$/, '/')
    const controls = desc.body.split(/\r?\n/).filter(l => l.startsWith('m=') || l.startsWith('a=control:'))
    const tracks = []
    let inMedia = false
    for (const l of controls) {
      if (l.startsWith('m=')) { inMedia = true; continue }
      if (inMedia) { tracks.push(l.slice('a=control:'.length)); inMedia = false }
    }
    if (tracks.length === 0) throw new Error('no media in the SDP')
    let ch = 0
    for (const c of tracks) {
      const turl = /^rtsp:\/\//i.test(c) ? c : base + c
      const r = await send('SETUP', turl, [`Transport: RTP/AVP/TCP;unicast;interleaved=${ch}-${ch + 1}`])
      session ??= (r.headers.session ?? '').split(';')[0]
      ch += 2
    }
    await send('PLAY', url, ['Range: npt=0.000-'])
    const playing = Date.now()
    while (counter.frames < frames || Date.now() - playing < holdMs) {
      const u = await reader.next()
      if (u.kind === 'frame') counter.frames++
    }
    res.frames = counter.frames
    // TEARDOWN: its reply may come after more frames.
    const n = ++cseq
    p.write(
      Buffer.from(`TEARDOWN ${url} RTSP/1.0\r\nCSeq: ${n}\r\nSession: ${session}\r\n\r\n`, 'latin1').toString('base64')
    )
    const td = await reader.response(n, counter)
    res.steps.push(`TEARDOWN ${td.status}`)
    res.ok = td.status === 200
  } catch (e) {
    res.error = e.message
  } finally {
    g?.destroy()
    p?.destroy()
    res.ms = Date.now() - started
  }
  return res
}

function out (o) { process.stdout.write(JSON.stringify(o) + '\n') }

async function main () {
  if (cfg.mode === 'one') {
    out(await tunnel({ get: cfg.get, post: cfg.post, path: cfg.path ?? '/demo', frames: cfg.frames ?? 50 }))
    return
  }
  if (cfg.mode === 'load') {
    let next = 0
    const worker = async () => {
      for (;;) {
        const i = next++
        if (i >= cfg.total) return
        const a = cfg.portals[i % cfg.portals.length]
        const b = cfg.portals[(i + 1) % cfg.portals.length]
        out({
          i,
          ...(await tunnel({
            get: a,
            post: b,
            path: cfg.path ?? '/demo',
            frames: cfg.frames ?? 10,
            holdMs: cfg.holdMs ?? 0
          }))
        })
        if (cfg.gapMs) await new Promise(resolve => setTimeout(resolve, cfg.gapMs))
      }
    }
    await Promise.all(Array.from({ length: cfg.concurrency ?? 1 }, worker))
    out({ done: true })
    return
  }
  if (cfg.mode === 'wait') {
    const deadline = Date.now() + (cfg.timeoutMs ?? 15000)
    for (const a of cfg.tcp) {
      for (;;) {
        try { (await dial(a, 1000)).destroy(); break } catch (e) {
          if (Date.now() > deadline) { out({ ok: false, error: `${a}: ${e.message}` }); process.exit(1) }
          await new Promise(resolve => setTimeout(resolve, 100))
        }
      }
    }
    out({ ok: true })
    return
  }
  if (cfg.mode === 'fetch') {
    for (const url of cfg.urls) {
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(3000) })
        out({ url, status: r.status, body: await r.text() })
      } catch (e) {
        out({ url, status: 0, error: e.message })
      }
    }
    return
  }
  if (cfg.mode === 'raw') {
    const s = await dial(cfg.to)
    let received = ''
    s.on('data', (d) => { received += d.toString('latin1') })
    s.on('error', () => {})
    const closed = new Promise(resolve => s.once('close', resolve))
    s.write(cfg.send)
    await Promise.race([closed, new Promise(resolve => setTimeout(resolve, cfg.timeoutMs ?? 3000))])
    s.destroy()
    out({ received })
    return
  }
  throw new Error(`unknown mode ${cfg.mode}`)
}

main().then(() => process.exit(0), (e) => { process.stderr.write(`${e.stack}\n`); process.exit(2) })
