/**
 * A small TCP proxy for fault injection between hosts (this kernel has no netem): it listens on
 * an address, opens one upstream connection to the target per client connection, and forwards
 * bytes both ways, with
 *
 * - **delay**: every chunk is held `delayMs` after it arrives before it goes on (each direction,
 *   so a request and its answer cost twice the delay). Order is kept: a chunk never overtakes the
 *   one before it, also when the delay changes while chunks are held.
 * - **black hole** (`setBlackHole(true)`): nothing is forwarded and nothing closed; connections
 *   are accepted and held, and what arrives waits (bounded, below) until the hole is closed
 *   again, as TCP retransmits across a healed partition.
 *
 * Bounds: at most `connectionsMax` client connections (more are closed at once by node:net);
 * at most `heldBytesMax` bytes held per direction of a connection: past that the sending socket
 * is paused (TCP backpressure to the sender) until half of it has gone on.
 *
 * Not here: cutting a whole host (hosts.ts).
 */
import net from 'node:net';

const CONNECTIONS_MAX_DEFAULT = 256;
const HELD_BYTES_MAX_DEFAULT = 16 * 1024 * 1024;

export interface TcpProxyOptions {
  /** Address to listen on (the test process's bridge address, to be reached from every host). */
  readonly listenHost: string;
  readonly listenPort?: number;
  readonly targetHost: string;
  readonly targetPort: number;
  readonly delayMs?: number;
  readonly connectionsMax?: number;
  readonly heldBytesMax?: number;
}

export interface TcpProxy {
  readonly host: string;
  readonly port: number;
  /** `http://host:port`. */
  readonly url: string;
  readonly delayMs: number;
  setDelay(delayMs: number): void;
  setBlackHole(on: boolean): void;
  /** Client connections open now. */
  connectionCount(): number;
  /** Client connections accepted since the start. */
  connectionsAccepted(): number;
  /** Closes the listener and destroys every connection. */
  close(): Promise<void>;
}

interface Held { chunk: Buffer; dueAtMs: number }

/** One direction of one connection: from `source` to `sink`, through a queue of held chunks. */
class Lane {
  private readonly held: Held[] = [];
  private heldBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private ended = false;
  private lastDueAtMs = 0;

  constructor(
    private readonly source: net.Socket,
    private readonly sink: net.Socket,
    private readonly proxy: { delayMs: number; blackHole: boolean },
    private readonly heldBytesMax: number,
  ) {
    source.on('data', (chunk: Buffer) => {
      // Never before the chunk ahead of it, whatever the delay is now.
      this.lastDueAtMs = Math.max(this.lastDueAtMs, Date.now() + this.proxy.delayMs);
      this.held.push({ chunk, dueAtMs: this.lastDueAtMs });
      this.heldBytes += chunk.length;
      if (this.heldBytes > this.heldBytesMax) source.pause();
      this.pump();
    });
    source.on('end', () => { this.ended = true; this.pump(); });
  }

  pump(): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    if (this.sink.destroyed) return;
    if (this.proxy.blackHole) return;
    const now = Date.now();
    while (this.held.length > 0 && this.held[0]!.dueAtMs <= now) {
      const { chunk } = this.held.shift()!;
      this.heldBytes -= chunk.length;
      this.sink.write(chunk);
    }
    if (this.heldBytes <= this.heldBytesMax / 2 && this.source.isPaused()) this.source.resume();
    if (this.held.length > 0) this.timer = setTimeout(() => this.pump(), this.held[0]!.dueAtMs - now);
    else if (this.ended) this.sink.end();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.held.length = 0;
  }
}

export async function startTcpProxy(opts: TcpProxyOptions): Promise<TcpProxy> {
  const state = { delayMs: opts.delayMs ?? 0, blackHole: false };
  const heldBytesMax = opts.heldBytesMax ?? HELD_BYTES_MAX_DEFAULT;
  const lanes = new Set<Lane>();
  const sockets = new Set<net.Socket>();
  const clients = new Set<net.Socket>();
  let accepted = 0;
  // Half-open allowed on both sides: a FIN goes on after the bytes held before it, not at once.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    accepted++;
    clients.add(client);
    const upstream = net.connect({ host: opts.targetHost, port: opts.targetPort, allowHalfOpen: true });
    const own = [new Lane(client, upstream, state, heldBytesMax), new Lane(upstream, client, state, heldBytesMax)];
    for (const lane of own) lanes.add(lane);
    const done = () => {
      for (const lane of own) { lane.stop(); lanes.delete(lane); }
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
      clients.delete(client);
    };
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', done);
      s.on('close', () => {
        // A side that closed cleanly (after 'end', its lane flushed) takes the other with it
        // once nothing is held for it; an aborted one at once.
        if (s === client ? upstream.writableEnded || upstream.destroyed : client.writableEnded || client.destroyed) done();
      });
    }
  });
  server.maxConnections = opts.connectionsMax ?? CONNECTIONS_MAX_DEFAULT;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listenPort ?? 0, opts.listenHost, () => { server.off('error', reject); resolve(); });
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: opts.listenHost,
    port,
    url: `http://${opts.listenHost}:${port}`,
    get delayMs() { return state.delayMs; },
    setDelay: (delayMs: number) => {
      if (!(Number.isFinite(delayMs) && delayMs >= 0)) throw new Error(`setDelay(${delayMs}): a delay is a number of ms >= 0`);
      state.delayMs = delayMs;
    },
    setBlackHole: (on: boolean) => {
      state.blackHole = on;
      if (!on) for (const lane of lanes) lane.pump();
    },
    connectionCount: () => clients.size,
    connectionsAccepted: () => accepted,
    close: () => new Promise<void>((resolve) => {
      for (const lane of lanes) lane.stop();
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
