/**
 * `npm run bench`: runs benchmarks one after another, each in its own process with its default
 * flags (they start their own leaves; running two at once would make both figures wrong).
 *
 *   node dist/bench/run.js [scan] [ingest] [cluster] [shm] [restart] [-- FLAGS passed to each]
 *
 * With no names it runs scan and ingest, the ones issue 2 asks for. Exits non-zero if any fails.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const KNOWN = ['scan', 'ingest', 'cluster', 'shm', 'restart'] as const;
const DEFAULT = ['scan', 'ingest'];

function main(): number {
  const argv = process.argv.slice(2);
  const dash = argv.indexOf('--');
  const names = dash < 0 ? argv : argv.slice(0, dash);
  const flags = dash < 0 ? [] : argv.slice(dash + 1);
  for (const n of names) if (!(KNOWN as readonly string[]).includes(n)) throw new Error(`unknown benchmark "${n}" (known: ${KNOWN.join(', ')})`);
  let failed = 0;
  for (const name of names.length === 0 ? DEFAULT : names) {
    const file = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
    console.log(`\n=== bench/${name} ${flags.join(' ')}`);
    const r = spawnSync(process.execPath, [file, ...flags], { stdio: 'inherit' });
    if (r.status !== 0) { failed++; console.log(`=== bench/${name} exited with ${r.status ?? r.signal}`); }
  }
  return failed === 0 ? 0 : 1;
}

try {
  process.exitCode = main();
} catch (e) {
  console.error(`bench/run: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 2;
}
