/** Reading a Cookie request header (RFC 6265 §5.4: `name=value` pairs separated by `;`). */

/** Every value of cookie `name` in a Cookie header (several may come, with different paths), at most `max`. */
export function cookieValues (header: string | undefined, name: string, max: number): string[] {
  const out: string[] = []
  if (header === undefined) return out
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq !== -1 && part.slice(0, eq).trim() === name) out.push(part.slice(eq + 1).trim())
    if (out.length >= max) break
  }
  return out
}

/** The cookies of a Cookie header by name (the first of each name). */
export function parseCookies (header: string | undefined): Map<string, string> {
  const out = new Map<string, string>()
  if (header === undefined) return out
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq === -1) continue
    const k = part.slice(0, eq).trim()
    if (k !== '' && !out.has(k)) out.set(k, part.slice(eq + 1).trim())
  }
  return out
}
