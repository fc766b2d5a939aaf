/**
 * The layering rules of the source tree, as data, and a checker over the real import graph.
 * Every source file belongs to one room (a folder, or for `query/` a few root files); a room may
 * import only the rooms listed for it, so dependencies point down: `query/` knows nothing of
 * `server/`, storage knows nothing of execution, durability knows nothing of the leaf app or
 * the cluster. A new folder needs a line here before its files pass.
 *
 * Imports are read as text (static `import`/`export ... from`, `import('...')` and
 * `new URL('...', import.meta.url)` with a relative specifier), which is what the compiler
 * resolves too: `import type` counts, because a type import is still a dependency.
 * Not here: package imports (npm modules may be used anywhere their README allows).
 */
import fs from 'node:fs';
import path from 'node:path';

const QUERY_BELOW_ENGINE = ['query/base', 'query/storage', 'query/sql', 'query/functions', 'query/plan', 'query/exec', 'query/merge'];

/** room -> rooms it may import (itself always allowed). */
export const ROOM_RULES: Readonly<Record<string, readonly string[]>> = {
  'query/base': [],
  // storage reads ISO time text with functions/time.ts, the one parser the planner uses too.
  'query/storage': ['query/base', 'query/functions'],
  'query/sql': ['query/base'],
  'query/functions': ['query/base'],
  'query/plan': ['query/base', 'query/sql', 'query/storage', 'query/functions'],
  'query/exec': ['query/base', 'query/storage', 'query/functions', 'query/plan'],
  'query/merge': ['query/base', 'query/storage', 'query/functions', 'query/plan', 'query/exec'],
  'query/engine': QUERY_BELOW_ENGINE,
  native: [],
  // The loader reads ISO time text with the engine's own parser (query/functions/time.ts) and
  // checks plain NDJSON with the leaf's own byte scanner (query/storage/ingest-scan.ts).
  loader: ['query/base', 'query/functions', 'query/storage'],
  'server/http': ['query/base', 'query/plan'],
  // The web UI's routes serve fixed files; the page talks to the API over HTTP like any client.
  'server/ui': ['query/base', 'server/http'],
  'server/durability': ['query/base', 'query/storage', 'native'],
  'server/leaf': [...QUERY_BELOW_ENGINE, 'query/engine', 'native', 'server/http', 'server/durability', 'server/ui'],
  'server/cluster': ['query/base', 'query/storage', 'query/plan', 'query/merge', 'query/engine', 'server/http', 'server/ui'],
  'server/ops': ['query/base', 'server/http'],
  'server/cli': [...QUERY_BELOW_ENGINE, 'query/engine', 'native', 'loader', 'server/http', 'server/leaf', 'server/durability', 'server/cluster', 'server/ops'],
  bench: [...QUERY_BELOW_ENGINE, 'query/engine', 'native', 'loader', 'server/http', 'server/leaf', 'server/durability', 'server/cluster', 'server/ops', 'server/cli'],
};

/** The room of a repository-relative source path, or null when no room claims it. */
export function roomOf(file: string): string | null {
  if (file === 'query/errors.ts' || file === 'query/limits.ts') return 'query/base';
  if (file === 'query/engine.ts') return 'query/engine';
  const parts = file.split('/');
  if (parts[0] === 'query' || parts[0] === 'server') {
    if (parts.length < 3) return null;
    const room = `${parts[0]}/${parts[1]}`;
    return room in ROOM_RULES ? room : null;
  }
  if (parts[0] === 'native' || parts[0] === 'loader' || parts[0] === 'bench') return parts[0];
  return null;
}

export interface ImportEdge { readonly from: string; readonly to: string; readonly line: number }

const SPEC = /(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+|new URL\(\s*)'(\.{1,2}\/[^']*)'/gm;

/** Relative imports of one file's text, resolved to repository paths (.js -> .ts). */
export function importsOf(file: string, text: string): ImportEdge[] {
  const out: ImportEdge[] = [];
  for (const m of text.matchAll(SPEC)) {
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1]!)).replace(/\.js$/, '.ts');
    const line = text.slice(0, m.index).split('\n').length;
    out.push({ from: file, to: target, line });
  }
  return out;
}

/** Every broken rule, as readable lines; empty when the graph is clean. */
export function violations(edges: readonly ImportEdge[]): string[] {
  const out: string[] = [];
  const seenFiles = new Set<string>();
  for (const e of edges) {
    const from = roomOf(e.from);
    if (from === null) {
      if (!seenFiles.has(e.from)) out.push(`${e.from}: in no room (add it to ROOM_RULES in test/support/import-rules.ts)`);
      seenFiles.add(e.from);
      continue;
    }
    if (e.to.endsWith('/') || !e.to.endsWith('.ts')) continue; // a folder URL (e.g. the repo root), not a module
    const to = roomOf(e.to);
    if (to === null) { out.push(`${e.from}:${e.line} imports ${e.to}, which is in no room`); continue; }
    if (to !== from && !ROOM_RULES[from]!.includes(to)) out.push(`${e.from}:${e.line} (${from}) imports ${e.to} (${to}): not allowed`);
  }
  return out;
}

/** The import graph of the product tree (everything but test/), read from the sources. */
export function sourceGraph(repoRoot: string): { files: string[]; edges: ImportEdge[] } {
  const files: string[] = [];
  const walk = (rel: string): void => {
    for (const ent of fs.readdirSync(path.join(repoRoot, rel), { withFileTypes: true })) {
      const child = rel === '' ? ent.name : `${rel}/${ent.name}`;
      if (ent.isDirectory()) walk(child);
      else if (ent.name.endsWith('.ts') && !ent.name.endsWith('.d.ts')) files.push(child);
    }
  };
  for (const top of ['query', 'server', 'native', 'loader', 'bench']) walk(top);
  const edges = files.flatMap((f) => importsOf(f, fs.readFileSync(path.join(repoRoot, f), 'utf8')));
  return { files, edges };
}
