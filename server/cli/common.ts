/**
 * What every `shoal` subcommand shares: the server URL option (one name, `--url`, everywhere;
 * `--aggregator` kept as a hidden alias where it was the name; a comma-separated list names
 * several servers to fail over between, client.ts), URL parsing that accepts what a
 * user types (`127.0.0.1:7000`, `localhost:7000`, `:7000`), and the exit codes and error shape
 * (docs/cli.md): a failure is one line on stderr, `shoal <command>: <message>`, and its code says
 * what kind of failure it was.
 */
import { Option, type Command } from 'commander';
import { LIMITS } from '../../query/limits.js';

export const DEFAULT_URL = 'http://127.0.0.1:7000';

/** Exit codes, the same for every command (docs/cli.md). */
export const EXIT = {
  ok: 0,
  /** The command could not do its work: bad arguments, the server is unreachable, a local error. */
  failed: 1,
  /** The server refused the request or answered only partly: a query error, coverage below
   * --min-coverage or --strict, rows a load rejected. */
  refused: 2,
  /** A health check found something wrong (status), or another process holds what is needed
   * (a data directory, a port). */
  unhealthy: 3,
  interrupted: 130,
} as const;

/** An error a command reports as one line and an exit code (caught in cli.ts). */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT.failed) { super(message); }
}

/**
 * A server URL from what a user typed: a scheme is optional (`127.0.0.1:7000` means
 * `http://127.0.0.1:7000`, `:7000` means loopback), a trailing slash is dropped. Anything that is
 * still not an http(s) URL is a CliError naming the flag.
 */
export function serverUrl(raw: string, flag = '--url'): string {
  const s = raw.trim();
  let text = s;
  if (/^:\d+$/.test(s)) text = `http://127.0.0.1${s}`;
  else if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) text = `http://${s}`;
  let u: URL;
  try { u = new URL(text); } catch { throw new CliError(`${flag} "${raw}" is not a URL; expected http://HOST:PORT, e.g. ${DEFAULT_URL}`); }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new CliError(`${flag} "${raw}" must be http:// or https://`);
  if (u.search !== '' || u.hash !== '') throw new CliError(`${flag} "${raw}" must not have a query string or fragment`);
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

/** Adds `--url` (default SHOAL_URL, else DEFAULT_URL) and, for commands that called it that
 * before, the hidden alias `--aggregator`. `several`: the command fails over between the
 * servers of a list (resolveUrls); otherwise it talks to the first (resolveUrl). */
export function urlOption(cmd: Command, what: string, opts: { aggregatorAlias?: boolean; several?: boolean } = {}): Command {
  if (opts.several === true) cmd.option('--url <url,...>', `${what} URL; several, comma-separated, to fail over between (or SHOAL_URL; default ${DEFAULT_URL})`);
  else cmd.option('--url <url>', `${what} URL (or SHOAL_URL; default ${DEFAULT_URL})`);
  if (opts.aggregatorAlias) cmd.addOption(new Option('--aggregator <url>', 'the same as --url (its older name)').hideHelp());
  return cmd;
}

/**
 * A list of servers (`a,b,c`): each entry parsed with serverUrl, duplicates (after parsing)
 * dropped, order kept, at most LIMITS.clientUrlsMax. A bad or empty entry is a CliError naming
 * it (and its place, when there are several).
 */
export function serverUrls(raw: string, flag = '--url'): string[] {
  const entries = raw.split(',');
  if (entries.length > LIMITS.clientUrlsMax) {
    throw new CliError(`${flag} names ${entries.length} servers; at most ${LIMITS.clientUrlsMax} are allowed`);
  }
  const urls: string[] = [];
  entries.forEach((entry, i) => {
    const where = entries.length > 1 ? `${flag} entry ${i + 1}` : flag;
    if (entry.trim() === '') throw new CliError(`${where} is empty (in "${raw}"); give URLs separated by commas, e.g. ${DEFAULT_URL},http://127.0.0.1:7100`);
    const url = serverUrl(entry, where);
    if (!urls.includes(url)) urls.push(url);
  });
  return urls;
}

/** The servers a command should talk to, in the order it tries them: --url, its alias,
 * SHOAL_URL, or the default (docs/cli.md). */
export function resolveUrls(o: { url?: string; aggregator?: string }): string[] {
  if (o.url !== undefined && o.aggregator !== undefined) {
    const a = serverUrls(o.url);
    const b = serverUrls(o.aggregator, '--aggregator');
    if (a.length !== b.length || a.some((u, i) => u !== b[i])) {
      throw new CliError('--url and --aggregator name different servers; give one (--aggregator is the older name of --url)');
    }
    return a;
  }
  if (o.url !== undefined) return serverUrls(o.url);
  if (o.aggregator !== undefined) return serverUrls(o.aggregator, '--aggregator');
  const env = process.env.SHOAL_URL;
  if (env !== undefined && env.trim() !== '') return serverUrls(env, 'SHOAL_URL');
  return [DEFAULT_URL];
}

/** The first of resolveUrls (every entry is still checked): for a command that talks to one
 * server only. */
export function resolveUrl(o: { url?: string; aggregator?: string }): string {
  return resolveUrls(o)[0]!;
}
