/**
 * `shoal ingest TABLE [FILE|-]`: streams NDJSON (one event per line) from a file or stdin to a
 * leaf or aggregator, as it is, in batches. The work is the loader library's (loader/ingest.ts);
 * this file parses options and prints.
 *
 * A bad line does not stop it: the line is reported (file line, the server's code and message)
 * and every other line is sent. Batch ids come from the content, so running the same command
 * again after a failure stores only what the first run did not (docs/loader.md, "shoal ingest").
 *
 * Exit status: 0 every line stored; 2 the input was sent to its end but some lines were
 * rejected; 1 it could not finish (the server unreachable or refusing, a read error).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { Command } from 'commander';
import { defaultIngestOptions, ingest, type IngestOptions, type IngestSummary } from '../../loader/ingest.js';
import { parseIntOption } from '../../loader/options.js';
import type { RejectedRow } from '../../loader/report.js';
import { CliError, EXIT, resolveUrls, urlOption } from './common.js';

interface IngestCliOptions {
  url?: string; batchRows: string; retries: string; showRejected: string; inputId?: string; token?: string;
}

/** Read pieces of a file: the size load's NDJSON reader uses. */
const READ_BYTES = 1024 * 1024;

const int = (n: number) => n.toLocaleString('en-US');

function describeRejection(r: RejectedRow): string {
  return `line ${r.position}: ${r.code}: ${r.message}`;
}

/** `accepted N events into T[ (K already stored ...)][; M lines rejected (first: line L: CODE: message)]` */
function ingestSummaryLine(s: IngestSummary): string {
  let line = `accepted ${int(s.rowsAccepted)} events into ${s.table}`;
  if (s.rowsDuplicate > 0) line += ` (${int(s.rowsDuplicate)} of them already stored by an earlier run of the same input: not stored again)`;
  if (s.rowsRejected > 0) {
    line += `; ${int(s.rowsRejected)} line${s.rowsRejected === 1 ? '' : 's'} rejected`;
    if (s.firstRejected !== null) line += ` (first: ${describeRejection(s.firstRejected)})`;
  }
  return line;
}

export function registerIngest(program: Command): void {
  const d = defaultIngestOptions('-', 'TABLE');
  const cmd = program
    .command('ingest')
    .description('send NDJSON events from a file or stdin into a table; bad lines are reported and skipped')
    .argument('<table>', 'table name (created by its first write)')
    .argument('[file]', 'NDJSON file, or - for stdin', '-');
  urlOption(cmd, 'leaf or aggregator', { several: true });
  cmd
    .option('--batch-rows <n>', 'events per batch (keep it the same when running a command again)', String(d.batchRows))
    .option('--retries <n>', 'attempts per batch while the server refuses (503) or drops the connection', String(d.retries))
    .option('--show-rejected <n>', 'rejected lines printed one by one (the rest are counted)', '10')
    .option('--input-id <text>', 'names the input in batch ids: the same id and content is stored once (default: a file\'s content; stdin: a new id per run)')
    .option('--token <token>', 'bearer token (or SHOAL_TOKEN)')
    .addHelpText('after', `
Examples:
  $ shoal ingest events events.ndjson
  $ shoal ingest events events.ndjson --url 127.0.0.1:7001
  $ shoal ingest events events.ndjson --url 10.0.0.1:7000,10.0.0.2:7000
  $ echo '{"service":"api","latency_ms":12.5}' | shoal ingest events -
  $ zcat day1.ndjson.gz | shoal ingest events - --input-id day1

A line the server rejects (not JSON, a value of the wrong type, ...) is printed with its line
number and skipped; the other lines are stored. Running the same command on the same file again
stores nothing twice: batches already stored are answered "duplicate" (batch ids come from the
table, the content and the batch number). Stdin gets a new id per run, so piping the same
events twice stores them twice (a heartbeat stamped on arrival is a new event); pass
--input-id to make a rerun of stdin skip what is stored. With several --url servers a batch
whose server does not answer goes to the next, under the same id (docs/cli.md). Exit status:
0 all lines stored, 2 some lines rejected, 1 could not finish (see docs/loader.md).`)
    .action(async (table: string, file: string, o: IngestCliOptions) => {
      const [url, ...failoverUrls] = resolveUrls(o);
      const stdin = file === '-';
      const shown = parseIntOption(o.showRejected, '--show-rejected');
      const opts: IngestOptions = {
        ...defaultIngestOptions(stdin ? 'stdin' : file, table),
        url: url!,
        failoverUrls,
        batchRows: parseIntOption(o.batchRows, '--batch-rows'),
        retries: parseIntOption(o.retries, '--retries'),
        // A file's content is its identity (a rerun, or a rerun of a copy, is the same input);
        // stdin is one run's stream unless the caller names it.
        inputId: o.inputId ?? (stdin ? randomUUID() : ''),
        token: o.token ?? process.env.SHOAL_TOKEN ?? null,
      };
      if (!stdin) {
        let st: fs.Stats;
        try { st = fs.statSync(file); } catch (e) { throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
        if (!st.isFile()) throw new CliError(`${file} is not a file`);
      }
      if (stdin && process.stdin.isTTY === true) process.stderr.write('shoal ingest: reading NDJSON events from the terminal (Ctrl-D ends)\n');
      const input = stdin ? process.stdin : fs.createReadStream(file, { highWaterMark: READ_BYTES });
      let printed = 0;
      const onReject = (r: RejectedRow) => {
        if (++printed <= shown) process.stderr.write(`shoal ingest: ${opts.name}:${r.position}: ${r.code}: ${r.message}\n`);
      };
      let s: IngestSummary;
      try {
        s = await ingest(opts, input, { onReject });
      } finally {
        if (!stdin) (input as fs.ReadStream).destroy();
      }
      if (s.rowsRejected > shown && shown > 0) process.stderr.write(`shoal ingest: ... and ${int(s.rowsRejected - shown)} more rejected lines\n`);
      if (s.error !== null) {
        const rerun = stdin && o.inputId === undefined
          ? 'a rerun sends all of stdin again (stdin has new batch ids per run; give --input-id NAME to every run to make reruns skip what is stored)'
          : 'run the same command again to send the rest (batches already stored are skipped)';
        throw new CliError(`${s.error.code}: ${s.error.message}; before that: ${ingestSummaryLine(s)}; ${rerun}`, EXIT.failed);
      }
      process.stdout.write(`${ingestSummaryLine(s)}\n`);
      if (s.rowsRejected > 0) process.exitCode = EXIT.refused;
    });
}
