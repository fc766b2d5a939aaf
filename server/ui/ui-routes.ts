/**
 * The web UI's routes: `GET /` answers the page (server/ui/static/index.html) and `GET /ui/<file>`
 * its scripts, styles and the chart library (uPlot, from node_modules). Leaf and aggregator both
 * call registerUi; the page then talks to the same server's JSON API (`/v1/tables`,
 * `/v1/query`), so it works wherever it is served, offline, with no CDN.
 *
 * Assets are a fixed list read into memory once, when the app is built (about 120 KB in all):
 * no file system path ever comes from a request, so nothing outside the list can be served, and
 * an answer costs no disk read. Each has a strong ETag; `cache-control: no-cache` makes a browser
 * revalidate (a 304) so a restarted server with new code is picked up at once.
 *
 * The page and assets are served without the query token: they hold no data. Every data call
 * the page makes carries the token the user typed (docs/ui.md, "Auth").
 *
 * Not here: anything the page does (server/ui/static/*.js), the API routes (leaf.ts, aggregator.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ShoalError } from '../../query/errors.js';
import { sendError } from '../http/http-common.js';

export interface UiOptions {
  /** Who serves the page: shown in its header ("aggregator", "leaf leaf-1"). */
  readonly role: 'aggregator' | 'leaf';
  readonly id: string;
}

interface Asset { readonly body: Buffer; readonly type: string; readonly etag: string }

const TYPES: Readonly<Record<string, string>> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

/** The page's own files, in server/ui/static/ (served at /ui/<name>; index.html at /). */
export const UI_FILES: readonly string[] = ['index.html', 'style.css', 'app.js', 'api.js', 'sql.js', 'url-state.js', 'render.js', 'chart.js', 'controls.js'];

/** Files of npm packages, served at /ui/vendor/<name>. */
const VENDOR_FILES: Readonly<Record<string, string>> = {
  'uPlot.esm.js': 'uplot/dist/uPlot.esm.js',
  'uPlot.min.css': 'uplot/dist/uPlot.min.css',
};

/**
 * The page may load scripts, styles and make requests only to this server. `style-src
 * 'unsafe-inline'` because uPlot sizes its elements through style attributes; scripts are never
 * inline.
 */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * The static folder. Compiled, this module runs from dist/server/ui/ while the assets stay in
 * the source tree (tsc copies no HTML or CSS), so both places are tried: the source tree's
 * folder beside this file first (vitest runs the .ts), then the one three levels up from dist.
 */
function staticDir(): string | null {
  for (const rel of ['./static/', '../../../server/ui/static/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}index.html`)) return dir;
  }
  return null;
}

function asset(body: Buffer, name: string): Asset {
  const ext = name.slice(name.lastIndexOf('.') + 1);
  const type = TYPES[ext];
  if (type === undefined) throw new Error(`assertion failed: no content type for UI asset ${name}`);
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

const escapeAttr = (s: string) => s.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Reads every asset. A missing one (a broken checkout, or node_modules without uplot) is
 * reported by the routes, naming the file, instead of keeping the server from starting: the API
 * matters more than its page.
 */
function loadAssets(opts: UiOptions): { assets: Map<string, Asset>; missing: string[] } {
  const assets = new Map<string, Asset>();
  const missing: string[] = [];
  const dir = staticDir();
  for (const name of UI_FILES) {
    if (dir === null || !existsSync(dir + name)) { missing.push(`server/ui/static/${name}`); continue; }
    let body = readFileSync(dir + name);
    if (name === 'index.html') {
      // Who serves the page, for its header; the page reads these two meta tags.
      body = Buffer.from(body.toString('utf8').replace('{{role}}', escapeAttr(opts.role)).replace('{{id}}', escapeAttr(opts.id)));
    }
    assets.set(name === 'index.html' ? '/' : `/ui/${name}`, asset(body, name));
  }
  const require = createRequire(import.meta.url);
  for (const [name, spec] of Object.entries(VENDOR_FILES)) {
    try {
      assets.set(`/ui/vendor/${name}`, asset(readFileSync(require.resolve(spec)), name));
    } catch {
      missing.push(`node_modules/${spec} (run npm install)`);
    }
  }
  return { assets, missing };
}

export function registerUi(app: FastifyInstance, opts: UiOptions): void {
  // Read at the first request for a page, not at start: a leaf's start is part of every
  // restart, and reading and hashing the assets was ~20 ms of it (measured with --cpu-prof).
  let loaded: ReturnType<typeof loadAssets> | null = null;
  const load = () => (loaded ??= loadAssets(opts));
  const send = (req: FastifyRequest, reply: FastifyReply, a: Asset) => {
    reply.header('cache-control', 'no-cache').header('etag', a.etag).header('x-content-type-options', 'nosniff');
    if (a.type.startsWith('text/html')) reply.header('content-security-policy', CSP).header('referrer-policy', 'no-referrer');
    if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.type(a.type).send(a.body);
  };
  const paths = ['/', ...UI_FILES.filter((n) => n !== 'index.html').map((n) => `/ui/${n}`), ...Object.keys(VENDOR_FILES).map((n) => `/ui/vendor/${n}`)];
  for (const path of paths) {
    app.get(path, async (req, reply) => {
      const { assets, missing } = load();
      const a = assets.get(path);
      if (a === undefined) return sendError(reply, new ShoalError('SHOAL_ERR_NOT_FOUND', `the web UI cannot be served: missing ${missing.join(', ')}`));
      return send(req, reply, a);
    });
  }
}
