// tunnelgate status page: live samples over server-sent events (/status/events), polling
// /status/live as a fallback, sparklines drawn as SVG polylines from the in-memory history.
'use strict'
;(function () {
  const $ = function (id) { return document.getElementById(id) }
  // watchPort: the public port serving /watch (this page is on the ops listener); admin: /admin/* is here.
  const state = {
    history: [], sample: null, intervalMs: 2000, watchPort: null, admin: false, capacity: 180, pollTimer: null
  }
  function meta (j) {
    state.intervalMs = j.sampleIntervalMs
    state.watchPort = j.watchPort
    state.admin = j.admin
    $('admin-section').hidden = !j.admin
  }

  function text (s) { return String(s).replace(/[&<>"']/g, function (c) { return '&#' + c.charCodeAt(0) + ';' }) }
  function fmt (n, d) { return typeof n === 'number' ? n.toFixed(d === undefined ? 0 : d) : '–' }

  // Markup is built from these few pieces: attribute values are always escaped, inner text by the caller.
  function el (tag, attrs, inner) {
    const a = attrs.map(function (kv) { return ' ' + kv[0] + '="' + text(kv[1]) + '"' }).join('')
    return '<' + tag + a + '>' + inner + '</' + tag + '>'
  }
  function row (attrs, cells) { return el('tr', attrs, cells.join('')) }
  function td (inner, attrs) { return el('td', attrs || [], inner) }
  function num (value, testid) {
    return td(value, testid ? [['class', 'n'], ['data-testid', testid]] : [['class', 'n']])
  }
  function badge (cls, label, attrs) { return el('span', [['class', cls]].concat(attrs || []), text(label)) }
  function emptyRow (columns, label) { return row([], [td(text(label), [['colspan', columns], ['class', 'muted']])]) }
  function drainButton (kind, name, draining) {
    const attrs = [['data-kind', kind], ['data-name', name], ['data-drain', String(!draining)]]
    return el('button', attrs, draining ? 'undrain' : 'drain')
  }

  function spark (values) {
    if (values.length < 2) return ''
    const max = Math.max.apply(null, values.concat([1e-9]))
    const step = 120 / (values.length - 1)
    const pts = values.map(function (v, i) { return (i * step).toFixed(1) + ',' + (27 - (v / max) * 25).toFixed(1) })
    return '<polyline points="' + pts.join(' ') + '"/>'
  }
  function sparkCell (values) {
    const attrs = [['class', 'spark cell'], ['viewBox', '0 0 120 28'], ['preserveAspectRatio', 'none']]
    return td(el('svg', attrs, spark(values)))
  }
  function series (pick) { return state.history.map(pick) }

  function setConn (s, label) { const node = $('conn'); node.dataset.state = s; node.textContent = label }

  function relayRow (r) {
    const st = !r.up ? badge('bad', 'down') : r.draining ? badge('warn', 'draining') : badge('ok', 'up')
    const act = state.admin && r.kind !== 'in-process' ? drainButton('relays', r.id, r.draining) : ''
    return row([['data-relay', r.id]], [
      td(text(r.id) + ' ' + el('span', [['class', 'muted small']], text(r.kind))),
      td(st),
      num(r.tunnels === null ? '–' : r.tunnels),
      num(fmt(r.mbps, 2)),
      sparkCell(series(function (h) { return h.relays[r.id] || 0 })),
      td(act)
    ])
  }

  function backendRow (b) {
    const st = !b.healthy ? badge('bad', 'down') : b.draining ? badge('warn', 'draining') : badge('ok', 'healthy')
    const act = state.admin ? drainButton('backends', b.name, b.draining) : ''
    return row([['data-backend', b.name]], [
      td(text(b.name)),
      td(st),
      num(b.sessions, 'sessions'),
      num(b.maxSessions > 0 ? b.maxSessions : '∞'),
      num(fmt(b.load, 2)),
      num(fmt(b.mbps, 2)),
      sparkCell(series(function (h) { return h.backends[b.name] || 0 })),
      td(act)
    ])
  }

  function streamRow (x) {
    const href = location.protocol + '//' + location.hostname + ':' + state.watchPort + '/watch' + encodeURI(x.path)
    const watch = state.watchPort ? el('a', [['href', href]], 'watch') : ''
    return row([['data-stream', x.path]], [td(text(x.path)), num(x.tunnels), num(fmt(x.mbps, 2)), td(watch)])
  }

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

    $('relays').tBodies[0].innerHTML = s.relays.map(relayRow).join('')
    $('backends').tBodies[0].innerHTML = s.backends.map(backendRow).join('')
    $('streams').tBodies[0].innerHTML = s.streams.length === 0
      ? emptyRow(4, 'no stream is playing')
      : s.streams.map(streamRow).join('')

    const codes = Object.keys(s.errors)
      .filter(function (k) { return s.errors[k] > 0 })
      .sort(function (a, b) { return s.errors[b] - s.errors[a] })
    $('errtable').tBodies[0].innerHTML = codes.length === 0
      ? emptyRow(2, 'none')
      : codes.map(function (c) { return row([], [td(text(c)), num(s.errors[c])]) }).join('')
  }

  // HTTP routes (httpRoutes): rendered from /status, polled every sample interval; req/s from the
  // difference between two polls.
  const http = { prev: null, timer: null }
  function httpBackendRow (path, b) {
    const bst = b.healthy
      ? badge('ok', 'healthy')
      : !b.up ? badge('bad', 'down', [['title', b.probe]]) : badge('warn', 'cooling down')
    return row([['class', 'hb'], ['data-route', path], ['data-http-backend', b.name]], [
      td(text(b.name)),
      td(bst, [['data-testid', 'health']]),
      num(b.requests, 'requests'),
      td(''),
      td(''),
      num(b.viewers),
      num(b.inFlight),
      num(b.failures),
      num(b.rtspSessions === null || b.rtspSessions === undefined ? '–' : b.rtspSessions)
    ])
  }
  function httpRouteRows (r, rates) {
    const viewers = r.backends.reduce(function (n, b) { return n + b.viewers }, 0)
    const up = r.backends.filter(function (b) { return b.healthy }).length
    const all = r.backends.length
    const st = badge(up === all ? 'ok' : up === 0 ? 'bad' : 'warn', up + '/' + all + ' up')
    const head = row([['class', 'route'], ['data-route', r.path]], [
      td(text(r.path)),
      td(st),
      num(r.requests, 'requests'),
      num(fmt(rates[r.path], 1), 'rps'),
      num(fmt(r.bytes / 1e6, 2), 'mb'),
      num(viewers, 'viewers'),
      num(r.inFlight),
      num(r.upstreamErrors),
      td('')
    ])
    return head + r.backends.map(function (b) { return httpBackendRow(r.path, b) }).join('')
  }
  function renderHttp (routes, rates) {
    $('http-section').hidden = routes.length === 0
    $('httproutes').tBodies[0].innerHTML = routes.map(function (r) { return httpRouteRows(r, rates) }).join('')
  }
  function pollHttp () {
    fetch('/status', { cache: 'no-store' }).then(function (r) { return r.json() }).then(function (j) {
      const routes = j.httpRoutes || []
      const now = Date.now()
      const rates = {}
      if (http.prev) {
        const dt = (now - http.prev.t) / 1000
        routes.forEach(function (r) {
          const p = http.prev.req[r.path]
          if (p !== undefined && dt > 0) rates[r.path] = Math.max(0, r.requests - p) / dt
        })
      }
      http.prev = { t: now, req: Object.fromEntries(routes.map(function (r) { return [r.path, r.requests] })) }
      renderHttp(routes, rates)
      // No routes configured: stop polling.
      if (routes.length === 0 && http.timer) { clearInterval(http.timer); http.timer = null }
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
      .then(function (x) {
        const failed = x.j.error ? x.j.error.code + ': ' + x.j.error.message : 'failed'
        $('admin-msg').textContent = x.ok ? btn.dataset.name + (x.j.draining ? ' draining' : ' in service') : failed
      })
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
    if (opened && es.readyState !== EventSource.CLOSED) { setConn('down', 'reconnecting…'); return }
    es.close()
    startPolling()
  }
})()
