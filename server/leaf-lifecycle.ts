/**
 * A leaf process from start to exit: restore data, listen, run housekeeping timers (seal aged
 * open blocks, retention, disk-log fsync and checkpoints), and stop on a signal. The planned-
 * restart path (shared-memory handoff) plugs in here too.
 */
import type { FastifyInstance } from 'fastify';
import type { Leaf } from './leaf.js';

export interface Lifecycle {
  /** Housekeeping hooks run by the timer (the disk log adds its own). */
  ticks: (() => void)[];
  stop(reason: string): Promise<void>;
}

export async function startLeafLifecycle(leaf: Leaf, app: FastifyInstance, restore?: () => Promise<void>): Promise<Lifecycle> {
  const started = performance.now();
  if (restore) await restore();
  else leaf.restart = { source: 'empty', ms: Math.round(performance.now() - started), bytes: 0, rows: 0, reason: null };
  await app.listen({ host: leaf.config.host, port: leaf.config.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : leaf.config.port;
  leaf.state = 'serving';
  const r = leaf.restart;
  app.log.info({ leafId: leaf.leafId, restart: r }, `restored ${r.rows} rows (${r.bytes} bytes) from ${r.source} in ${r.ms} ms`);
  process.stdout.write(`shoal leaf ${leaf.leafId} listening on http://${leaf.config.host}:${port}\n`);

  const lifecycle: Lifecycle = {
    ticks: [() => { leaf.sealOldBlocks(); leaf.store.enforceRetention(Date.now() / 1000); }],
    stop: async (reason: string) => {
      if (leaf.state === 'stopped') return;
      leaf.state = 'stopped';
      clearInterval(timer);
      app.log.info({ reason }, 'stopping');
      await app.close();
      await leaf.durability?.close();
      await leaf.pool.close();
    },
  };
  const timer = setInterval(() => { for (const t of lifecycle.ticks) t(); }, 1000);
  timer.unref();
  const onSignal = (sig: string) => {
    lifecycle.stop(sig).then(() => process.exit(0), (e) => { app.log.error(e); process.exit(1); });
  };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  return lifecycle;
}
