/**
 * The layout's rules hold over the real source tree: every product file is in a room, and
 * every relative import points to a room its room may import (test/support/import-rules.ts).
 * The rules themselves are checked against imports that break them, so this test can fail.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { importsOf, roomOf, sourceGraph, violations } from './support/import-rules.js';
import { REPO_ROOT } from './support/processes.js';

describe('layout', () => {
  it('every product source file is in a room and imports only what its room may', () => {
    const { files, edges } = sourceGraph(REPO_ROOT);
    expect(files.length).toBeGreaterThan(50);
    const unroomed = files.filter((f) => roomOf(f) === null);
    expect(unroomed).toEqual([]);
    expect(violations(edges)).toEqual([]);
  });

  it('every import resolves to a file that exists (the checker reads the real graph)', () => {
    const { edges } = sourceGraph(REPO_ROOT);
    const modules = edges.filter((e) => e.to.endsWith('.ts'));
    expect(modules.length).toBeGreaterThan(150);
    const missing = modules.filter((e) => !fs.existsSync(path.join(REPO_ROOT, e.to)));
    expect(missing).toEqual([]);
  });

  it('refuses imports that point up or across', () => {
    const bad: [string, string][] = [
      ['query/storage/table.ts', "import { scan } from '../exec/scan.js';"],
      ['query/engine.ts', "import { LeafStore } from '../server/leaf/leaf.js';"],
      ['server/durability/disk-log.ts', "import type { Leaf } from '../leaf/leaf.js';"],
      ['server/durability/shm-handoff.ts', "import { routeBatch } from '../cluster/router.js';"],
      ['server/cluster/aggregator.ts', "import { DiskStore } from '../durability/disk-store.js';"],
      ['native/shm.ts', "export { x } from '../query/errors.js';"],
      ['query/plan/bind.ts', "const m = await import('../merge/merge.js');"],
    ];
    for (const [file, text] of bad) {
      const v = violations(importsOf(file, text));
      expect(v, `${file}: ${text}`).toHaveLength(1);
      expect(v[0]).toContain('not allowed');
    }
    expect(violations(importsOf('query/newroom/x.ts', "import { LIMITS } from '../limits.js';"))[0]).toContain('in no room');
  });

  it('allows imports that point down', () => {
    const good: [string, string][] = [
      ['query/exec/scan.ts', "import type { BoundPlan } from '../plan/bind.js';"],
      ['server/leaf/leaf.ts', "import { DiskStore } from '../durability/disk-store.js';"],
      ['server/cli/cmd-up.ts', "const CLI = new URL('./cli.js', import.meta.url);"],
    ];
    for (const [file, text] of good) expect(violations(importsOf(file, text))).toEqual([]);
  });
});
