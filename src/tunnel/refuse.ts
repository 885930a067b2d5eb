/**
 * Answer and close a connection the gateway will not serve (a bad head, a limit, a missing proof).
 * `end()` alone is not enough: the front door pauses every socket once its head is read, so bytes the
 * client sent after the head stay unread, its FIN never becomes 'end' and the socket (and its
 * descriptor) would be held for good. The socket is resumed so what follows is read and dropped, and
 * destroyed after `graceMs` whatever the client does.
 */
export interface Refusable {
  on (event: 'error', listener: () => void): unknown
  end (data: Buffer | string): unknown
  resume (): unknown
  destroy (): unknown
}

export const REFUSAL_GRACE_MS = 1000

export function refuseConnection (socket: Refusable, reply: Buffer | string, graceMs = REFUSAL_GRACE_MS): void {
  socket.on('error', () => {})
  socket.end(reply)
  socket.resume()
  setTimeout(() => { socket.destroy() }, graceMs).unref()
}
