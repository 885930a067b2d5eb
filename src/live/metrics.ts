/**
 * Live fan-out metrics, registered on the gateway's registry (docs/metrics.md). The `path` label
 * is bounded: the first live.metricsPaths live paths seen by this relay get their own value,
 * later ones share path="_other".
 */
import { Counter, Gauge, type Registry } from 'prom-client'

export interface LiveMetrics {
  upstreams: Gauge<'path'>
  viewers: Gauge<'path'>
  gopCacheBytes: Gauge<'path'>
  reconnects: Counter<'path'>
  droppedFrames: Counter<'path'>
  droppedBytes: Counter<'path'>
  detections: Counter<'result'>
  /** The label value for a path (bounded). */
  label (path: string): string
}

export const OTHER_PATHS = '_other'

function reuse<T> (registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make()
}

export function createLiveMetrics (registry: Registry, maxPaths: number): LiveMetrics {
  const registers = [registry]
  const seen = new Set<string>()
  return {
    upstreams: reuse(
      registry, 'tunnelgate_live_upstreams',
      () => new Gauge({
        name: 'tunnelgate_live_upstreams',
        help: 'Backend sessions open for live paths (one per live path per relay)',
        labelNames: ['path'],
        registers
      })
    ),
    viewers: reuse(
      registry, 'tunnelgate_live_viewers',
      () => new Gauge({
        name: 'tunnelgate_live_viewers',
        help: 'Viewers attached to live paths (the fan-out ratio is viewers / upstreams)',
        labelNames: ['path'],
        registers
      })
    ),
    gopCacheBytes: reuse(
      registry, 'tunnelgate_live_gop_cache_bytes',
      () => new Gauge({
        name: 'tunnelgate_live_gop_cache_bytes',
        help: 'Bytes of RTP held in the GOP cache of live paths',
        labelNames: ['path'],
        registers
      })
    ),
    reconnects: reuse(
      registry, 'tunnelgate_live_upstream_reconnects_total',
      () => new Counter({
        name: 'tunnelgate_live_upstream_reconnects_total',
        help: 'Reconnect attempts after a live backend session was lost',
        labelNames: ['path'],
        registers
      })
    ),
    droppedFrames: reuse(
      registry, 'tunnelgate_live_dropped_frames_total',
      () => new Counter({
        name: 'tunnelgate_live_dropped_frames_total',
        help: 'Whole frames not sent to slow live viewers (dropped up to the next keyframe)',
        labelNames: ['path'],
        registers
      })
    ),
    droppedBytes: reuse(
      registry, 'tunnelgate_live_dropped_bytes_total',
      () => new Counter({
        name: 'tunnelgate_live_dropped_bytes_total',
        help: 'Bytes not sent to slow live viewers',
        labelNames: ['path'],
        registers
      })
    ),
    detections: reuse(
      registry, 'tunnelgate_live_detections_total',
      () => new Counter({
        name: 'tunnelgate_live_detections_total',
        help: 'live: auto verdicts, by result (live, vod)',
        labelNames: ['result'],
        registers
      })
    ),
    label (path: string): string {
      if (seen.has(path)) return path
      if (seen.size >= maxPaths) return OTHER_PATHS
      seen.add(path)
      return path
    }
  }
}
