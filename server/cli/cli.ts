#!/usr/bin/env node
/**
 * The `shoal` command line (commander): one file per subcommand (cmd-*.ts), wired here.
 *
 * Subcommands are imported on demand: `shoal leaf` loads only the leaf's modules, not the
 * loader's Parquet and Arrow readers or the aggregator. A leaf's start time is part of every
 * restart (a rolling restart pays it once per leaf), and loading every subcommand cost about
 * half of it. `shoal --help` and unknown commands still load them all.
 */
import { Command } from 'commander';
import { CliError, EXIT } from './common.js';

type Register = (program: Command) => void;

const COMMANDS: Record<string, () => Promise<Register>> = {
  leaf: async () => (await import('./cmd-leaf.js')).registerLeaf,
  query: async () => (await import('./cmd-query.js')).registerQuery,
  restart: async () => (await import('./cmd-restart.js')).registerRestart,
  ingest: async () => (await import('./cmd-ingest.js')).registerIngest,
  load: async () => (await import('./cmd-load.js')).registerLoad,
  tail: async () => (await import('./cmd-tail.js')).registerTail,
  aggregator: async () => (await import('./cmd-aggregator.js')).registerAggregator,
  up: async () => (await import('./cmd-up.js')).registerUp,
  status: async () => (await import('./cmd-status.js')).registerStatus,
  tables: async () => (await import('./cmd-tables.js')).registerTables,
  describe: async () => (await import('./cmd-tables.js')).registerDescribe,
  shm: async () => (await import('./cmd-shm.js')).registerShm,
};

async function main(): Promise<void> {
  const program = new Command();
  program
    .name('shoal')
    .description('shoal: an in-memory analytics database in the style of Facebook Scuba')
    .version('0.1.0')
    .showHelpAfterError();
  const wanted = process.argv[2];
  const names = wanted !== undefined && wanted in COMMANDS ? [wanted] : Object.keys(COMMANDS);
  for (const name of names) (await COMMANDS[name]!())(program);
  await program.parseAsync(process.argv);
}

main().catch((e: unknown) => {
  // One line, prefixed with the command that failed (docs/cli.md); the exit code says what kind.
  const command = process.argv[2] !== undefined && process.argv[2] in COMMANDS ? ` ${process.argv[2]}` : '';
  process.stderr.write(`shoal${command}: ${(e as Error).message}\n`);
  process.exit(e instanceof CliError ? e.exitCode : EXIT.failed);
});
