/**
 * `shoal tail FILE --table T`: follows a growing NDJSON file (like `tail -F`, through rotation
 * and truncation) and sends its new lines in batches, resuming from its state file after a
 * restart without sending a line twice. The work is the loader library's (loader/tail.ts).
 *
 * Runs until SIGINT/SIGTERM: then it sends what it has read, saves its state and exits 0.
 */
import type { Command } from 'commander';
import { CliError, resolveUrls, urlOption } from './common.js';
import { parseIntOption, type MissingTimePolicy, type TimeFormat } from '../../loader/options.js';
import { defaultTailOptions, tail, type TailEvent, type TailOptions } from '../../loader/tail.js';

interface TailCliOptions {
  table: string; url?: string; aggregator?: string; stateFile?: string; from: string; batchRows: string; flushMs: string; pollMs: string;
  timeColumn: string; timeFormat: string; missingTime: string; skipColumns?: string; retries: string; token?: string;
  quiet?: boolean; verbose?: boolean;
}

/** Rejected lines printed one by one; past this only a count every REJECTED_EVERY more. */
const REJECTED_PRINTED_MAX = 100;
const REJECTED_EVERY = 1_000;

export function registerTail(program: Command): void {
  const d = defaultTailOptions('FILE', 'TABLE');
  const cmd = program
    .command('tail')
    .description('follow a growing NDJSON file (like tail -F) and send new lines to a table; resumes after a restart')
    .argument('<file>', 'NDJSON file to follow (it may not exist yet)')
    .requiredOption('--table <name>', 'table to send into');
  urlOption(cmd, 'aggregator or leaf', { aggregatorAlias: true, several: true });
  cmd
    .option('--state-file <file>', 'where the offset is kept (default: ~/.local/state/shoal/tail-<table>-<file>-<hash>.json)')
    .option('--from <where>', 'without a state file: start (send what the file holds) or end (only new lines)', d.from)
    .option('--batch-rows <n>', 'send when this many lines are ready...', String(d.batchRows))
    .option('--flush-ms <ms>', '...or this long after the first unsent line', String(d.flushMs))
    .option('--poll-ms <ms>', 'how often to look for new lines at the end of the file', String(d.pollMs))
    .option('--time-column <name>', 'field holding each line\'s time; sent as `time`', d.timeColumn)
    .option('--time-format <format>', 'auto, unix-s, unix-ms, unix-us or iso', d.timeFormat)
    .option('--missing-time <policy>', 'a line without a usable time: reject (report it) or now (stamp it)', d.missingTime)
    .option('--skip-columns <a,b,...>', 'fields not to send')
    .option('--retries <n>', 'attempts per batch while the cluster refuses or is unreachable', String(d.retries))
    .option('--token <token>', 'bearer token (or SHOAL_TOKEN)')
    .option('--quiet', 'print only errors')
    .option('--verbose', 'print every batch sent')
    .addHelpText('after', `
Examples:
  $ shoal tail /var/log/app/requests.ndjson --table requests
  $ shoal tail app.log --table app --state-file ./app.tail.json --from end --missing-time now
  $ shoal tail app.log --table app --url 127.0.0.1:7000
  $ shoal tail app.log --table app --url 10.0.0.1:7000,10.0.0.2:7000   (fails over between them)

The state file records the byte offset (and the file's inode) up to which lines are acknowledged;
it is rewritten atomically after every batch. Nothing listening at the URL when the tail starts
fails at once; a cluster that goes away later is retried for a long time (--retries). Stop with
Ctrl-C or SIGTERM. See docs/loader.md.`)
    .action(async (file: string, o: TailCliOptions) => {
      if (o.from !== 'start' && o.from !== 'end') throw new CliError(`--from must be start or end, got "${o.from}"`);
      const base = defaultTailOptions(file, o.table);
      const [url, ...failoverUrls] = resolveUrls(o);
      const opts: TailOptions = {
        ...base,
        url: url!,
        failoverUrls,
        stateFile: o.stateFile ?? base.stateFile,
        from: o.from,
        batchRows: parseIntOption(o.batchRows, '--batch-rows'),
        flushMs: parseIntOption(o.flushMs, '--flush-ms'),
        pollMs: parseIntOption(o.pollMs, '--poll-ms'),
        timeColumn: o.timeColumn,
        timeFormat: o.timeFormat as TimeFormat,
        missingTime: o.missingTime as MissingTimePolicy,
        skipColumns: (o.skipColumns ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0),
        retries: parseIntOption(o.retries, '--retries'),
        token: o.token ?? process.env.SHOAL_TOKEN ?? null,
      };
      const abort = new AbortController();
      const stop = () => abort.abort();
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      const say = (line: string) => { if (o.quiet !== true) process.stdout.write(`shoal tail: ${line}\n`); };
      let rejected = 0;
      const onEvent = (e: TailEvent) => {
        switch (e.kind) {
          case 'following': say(`following ${e.file} from line ${e.line + 1} (byte ${e.offset})${e.resumed ? ', resumed' : ''}; state in ${opts.stateFile}`); break;
          case 'waiting': say(`waiting for ${e.file} to appear`); break;
          case 'rotated': say(`${e.file}: ${e.reason}; reading it from the start`); break;
          case 'truncated': say(`${e.file} was truncated; reading it from the start`); break;
          case 'resent': say(`resent the batch that was in flight when the tail last stopped (up to line ${e.line})`); break;
          case 'lost': process.stderr.write(`shoal tail: ${e.file}: ${e.message}\n`); break;
          case 'sent': if (o.verbose === true) say(`sent ${e.rows} rows (up to line ${e.line})`); break;
          case 'rejected':
            rejected++;
            if (rejected <= REJECTED_PRINTED_MAX) process.stderr.write(`shoal tail: ${e.file}:${e.line}: ${e.code}: ${e.message}\n`);
            else if (rejected % REJECTED_EVERY === 0) process.stderr.write(`shoal tail: ${rejected} lines rejected so far\n`);
            break;
        }
      };
      try {
        const s = await tail(opts, { signal: abort.signal, onEvent });
        say(`stopped: ${s.rowsAccepted} rows accepted, ${s.rowsRejected} rejected, ${s.batches} batches; acknowledged up to line ${s.line} (byte ${s.offset})`);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}
