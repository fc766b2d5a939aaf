/**
 * Vitest global teardown: tests start real leaves in temp data directories and remove the
 * directories after; a leaf stopped with SIGTERM or SIGKILL leaves its shared-memory segments
 * behind (that is the point of them). Once the directories are gone those segments are orphans
 * (docs/durability.md): nothing can take them, so the run removes exactly what
 * `shoal shm --remove-orphans` would, and says how much. Segments of running leaves and of
 * handoffs whose data directory still exists are never touched.
 */
import * as shm from '../../native/shm.js';
import { isOrphan, listHandoffs, removeHandoff, SHM_LAYOUT_VERSION } from '../../server/durability/shm-segments.js';

export function teardown(): void {
  if (!shm.nativeAvailable()) return;
  let freed = 0;
  let count = 0;
  for (const h of listHandoffs(SHM_LAYOUT_VERSION)) {
    if (!isOrphan(h) || h.dataDir === null) continue;
    freed += removeHandoff(h);
    count++;
  }
  if (count > 0) console.log(`test teardown: removed ${count} orphaned shared-memory handoffs (${(freed / 2 ** 20).toFixed(1)} MiB) left by leaves of this run`);
}
