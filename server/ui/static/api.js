// The page's HTTP client for the server that served it (same origin: a leaf or an aggregator).
// Every failure becomes an ApiError carrying the server's SHOAL_ERR_ code and message (and the
// rest of its error object: position, coverage).
//
// Auth: a 401 asks the user for the query token once (through the prompt the page installs),
// keeps it in sessionStorage (this tab only, gone when it closes; never in the URL) and sends it
// as `Authorization: Bearer`. Requests that meet a 401 while the prompt is open wait for the same
// answer, so the user is asked once, not once per request.
//
// Not here: what the answers mean (app.js).

const TOKEN_KEY = 'shoal.token';

export class ApiError extends Error {
  constructor(code, message, status, detail = {}) {
    super(message);
    this.code = code;
    this.status = status;
    this.detail = detail;
  }
}

function loadToken() {
  try { return sessionStorage.getItem(TOKEN_KEY); } catch { return null; }
}

let token = loadToken();
/** The prompt in progress, shared by every request that met a 401 meanwhile. */
let asking = null;
/** (message) => Promise<string | null>: the page's token dialog; null = the user gave up. */
let prompt = async () => null;

export function setTokenPrompt(fn) { prompt = fn; }

async function askToken(message, sent) {
  // Another request already got a new token while this one was in flight: try that first.
  if (token !== null && token !== sent) return token;
  asking ??= prompt(message).then((t) => {
    asking = null;
    if (t !== null && t !== '') {
      token = t;
      try { sessionStorage.setItem(TOKEN_KEY, t); } catch { /* memory only */ }
      return t;
    }
    return null;
  });
  return asking;
}

/** Tries per request: the first, and one more after each token the user gives (a mistyped
 * token asks again); bounded so a server that keeps refusing ends in an error. */
const AUTH_TRIES_MAX = 4;

async function call(method, path, body, signal) {
  for (let attempt = 1; ; attempt++) {
    const sent = token;
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (sent !== null) headers.authorization = `Bearer ${sent}`;
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(null, `cannot reach the server at ${location.origin} (${e.message}): is it running?`, 0);
    }
    const text = await res.text();
    let json = null;
    try { json = text === '' ? null : JSON.parse(text); } catch { /* not JSON: reported below */ }
    if (res.ok && json !== null) return json;
    const err = json?.error ?? {};
    if (res.status === 401 && attempt < AUTH_TRIES_MAX) {
      const t = await askToken(sent === null ? 'This server needs a query token.' : 'That token was refused; try again.', sent);
      if (t !== null) continue;
    }
    const { code, message, ...detail } = err;
    throw new ApiError(code ?? null, message ?? `HTTP ${res.status}: ${text.slice(0, 300)}`, res.status, detail);
  }
}

export const getTables = (signal) => call('GET', '/v1/tables', undefined, signal);
export const getTable = (name, signal) => call('GET', `/v1/tables/${encodeURIComponent(name)}`, undefined, signal);
export const postQuery = (sql, signal) => call('POST', '/v1/query', { sql }, signal);
