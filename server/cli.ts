#!/usr/bin/env node
/**
 * The `shoal` command line (commander): one file per subcommand (cmd-*.ts), wired here.
 */
import { Command } from 'commander';
import { registerAggregator } from './cmd-aggregator.js';
import { registerIngest } from './cmd-ingest.js';
import { registerLeaf } from './cmd-leaf.js';
import { registerLoad } from './cmd-load.js';
import { registerQuery } from './cmd-query.js';
import { registerRestart } from './cmd-restart.js';
import { registerStatus } from './cmd-status.js';
import { registerTail } from './cmd-tail.js';
import { registerUp } from './cmd-up.js';

const program = new Command();
program
  .name('shoal')
  .description('shoal: an in-memory analytics database in the style of Facebook Scuba')
  .version('0.1.0')
  .showHelpAfterError();

registerLeaf(program);
registerQuery(program);
registerRestart(program);
registerIngest(program);
registerLoad(program);
registerTail(program);
registerAggregator(program);
registerUp(program);
registerStatus(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`shoal: ${(e as Error).message}\n`);
  process.exit(1);
});
