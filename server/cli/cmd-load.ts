/**
 * `shoal load FILE... --table T`: bulk-loads NDJSON (also .gz), CSV, Parquet and Arrow IPC files
 * through an aggregator (or a single leaf), with a progress bar on a terminal and a final report.
 * The work is the loader library's (loader/load.ts); this file parses options and prints.
 *
 * Exit status: 0 when every row was accepted, 2 when the load finished but rejected some rows,
 * 1 when it stopped early (the report says why and how far it got), 130 after a second Ctrl-C.
 */
import type { Command } from 'commander';
import { CliError, EXIT, resolveUrls, urlOption } from './common.js';
import { load } from '../../loader/load.js';
import { defaultLoadOptions, parseIntOption, parseSchemaOption, parseSizeOption, type InputFormat, type LoadOptions, type MissingTimePolicy, type TimeFormat } from '../../loader/options.js';
import { progressBar, shouldShowProgress } from '../../loader/progress.js';
import { fileSize } from '../../loader/readers.js';
import { formatReport } from '../../loader/report.js';

interface LoadCliOptions {
  table: string; url?: string; aggregator?: string; format: string; timeColumn: string; timeFormat: string; missingTime: string;
  schema?: string; inferRows: string; delimiter?: string; skipColumns?: string; batchRows: string; batchBytes: string;
  inFlight: string; retries: string; maxRejected?: string; showRejected: string; token?: string; quiet?: boolean; json?: boolean;
}

const list = (text: string | undefined) => (text ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);

export function registerLoad(program: Command): void {
  const d = defaultLoadOptions([], '');
  const cmd = program
    .command('load')
    .description('bulk-load NDJSON (.gz), CSV, Parquet or Arrow files into a table, with progress and a report')
    .argument('<files...>', 'files to load, in order')
    .requiredOption('--table <name>', 'table to load into (created by its first write)');
  urlOption(cmd, 'aggregator or leaf', { aggregatorAlias: true, several: true });
  cmd
    .option('--format <format>', 'auto, ndjson, csv, parquet or arrow (auto: by name and first bytes)', d.format)
    .option('--time-column <name>', 'column holding each row\'s time; sent as `time`', d.timeColumn)
    .option('--time-format <format>', 'auto, unix-s, unix-ms, unix-us or iso (Parquet/Arrow timestamp types convert by their unit)', d.timeFormat)
    .option('--missing-time <policy>', 'a row without a usable time: reject (report it) or now (stamp it)', d.missingTime)
    .option('--schema <col:type,...>', 'CSV column types overriding inference: int, float, bool, string, time')
    .option('--infer-rows <n>', 'CSV rows sampled to infer column types', String(d.inferRows))
    .option('--delimiter <char>', 'CSV delimiter (default: tab for .tsv, else comma)')
    .option('--skip-columns <a,b,...>', 'source columns not to load')
    .option('--batch-rows <n>', 'rows per batch', String(d.batchRows))
    .option('--batch-bytes <size>', 'NDJSON characters per batch, e.g. 4MiB', '4MiB')
    .option('--in-flight <n>', 'batches sent at once', String(d.inFlight))
    .option('--retries <n>', 'attempts per batch on 503/connection errors before stopping', String(d.retries))
    .option('--max-rejected <n>', 'stop once more than n rows were rejected (default: never)')
    .option('--show-rejected <n>', 'rejected rows listed in the report with line and reason', String(d.rejectionsShown))
    .option('--token <token>', 'bearer token (or SHOAL_TOKEN)')
    .option('--quiet', 'no progress bar')
    .option('--json', 'print the report as JSON')
    .addHelpText('after', `
Examples:
  $ shoal load events.parquet --table events
  $ shoal load logs/*.ndjson.gz --table requests --url 127.0.0.1:7000
  $ shoal load big.parquet --table big --url 10.0.0.1:7000,10.0.0.2:7000   (fails over between them)
  $ shoal load sales.csv --table sales --time-column sold_at --schema store_id:string,price:float
  $ shoal load clicks.arrow --table clicks --missing-time now --quiet --json

Rows that cannot be stored (bad JSON, wrong type, no usable time) are reported with their line
(row number for Parquet/Arrow) and skipped; the rest load. Nothing listening at the URL fails
at once; a server that refuses (503) or drops connections is retried (--retries). Exit status:
0 all rows accepted, 2 some rows rejected, 1 the load stopped early. See docs/loader.md.`)
    .action(async (files: string[], o: LoadCliOptions) => {
      const [url, ...failoverUrls] = resolveUrls(o);
      const opts: LoadOptions = {
        ...defaultLoadOptions(files, o.table),
        url: url!,
        failoverUrls,
        format: o.format as InputFormat,
        timeColumn: o.timeColumn,
        timeFormat: o.timeFormat as TimeFormat,
        missingTime: o.missingTime as MissingTimePolicy,
        schema: o.schema !== undefined ? parseSchemaOption(o.schema) : new Map(),
        inferRows: parseIntOption(o.inferRows, '--infer-rows'),
        delimiter: o.delimiter === '\\t' ? '\t' : o.delimiter ?? null,
        skipColumns: list(o.skipColumns),
        batchRows: parseIntOption(o.batchRows, '--batch-rows'),
        batchBytes: parseSizeOption(o.batchBytes, '--batch-bytes'),
        inFlight: parseIntOption(o.inFlight, '--in-flight'),
        retries: parseIntOption(o.retries, '--retries'),
        maxRejected: o.maxRejected !== undefined ? parseIntOption(o.maxRejected, '--max-rejected') : null,
        rejectionsShown: parseIntOption(o.showRejected, '--show-rejected'),
        token: o.token ?? process.env.SHOAL_TOKEN ?? null,
      };
      let bytesTotal = 0;
      for (const f of files) bytesTotal += await fileSize(f);
      const bar = progressBar(shouldShowProgress(o.quiet === true), bytesTotal);
      const abort = new AbortController();
      const onSigint = () => {
        if (abort.signal.aborted) process.exit(130);
        abort.abort();
        process.stderr.write('\nshoal load: stopping after the batches in flight (Ctrl-C again to quit now)\n');
      };
      process.on('SIGINT', onSigint);
      try {
        const report = await load(opts, { onProgress: (p) => bar.update(p), signal: abort.signal });
        bar.stop();
        process.stdout.write(o.json === true ? JSON.stringify(report, null, 2) + '\n' : formatReport(report));
        // The report (stdout) says how far it got; a load that stopped also says why on stderr.
        if (report.error !== null) throw new CliError(`stopped: ${report.error.code}: ${report.error.message}`, EXIT.failed);
        process.exitCode = report.interrupted ? EXIT.failed : report.rowsRejected > 0 ? EXIT.refused : EXIT.ok;
      } finally {
        bar.stop();
        process.off('SIGINT', onSigint);
      }
    });
}
