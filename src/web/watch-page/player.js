/*
 * The browser player's script (served at /watch-assets/player.js). It runs media-stream-library's
 * Html5VideoPipeline (window.mediaStreamLibrary, from the bundle the portal serves) against this
 * portal's RTSP-over-WebSocket path, and drives play/pause, a VOD seek bar and the status line. The
 * page gives it its stream path, WebSocket path and token in <script id="tg-config"> (JSON).
 *
 * Seeking restarts the pipeline with PLAY Range: npt=<t>- (the library has no in-session seek);
 * the media timeline of each pipeline starts at 0, so the position shown is the PLAY reply's
 * Range start + video.currentTime. Live pause stops the session; play starts a new one at the
 * live edge. `window.tgPlayer.state()` reports the state (used by the browser tests).
 */
(() => {
  'use strict'
  const cfg = JSON.parse(document.getElementById('tg-config').textContent)
  const msl = window.mediaStreamLibrary
  const video = document.getElementById('video')
  const statusEl = document.getElementById('status')
  const playBtn = document.getElementById('play')
  const seek = document.getElementById('seek')
  const timeEl = document.getElementById('time')
  const errors = []
  let pipeline = null
  let generation = 0
  let offset = 0
  let duration = null
  let state = 'idle'
  let seeking = false

  function setStatus (kind, text) {
    statusEl.textContent = text
    statusEl.dataset.kind = kind
  }
  function fmt (t) {
    if (!isFinite(t)) return '--:--'
    const s = Math.max(0, Math.floor(t))
    return String(Math.floor(s / 60)).padStart(2, '0') + ':' + String(s % 60).padStart(2, '0')
  }
  function position () { return offset + (video.currentTime || 0) }

  if (msl === undefined || !('MediaSource' in window)) {
    setStatus(
      'error',
      msl === undefined
        ? 'The player library did not load.'
        : 'This browser has no Media Source Extensions: it cannot play this stream.'
    )
    return
  }
  const wsScheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
  const wsUri = wsScheme + '//' + location.host + cfg.wsPath +
    (cfg.token ? '?' + encodeURIComponent(cfg.tokenParam) + '=' + encodeURIComponent(cfg.token) : '')
  const rtspUri = 'rtsp://' + location.host + cfg.path

  function describeError (code) {
    if (code === 404) return 'There is no stream at ' + cfg.path + '.'
    if (code === 401 || code === 403) return 'Access to ' + cfg.path + ' was refused (' + code + ').'
    if (code === 453 || code === 503) return 'No server can take this stream right now (' + code + '). Try again later.'
    if (code === 504 || code === 502) return 'The media server did not answer (' + code + ').'
    return 'The server refused the stream (RTSP ' + code + ').'
  }

  function stop () {
    generation++
    if (pipeline !== null) {
      try { pipeline.close() } catch (e) {}
      pipeline = null
    }
  }

  function start (at) {
    stop()
    const gen = generation
    offset = at
    state = 'connecting'
    setStatus('connecting', 'Connecting…')
    const p = new msl.pipelines.Html5VideoPipeline({
      ws: { uri: wsUri, timeout: 10000 }, rtsp: { uri: rtspUri }, mediaElement: video
    })
    pipeline = p
    p.onPlay = range => {
      if (gen !== generation) return
      if (range !== undefined) {
        const start = Number.parseFloat(range[0])
        const stop = Number.parseFloat(range[1])
        if (isFinite(start)) offset = start
        if (isFinite(stop) && stop > 0) duration = stop
      }
      state = 'playing'
      setStatus('playing', duration === null ? 'Live' : 'Playing')
      playBtn.textContent = 'Pause'
      if (duration !== null) { seek.hidden = false; seek.max = String(duration) }
      video.play().catch(() => {})
    }
    p.rtsp.onError = err => {
      if (gen !== generation) return
      errors.push(err.code)
      state = 'error'
      setStatus(
        err.code === 404 ? 'unknown' : (err.code === 401 || err.code === 403) ? 'refused' : 'error',
        describeError(err.code)
      )
      stop()
    }
    p.onServerClose = () => {
      if (gen !== generation) return
      state = 'ended'
      setStatus('ended', 'The stream ended.')
    }
    p.ready.then(() => {
      if (gen !== generation) return
      p.rtsp.play(at)
    }, () => {
      if (gen !== generation) return
      state = 'error'
      setStatus('refused', 'The gateway refused the connection (WebSocket). The link may have expired.')
    })
  }

  playBtn.addEventListener('click', () => {
    if (state === 'playing') {
      if (duration === null) {
        stop()
        state = 'paused'
        video.pause()
      } else { pipeline.rtsp.pause(); video.pause(); state = 'paused' }
      playBtn.textContent = 'Play'
      setStatus('paused', 'Paused')
    } else if (state === 'paused' && duration !== null && pipeline !== null) {
      pipeline.rtsp.play()
      video.play().catch(() => {})
      state = 'playing'
      playBtn.textContent = 'Pause'
      setStatus('playing', 'Playing')
    } else { start(0) }
  })
  seek.addEventListener('input', () => {
    seeking = true
    timeEl.textContent = fmt(Number(seek.value)) + ' / ' + fmt(duration)
  })
  seek.addEventListener('change', () => { seeking = false; start(Number(seek.value)) })
  video.addEventListener('ended', () => { state = 'ended'; setStatus('ended', 'The stream ended.') })
  video.addEventListener('error', () => { errors.push('video:' + (video.error ? video.error.code : '?')) })
  setInterval(() => {
    if (seeking) return
    const pos = position()
    timeEl.textContent = duration === null
      ? (state === 'playing' ? 'live ' + fmt(pos) : '')
      : fmt(pos) + ' / ' + fmt(duration)
    if (duration !== null) seek.value = String(Math.min(pos, duration))
  }, 250)

  window.tgPlayer = {
    state: () => ({
      state,
      offset,
      duration,
      position: position(),
      message: statusEl.textContent,
      kind: statusEl.dataset.kind,
      errors: errors.slice()
    }),
    seek: t => start(t),
    toggle: () => playBtn.click()
  }
  start(0)
})()
