/**
 * Summarises V8 CPU profiles (`node --cpu-prof`): the functions with the most self time, per
 * file (one file per thread: a leaf writes its main thread and each scan worker).
 *
 *   node dist/bench/cpu-profile.js [--top 20] FILE.cpuprofile...
 *
 * Idle time (a worker waiting for tasks, the event loop waiting for requests) is listed as
 * "(idle)" and left out of the "busy" percentages, which are what to read.
 */
import fs from 'node:fs';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

const TOP_MAX = 1000;
const NOT_BUSY = new Set(['(idle)', '(program)', 'atomicsWaitLoop']);

function summarise(file: string, top: number): void {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const us = p.timeDeltas[i] ?? 0;
    const cf = byId.get(p.samples[i]!)!.callFrame;
    const name = cf.functionName || '(anonymous)';
    const where = cf.url === '' ? '' : ` ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber + 1}`;
    const key = `${name}${where}`;
    selfUs.set(key, (selfUs.get(key) ?? 0) + us);
    totalUs += us;
    if (NOT_BUSY.has(name)) idleUs += us;
  }
  const busyUs = totalUs - idleUs;
  console.log(`== ${file}: ${(totalUs / 1e3).toFixed(0)} ms sampled, ${(busyUs / 1e3).toFixed(0)} ms busy`);
  const rows = [...selfUs].sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [key, us] of rows) {
    const name = key.split(' ')[0]!;
    const share = NOT_BUSY.has(name) ? '' : `${((100 * us) / Math.max(busyUs, 1)).toFixed(1)}%`;
    console.log(`${(us / 1e3).toFixed(0).padStart(8)} ms ${share.padStart(6)}  ${key}`);
  }
}

function main(): void {
  const argv = process.argv.slice(2);
  let top = 20;
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--top') {
      top = Number(argv[++i]);
      if (!Number.isInteger(top) || top < 1 || top > TOP_MAX) throw new Error(`--top: expected 1..${TOP_MAX}`);
    } else files.push(argv[i]!);
  }
  if (files.length === 0) throw new Error('usage: node dist/bench/cpu-profile.js [--top N] FILE.cpuprofile...');
  for (const f of files) summarise(f, top);
}

try {
  main();
} catch (e) {
  console.error(`bench/cpu-profile: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 2;
}
