/**
 * Answer a refused connection and close it for good: end() with the reply, destroy a second later.
 * end() alone is not enough for a socket that was paused after its head (front door, relay): bytes
 * the client sent after the head wait unread, so its FIN never becomes 'end' and the socket, closed
 * in TCP, keeps its descriptor. The second lets the reply leave first.
 */
export const REFUSED_DESTROY_MS = 1000

/** What is needed of the socket (a net.Socket, or a POST a worker sees relayed). */
export interface Closable {
  on (event: 'error', listener: () => void): unknown
  end (data: Buffer | string): unknown
  destroy (): unknown
}

export function answerAndClose (socket: Closable, reply: Buffer | string): void {
  socket.on('error', () => {})
  socket.end(reply)
  setTimeout(() => socket.destroy(), REFUSED_DESTROY_MS).unref()
}
