/**
 * What every `shoal` subcommand shares: the server URL option (one name, `--url`, everywhere;
 * `--aggregator` kept as a hidden alias where it was the name), URL parsing that accepts what a
 * user types (`127.0.0.1:7000`, `localhost:7000`, `:7000`), and the exit codes and error shape
 * (docs/cli.md): a failure is one line on stderr, `shoal <command>: <message>`, and its code says
 * what kind of failure it was.
 */
import { Option, type Command } from 'commander';

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
 * before, the hidden alias `--aggregator`. */
export function urlOption(cmd: Command, what: string, opts: { aggregatorAlias?: boolean } = {}): Command {
  cmd.option('--url <url>', `${what} URL (or SHOAL_URL; default ${DEFAULT_URL})`);
  if (opts.aggregatorAlias) cmd.addOption(new Option('--aggregator <url>', 'the same as --url (its older name)').hideHelp());
  return cmd;
}

/** The URL a command should talk to: --url, its alias, SHOAL_URL, or the default. */
export function resolveUrl(o: { url?: string; aggregator?: string }): string {
  if (o.url !== undefined && o.aggregator !== undefined && serverUrl(o.url) !== serverUrl(o.aggregator, '--aggregator')) {
    throw new CliError('--url and --aggregator name different servers; give one (--aggregator is the older name of --url)');
  }
  if (o.url !== undefined) return serverUrl(o.url);
  if (o.aggregator !== undefined) return serverUrl(o.aggregator, '--aggregator');
  const env = process.env.SHOAL_URL;
  if (env !== undefined && env.trim() !== '') return serverUrl(env, 'SHOAL_URL');
  return DEFAULT_URL;
}
