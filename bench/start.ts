/**
 * Start time of the CLI as built (the esbuild bundle, dist/server/cli/cli.js) against tsc's
 * module-by-module output of the same code (dist/server/cli/cli-unbundled.js): `shoal --help`
 * and a leaf on an empty data directory, spawn -> its `listening on` line. Each is run
 * --rounds times, alternating which goes first; medians. The CPU a start costs is what a rolling
 * restart under load waits for (bench/RESULTS.md "Start time").
 *
 *   node dist/bench/start.js [--rounds 9] [--json]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatTable, intFlag, machineInfo, median, parseFlags, processCpuMs, warnIfBusy } from './support.js';

const BUNDLED = fileURLToPath(new URL('../server/cli/cli.js', import.meta.url));
/** Written by the build beside the bundle (server/cli/bundle.ts): no source file of its own. */
const UNBUNDLED = path.join(path.dirname(BUNDLED), 'cli-unbundled.js');
const START_TIMEOUT_MS = 30_000;

interface Sample { wallMs: number; cpuMs: number | null }

/** Spawns `node cli args`; resolves when `until` matches its stdout (then kills it) or it exits. */
function timeRun(cli: string, args: readonly string[], until: RegExp | null): Promise<Sample> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise<Sample>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${cli} ${args.join(' ')}: no answer in ${START_TIMEOUT_MS} ms`)); }, START_TIMEOUT_MS);
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      if (until !== null && until.test(out)) {
        const wallMs = performance.now() - t0;
        const cpuMs = processCpuMs(child.pid!);
        clearTimeout(timer);
        child.once('exit', () => resolve({ wallMs, cpuMs }));
        child.kill('SIGKILL');
      }
    });
    child.once('exit', (code) => {
      if (until !== null) return;
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`${cli} ${args.join(' ')} exited with ${code}`));
      else resolve({ wallMs: performance.now() - t0, cpuMs: null });
    });
  });
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), [
    { name: 'rounds', value: true, help: 'runs of each' },
    { name: 'json', value: false, help: 'print JSON' },
  ]);
  const rounds = intFlag(flags, 'rounds', 9, 1, 100);
  for (const f of [BUNDLED, UNBUNDLED]) if (!fs.existsSync(f)) throw new Error(`${f} not found: run \`npm run build\` first`);
  warnIfBusy((s) => process.stderr.write(`${s}\n`));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-start-'));
  const samples: Record<string, Sample[]> = { 'help bundled': [], 'help unbundled': [], 'leaf bundled': [], 'leaf unbundled': [] };
  try {
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? (['bundled', 'unbundled'] as const) : (['unbundled', 'bundled'] as const);
      for (const kind of order) {
        const cli = kind === 'bundled' ? BUNDLED : UNBUNDLED;
        samples[`help ${kind}`]!.push(await timeRun(cli, ['--help'], null));
        const dir = path.join(tmp, `${kind}-${r}`);
        samples[`leaf ${kind}`]!.push(await timeRun(cli, ['leaf', '--port', '0', '--host', '127.0.0.1', '--data-dir', dir, '--id', `bench-start-${process.pid}-${kind}-${r}`, '--no-shm'], /listening on/));
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const med = (k: string, key: keyof Sample) => { const xs = samples[k]!.map((s) => s[key]).filter((x): x is number => x !== null); return xs.length > 0 ? Math.round(median(xs)) : null; };
  const rows = (['help', 'leaf'] as const).map((what) => ({
    what: what === 'help' ? 'shoal --help (exit)' : 'shoal leaf, empty data dir (spawn -> listening)',
    bundledMs: med(`${what} bundled`, 'wallMs'), unbundledMs: med(`${what} unbundled`, 'wallMs'),
    bundledCpuMs: med(`${what} bundled`, 'cpuMs'), unbundledCpuMs: med(`${what} unbundled`, 'cpuMs'),
  }));
  if (flags.has('json')) { console.log(JSON.stringify({ machine: machineInfo(), rounds, rows, samples }, null, 2)); return; }
  console.log(`start time, median of ${rounds} (ms; CPU of the process at its listening line where known):`);
  console.log(formatTable(['', 'bundled', 'unbundled', 'ratio', 'CPU bundled', 'CPU unbundled'], rows.map((r) => [
    r.what, String(r.bundledMs), String(r.unbundledMs), r.bundledMs !== null && r.unbundledMs !== null ? `${(r.unbundledMs / r.bundledMs).toFixed(2)}x` : '-',
    r.bundledCpuMs === null ? '-' : String(r.bundledCpuMs), r.unbundledCpuMs === null ? '-' : String(r.unbundledCpuMs),
  ])));
}

await main();
