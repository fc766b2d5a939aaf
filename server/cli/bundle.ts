/**
 * Build step (`npm run build`, after tsc): bundles the CLI (dist/server/cli/cli.js and every
 * module it loads) into dist/server/cli/cli.js plus shared chunks beside it, with esbuild.
 *
 * Why: a leaf's start is CPU-bound, and in a rolling restart under load it competes for the
 * cores with everything else; resolving, reading and compiling ~260 separate modules (fastify's
 * ~90 among them) was most of it. One ESM bundle with code splitting keeps the CLI loading only
 * the subcommand it runs, and leaves nothing to resolve (bench/RESULTS.md "Start time").
 *
 * The chunks live in the same folder as the entry, so every `import.meta.url`-relative path
 * keeps its depth below dist/ (workers, the native addon, the UI's static files, `shoal up`
 * starting this same CLI). The worker threads' files (dist/server/leaf/scan-worker.js,
 * ingest-worker.js; piscina starts them by path) are bundled one file each, in place. piscina
 * itself stays external (it finds its own worker file with __dirname).
 *
 * tsc's own entry is kept as dist/server/cli/cli-unbundled.js (same behaviour, for comparison
 * and for debugging with one file per module).
 *
 *   node dist/server/cli/bundle.js        (run by `npm run build`)
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const CLI_DIR = path.dirname(fileURLToPath(import.meta.url));
/** The worker threads' entry files (piscina starts them by path): each bundled into one file in place. */
const WORKERS = ['scan-worker.js', 'ingest-worker.js'].map((f) => path.join(CLI_DIR, '..', 'leaf', f));
const ENTRY = path.join(CLI_DIR, 'cli.js');
/** The names esbuild gives chunks and split entry points: name-HASH.js (8 base32 characters). */
const CHUNK_NAME = /-[A-Z0-9]{8}\.js(\.map)?$/;
/** Packages loaded from node_modules at run time, not bundled. */
const EXTERNAL = ['piscina', '@duckdb/node-api'];

const BANNER = "import { createRequire as __shoalCreateRequire } from 'node:module'; const require = __shoalCreateRequire(import.meta.url);";

async function main(): Promise<void> {
  // Run twice without tsc in between, the entry is already the bundle: nothing to do.
  if ([ENTRY, ...WORKERS].some((f) => fs.readFileSync(f, 'utf8').includes(BANNER))) {
    process.stdout.write(`${ENTRY} is already bundled (run tsc first to bundle anew)\n`);
    return;
  }
  const out = fs.mkdtempSync(path.join(path.dirname(CLI_DIR), '.bundle-'));
  try {
    const result = await build({
      entryPoints: [ENTRY],
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      outdir: out,
      external: EXTERNAL,
      // CommonJS packages inside an ESM bundle call require(): give them one.
      banner: { js: BANNER },
      sourcemap: true,
      logLevel: 'warning',
      metafile: true,
    });
    // tsc's entry stays as cli-unbundled.js (the same CLI, module by module: bench/start.ts
    // compares the two); chunks of an earlier build go; then the bundle takes the entry's place.
    fs.copyFileSync(ENTRY, path.join(CLI_DIR, 'cli-unbundled.js'));
    for (const f of fs.readdirSync(CLI_DIR)) if (CHUNK_NAME.test(f)) fs.rmSync(path.join(CLI_DIR, f));
    for (const f of fs.readdirSync(out)) fs.renameSync(path.join(out, f), path.join(CLI_DIR, f));
    fs.chmodSync(ENTRY, 0o755);
    // Each worker thread loads its own copy of its modules: one file each, written over tsc's.
    for (const worker of WORKERS) {
      const tmp = path.join(out, path.basename(worker));
      await build({ entryPoints: [worker], bundle: true, format: 'esm', platform: 'node', target: 'node20', outfile: tmp, external: EXTERNAL, banner: { js: BANNER }, sourcemap: true, logLevel: 'warning' });
      fs.renameSync(tmp, worker);
      fs.renameSync(`${tmp}.map`, `${worker}.map`);
    }
    const inputs = Object.keys(result.metafile.inputs).length;
    const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
    process.stdout.write(`bundled the CLI: ${inputs} modules -> ${Object.keys(result.metafile.outputs).length} files (${(bytes / 1e6).toFixed(1)} MB) in ${path.relative(process.cwd(), CLI_DIR) || '.'}\n`);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

await main();
