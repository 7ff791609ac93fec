/**
 * The transport seam (DESIGN.md principle 1). Core logic talks to its peers
 * only through a Connection, so the same protocol runs across processes over
 * WebSocket (ws.ts) and inside one process over the seeded in-memory
 * transport (memory.ts).
 *
 * A send is a batch of messages that arrives whole and in order; a
 * connection is FIFO, as TCP is. Chunks handed to send must not change until
 * the peer has consumed them (the migration protocol guarantees this: the
 * pages are locked for the duration of the migration, or pinned until the
 * message's onConsumed).
 */
import type { Payload } from './payload.js'

export interface OutMessage {
  /** JSON-serialisable control header (the RPC envelope). */
  readonly env: object
  /** Page data that belongs to this message. */
  readonly data?: readonly Uint8Array[] | undefined
  /**
   * Called once the data is no longer needed (encoded onto the wire, or
   * delivered and handled by the peer, or dropped): the sender may then
   * reuse what the chunks point at.
   */
  readonly onConsumed?: (() => void) | undefined
}

export interface InMessage {
  /** Parsed but not yet validated: the RPC layer checks it. */
  readonly env: unknown
  readonly data: Payload | null
}

export interface ConnectionEvents {
  message: (batch: InMessage[]) => void
  /** A frame that could not even be decoded into messages. */
  malformed: (reason: string) => void
  close: (reason: string) => void
}

export interface Connection {
  /** Human-readable peer description for logs. */
  readonly label: string
  readonly closed: boolean
  /** Returns false if the connection is closed (the batch is dropped). */
  send: (batch: readonly OutMessage[]) => boolean
  setHandlers: (handlers: ConnectionEvents) => void
  close: (reason?: string) => void
}
