/**
 * `shoal shm`: the shared-memory handoffs on this machine (server/durability/shm-segments.ts):
 * which leaf each belongs to, its size and age, whether a successor can still take it and, if
 * not, why. With --remove-orphans / --remove-expired / --remove ID it frees them: a handoff's
 * data is on its leaf's disk too, so removing one costs only a fast restart. The segments of a
 * running leaf (state live) are never orphans; `--remove ID` of a running leaf only unnames them
 * (its mappings stay valid) and its next handoff copies those blocks again.
 *
 * Exit status: 0; 1 when a removal failed.
 */
import type { Command } from 'commander';
import { nativeAvailable, nativeLoadError } from '../../native/shm.js';
import { SHM_LAYOUT_VERSION } from '../durability/shm-handoff.js';
import { isOrphan, listHandoffs, removeHandoff, type HandoffInfo } from '../durability/shm-segments.js';
import { formatBytes } from './cmd-status.js';
import { formatTable } from './format.js';

interface ShmOptions { json?: boolean; removeOrphans?: boolean; removeExpired?: boolean; remove?: string[]; only?: string[] }

function age(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 86_400_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / 86_400_000).toFixed(1)} d`;
}

export function formatHandoffs(list: readonly HandoffInfo[]): string {
  if (list.length === 0) return 'no shoal shared-memory segments on this machine';
  const str = (name: string) => ({ name, type: 'string' });
  const rows = list.map((h) => [h.leafId, String(h.segments.length), formatBytes(h.bytes), age(h.ageMs), h.state, h.takeable ? 'yes' : 'no', h.takeable ? h.dataDir ?? '' : h.reason ?? '']);
  const total = list.reduce((s, h) => s + h.bytes, 0);
  const orphans = list.filter(isOrphan);
  const table = formatTable({ columns: [str('leaf'), str('segments'), str('bytes'), str('age'), str('state'), str('takeable'), str('data dir / why not')], rows });
  const tail = orphans.length > 0
    ? `\n${formatBytes(total)} in all; ${orphans.length} no successor can take (${formatBytes(orphans.reduce((s, h) => s + h.bytes, 0))}): shoal shm --remove-orphans frees them`
    : `\n${formatBytes(total)} in all, each held by a running leaf or takeable by its leaf's next start`;
  return table + tail;
}

export function registerShm(program: Command): void {
  program
    .command('shm')
    .description('list the shared-memory handoffs on this machine; free those no leaf can take')
    .option('--json', 'print the list as JSON')
    .option('--remove-orphans', 'remove every handoff no successor can take (its data is on disk)')
    .option('--remove-expired', 'remove handoffs past their --handoff-ttl')
    .option('--remove <leafId...>', 'remove the handoffs of these leaves (their next start reads the disk)')
    .option('--only <leafId...>', 'list and remove only the segments of these leaves (others on the machine are left alone)')
    .addHelpText('after', `
Example:
  $ shoal shm                      # what is held, by which leaf, and whether it can be taken
  $ shoal shm --remove-orphans     # free what no successor can take
  $ shoal shm --remove-orphans --only leaf-3   # the same, for one leaf's segments only`)
    .action((o: ShmOptions) => {
      if (!nativeAvailable()) {
        process.stderr.write(`shoal shm: the native addon is not built (${nativeLoadError()?.message ?? 'unknown'}); run npm install\n`);
        process.exit(1);
      }
      const only = o.only === undefined ? null : new Set(o.only);
      const list = listHandoffs(SHM_LAYOUT_VERSION).filter((h) => only === null || only.has(h.leafId));
      const wanted = new Set(o.remove ?? []);
      const doomed = list.filter((h) => (o.removeOrphans === true && isOrphan(h)) || (o.removeExpired === true && h.state === 'expired') || wanted.has(h.leafId));
      for (const id of wanted) if (!list.some((h) => h.leafId === id)) process.stderr.write(`shoal shm: no segments of leaf ${id}\n`);
      let failed = false;
      const removed: { leafId: string; bytes: number }[] = [];
      for (const h of doomed) {
        try { removed.push({ leafId: h.leafId, bytes: removeHandoff(h) }); } catch (e) { failed = true; process.stderr.write(`shoal shm: removing ${h.leafId}: ${(e as Error).message}\n`); }
      }
      if (o.json === true) {
        process.stdout.write(JSON.stringify({ handoffs: list, removed }, null, 2) + '\n');
      } else if (doomed.length > 0) {
        for (const r of removed) process.stdout.write(`removed the handoff of leaf ${r.leafId}: ${formatBytes(r.bytes)} freed\n`);
      } else {
        process.stdout.write(formatHandoffs(list) + '\n');
      }
      if (failed) process.exit(1);
    });
}
