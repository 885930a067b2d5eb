// tunnelgate status page: live samples over server-sent events (/status/events), polling
// /status/live as a fallback, sparklines drawn as SVG polylines from the in-memory history.
'use strict'
;(function () {
  const $ = function (id) { return document.getElementById(id) }
  // watchPort: the public port serving /watch (this page is on the ops listener); admin: /admin/* is here.
  const state = { history: [], sample: null, intervalMs: 2000, watchPort: null, admin: false, capacity: 180, pollTimer: null }
  function meta (j) { state.intervalMs = j.sampleIntervalMs; state.watchPort = j.watchPort; state.admin = j.admin; $('admin-section').hidden = !j.admin }

  function text (s) { return String(s).replace(/[&<>"']/g, function (c) { return '&#' + c.charCodeAt(0) + ';' }) }
  function fmt (n, d) { return typeof n === 'number' ? n.toFixed(d === undefined ? 0 : d) : '–' }

  function spark (values) {
    if (values.length < 2) return ''
    const max = Math.max.apply(null, values.concat([1e-9]))
    const step = 120 / (values.length - 1)
    const pts = values.map(function (v, i) { return (i * step).toFixed(1) + ',' + (27 - (v / max) * 25).toFixed(1) }).join(' ')
    return '<polyline points="' + pts + '"/>'
  }
  function series (pick) { return state.history.map(pick) }

  function setConn (s, label) { const el = $('conn'); el.dataset.state = s; el.textContent = label }

  function render () {
    const s = state.sample
    if (!s) return
    $('tunnels').textContent = s.tunnels
    $('mbps').textContent = fmt(s.mbps, 2)
    $('errors').textContent = s.errorsDelta
    $('unpaired').textContent = s.unpairedLegs
    $('updated').textContent = 'updated ' + new Date(s.t).toLocaleTimeString()
    $('spark-tunnels').innerHTML = spark(series(function (h) { return h.tunnels }))
    $('spark-mbps').innerHTML = spark(series(function (h) { return h.mbps }))
    $('spark-errors').innerHTML = spark(series(function (h) { return h.errors }))
    const admin = state.admin

    $('relays').tBodies[0].innerHTML = s.relays.map(function (r) {
      const st = !r.up ? '<span class="bad">down</span>' : r.draining ? '<span class="warn">draining</span>' : '<span class="ok">up</span>'
      const act = admin && r.kind !== 'in-process' ? '<button data-kind="relays" data-name="' + text(r.id) + '" data-drain="' + (!r.draining) + '">' + (r.draining ? 'undrain' : 'drain') + '</button>' : ''
      return '<tr data-relay="' + text(r.id) + '"><td>' + text(r.id) + ' <span class="muted small">' + text(r.kind) + '</span></td><td>' + st + '</td><td class="n">' + (r.tunnels === null ? '–' : r.tunnels) +
        '</td><td class="n">' + fmt(r.mbps, 2) + '</td><td><svg class="spark cell" viewBox="0 0 120 28" preserveAspectRatio="none">' + spark(series(function (h) { return h.relays[r.id] || 0 })) + '</svg></td><td>' + act + '</td></tr>'
    }).join('')

    $('backends').tBodies[0].innerHTML = s.backends.map(function (b) {
      const st = !b.healthy ? '<span class="bad">down</span>' : b.draining ? '<span class="warn">draining</span>' : '<span class="ok">healthy</span>'
      const act = admin ? '<button data-kind="backends" data-name="' + text(b.name) + '" data-drain="' + (!b.draining) + '">' + (b.draining ? 'undrain' : 'drain') + '</button>' : ''
      return '<tr data-backend="' + text(b.name) + '"><td>' + text(b.name) + '</td><td>' + st + '</td><td class="n" data-testid="sessions">' + b.sessions + '</td><td class="n">' + (b.maxSessions > 0 ? b.maxSessions : '∞') +
        '</td><td class="n">' + fmt(b.load, 2) + '</td><td class="n">' + fmt(b.mbps, 2) + '</td><td><svg class="spark cell" viewBox="0 0 120 28" preserveAspectRatio="none">' + spark(series(function (h) { return h.backends[b.name] || 0 })) + '</svg></td><td>' + act + '</td></tr>'
    }).join('')

    $('streams').tBodies[0].innerHTML = s.streams.length === 0
      ? '<tr><td colspan="4" class="muted">no stream is playing</td></tr>'
      : s.streams.map(function (x) {
        const watch = state.watchPort ? '<a href="' + location.protocol + '//' + location.hostname + ':' + state.watchPort + '/watch' + encodeURI(x.path) + '">watch</a>' : ''
        return '<tr data-stream="' + text(x.path) + '"><td>' + text(x.path) + '</td><td class="n">' + x.tunnels + '</td><td class="n">' + fmt(x.mbps, 2) + '</td><td>' + watch + '</td></tr>'
      }).join('')

    const codes = Object.keys(s.errors).filter(function (k) { return s.errors[k] > 0 }).sort(function (a, b) { return s.errors[b] - s.errors[a] })
    $('errtable').tBodies[0].innerHTML = codes.length === 0 ? '<tr><td colspan="2" class="muted">none</td></tr>' : codes.map(function (c) { return '<tr><td>' + text(c) + '</td><td class="n">' + s.errors[c] + '</td></tr>' }).join('')
  }

  // HTTP routes (httpRoutes): rendered from /status, polled every sample interval; req/s from the
  // difference between two polls.
  const http = { prev: null, timer: null }
  function renderHttp (routes, rates) {
    $('http-section').hidden = routes.length === 0
    $('httproutes').tBodies[0].innerHTML = routes.map(function (r) {
      const viewers = r.backends.reduce(function (n, b) { return n + b.viewers }, 0)
      const up = r.backends.filter(function (b) { return b.healthy }).length
      const st = up === r.backends.length ? '<span class="ok">' + up + '/' + r.backends.length + ' up</span>' : up === 0 ? '<span class="bad">0/' + r.backends.length + ' up</span>' : '<span class="warn">' + up + '/' + r.backends.length + ' up</span>'
      const head = '<tr class="route" data-route="' + text(r.path) + '"><td>' + text(r.path) + '</td><td>' + st + '</td><td class="n" data-testid="requests">' + r.requests +
        '</td><td class="n" data-testid="rps">' + fmt(rates[r.path], 1) + '</td><td class="n" data-testid="mb">' + fmt(r.bytes / 1e6, 2) + '</td><td class="n" data-testid="viewers">' + viewers +
        '</td><td class="n">' + r.inFlight + '</td><td class="n">' + r.upstreamErrors + '</td><td></td></tr>'
      return head + r.backends.map(function (b) {
        const bst = b.healthy ? '<span class="ok">healthy</span>' : !b.up ? '<span class="bad" title="' + text(b.probe) + '">down</span>' : '<span class="warn">cooling down</span>'
        return '<tr class="hb" data-route="' + text(r.path) + '" data-http-backend="' + text(b.name) + '"><td>' + text(b.name) + '</td><td data-testid="health">' + bst + '</td><td class="n" data-testid="requests">' + b.requests +
          '</td><td></td><td></td><td class="n">' + b.viewers + '</td><td class="n">' + b.inFlight + '</td><td class="n">' + b.failures + '</td><td class="n">' + (b.rtspSessions === null || b.rtspSessions === undefined ? '–' : b.rtspSessions) + '</td></tr>'
      }).join('')
    }).join('')
  }
  function pollHttp () {
    fetch('/status', { cache: 'no-store' }).then(function (r) { return r.json() }).then(function (j) {
      const routes = j.httpRoutes || []
      const now = Date.now()
      const rates = {}
      if (http.prev) {
        const dt = (now - http.prev.t) / 1000
        routes.forEach(function (r) { const p = http.prev.req[r.path]; if (p !== undefined && dt > 0) rates[r.path] = Math.max(0, r.requests - p) / dt })
      }
      http.prev = { t: now, req: Object.fromEntries(routes.map(function (r) { return [r.path, r.requests] })) }
      renderHttp(routes, rates)
      if (routes.length === 0 && http.timer) { clearInterval(http.timer); http.timer = null } // no routes configured: stop polling
    }).catch(function () {})
  }
  function startHttp () {
    if (http.timer) clearInterval(http.timer)
    pollHttp()
    http.timer = setInterval(pollHttp, state.intervalMs)
  }

  document.addEventListener('click', function (ev) {
    const btn = ev.target.closest && ev.target.closest('button[data-kind]')
    if (!btn) return
    // Same origin: the browser sends the ops credentials it was asked for (Basic) by itself.
    const url = '/admin/' + btn.dataset.kind + '/' + encodeURIComponent(btn.dataset.name) + '/draining'
    const headers = { 'Content-Type': 'application/json' }
    $('admin-msg').textContent = '…'
    fetch(url, { method: 'PUT', headers, body: JSON.stringify({ draining: btn.dataset.drain === 'true' }) })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j } }) })
      .then(function (x) { $('admin-msg').textContent = x.ok ? btn.dataset.name + (x.j.draining ? ' draining' : ' in service') : (x.j.error ? x.j.error.code + ': ' + x.j.error.message : 'failed') })
      .catch(function (e) { $('admin-msg').textContent = 'admin API unreachable: ' + e.message })
  })

  function accept (sample) {
    state.sample = sample
    const last = state.history[state.history.length - 1]
    if (!last || last.t !== sample.t) {
      state.history.push({
        t: sample.t,
        tunnels: sample.tunnels,
        mbps: sample.mbps,
        errors: sample.errorsDelta,
        relays: Object.fromEntries(sample.relays.map(function (r) { return [r.id, r.mbps] })),
        backends: Object.fromEntries(sample.backends.map(function (b) { return [b.name, b.sessions] }))
      })
      while (state.history.length > state.capacity) state.history.shift()
    }
    render()
  }

  function poll () {
    fetch('/status/live', { cache: 'no-store' }).then(function (r) { return r.json() }).then(function (j) {
      state.history = j.history; meta(j)
      state.capacity = Math.max(state.capacity, j.history.length)
      setConn('polling', 'polling'); accept(j.sample)
    }).catch(function () { setConn('down', 'unreachable') })
  }

  function startPolling () {
    if (state.pollTimer) return
    poll()
    state.pollTimer = setInterval(poll, state.intervalMs)
  }

  startHttp()
  if (typeof EventSource === 'undefined') { startPolling(); return }
  const es = new EventSource('/status/events')
  let opened = false
  es.addEventListener('history', function (ev) {
    const j = JSON.parse(ev.data)
    opened = true
    state.history = j.history; meta(j)
    state.capacity = Math.max(state.capacity, j.history.length)
    if (state.pollTimer) { clearInterval(state.pollTimer); state.pollTimer = null }
    if (http.timer) startHttp() // at the server's sample interval
    setConn('live', 'live')
    if (j.sample) accept(j.sample); else render()
  })
  es.addEventListener('sample', function (ev) { setConn('live', 'live'); accept(JSON.parse(ev.data)) })
  es.onerror = function () {
    if (!opened || es.readyState === EventSource.CLOSED) { es.close(); startPolling() } else setConn('down', 'reconnecting…')
  }
})()
