/**
 * Simulated hosts for multi-host tests: each host is a Linux network namespace with its own
 * address, its own port space and its own loopback, wired to one bridge in the root namespace,
 * which also has an address so the test process can reach every host:
 *
 *   root namespace (the test process): bridge shoalbr<run>, 10.213.<y>.254/24
 *     +- veth shv<run>-1 ==== eth0 in netns shoalh-<run>-1, 10.213.<y>.1/24
 *     +- veth shv<run>-2 ==== eth0 in netns shoalh-<run>-2, 10.213.<y>.2/24
 *     ...
 *
 * `<run>` is the test process's pid and a letter (one per createHosts call in that process), so
 * leftovers of a crashed run are found by name and removed when their pid is gone.
 *
 * **A cut** sets the host's veth end on the bridge down: nothing crosses in either direction and
 * nothing answers, as in a real partition. Every address on the bridge has a permanent neighbour
 * (ARP) entry, so the kernel does not turn the silence into "no route to host" after its ARP
 * probes fail: a new connection to a cut host times out (its SYNs are dropped), an open one
 * stalls, and TCP retransmits what was in flight once the host is healed. (This machine has no
 * iptables or nft, and its kernel no netem; link-down is what works everywhere `ip` does. Delay
 * and black holes per connection come from tcp-proxy.ts.)
 *
 * **A process on a host** is `ip netns exec NAME command ...`: `ip` enters the namespace and
 * execs the command, so the child's pid is the command's pid and a signal to the ChildProcess
 * (kill -9 included) reaches it. destroy() kills whatever is still running in a namespace before
 * removing it.
 *
 * Not here: proxies (tcp-proxy.ts), cluster files and HTTP helpers (cluster.ts).
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { CLI_PATH, REPO_ROOT } from './processes.js';

/** Hosts per createHosts call: names stay short (`shv<pid><letter>-16` is 14 characters, under
 * the kernel's 15-character interface names) and every host gets its own address byte. */
export const HOSTS_MAX = 16;
/** createHosts calls per test process: one letter each in the run tag. */
const RUNS_PER_PROCESS_MAX = 26;
const NETNS_PREFIX = 'shoalh-';
const BRIDGE_PREFIX = 'shoalbr';
const VETH_PREFIX = 'shv';
/** 10.213.<y>.0/24, y picked per run among the subnets not routed yet. */
const SUBNET_PREFIX = '10.213';
const BRIDGE_HOST_BYTE = 254;
/** One `ip` invocation: they take milliseconds; past this something is wrong with the machine. */
const IP_TIMEOUT_MS = 10_000;
/** How long destroy() waits for killed processes to leave a namespace. */
const KILL_WAIT_MS = 5_000;
const OUTPUT_TAIL_CHARS = 16 * 1024;
const START_TIMEOUT_MS_DEFAULT = 20_000;
const STOP_TIMEOUT_MS_DEFAULT = 10_000;
/** `listening on http://ADDRESS:PORT`, any IPv4 address (processes.ts only knows loopback). */
const LISTENING = /listening on (http:\/\/\d+\.\d+\.\d+\.\d+:\d+)/;

const RUN_NAME = /^(\d+)([a-z])$/;
const NETNS_NAME = new RegExp(`^${NETNS_PREFIX}(\\d+[a-z])-\\d+$`);
const BRIDGE_NAME = new RegExp(`^${BRIDGE_PREFIX}(\\d+[a-z])$`);
const VETH_NAME = new RegExp(`^${VETH_PREFIX}(\\d+[a-z])-\\d+$`);

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

/** Runs `ip ARGS` (with `input` as its stdin, for -batch -); throws with its stderr. */
function ip(args: readonly string[], input?: string): string {
  try {
    return execFileSync('ip', args, { input, encoding: 'utf8', timeout: IP_TIMEOUT_MS, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')} failed: ${(err.stderr ?? '').trim() || err.message}${input ? `\ninput:\n${input}` : ''}`);
  }
}

/** Like ip(), for cleanup: errors (a link already gone) are ignored. */
function ipQuiet(args: readonly string[], input?: string): void {
  try { ip(args, input); } catch { /* already gone */ }
}

let usable: string | null | undefined;

/**
 * Null when this process can build hosts, else why not (to print with the skip): not root, no
 * `ip`, or the kernel refuses a namespace or a veth pair. Runs once per process (synchronously,
 * so `describe.skipIf` can use it while tests are collected).
 */
export function canUseNetns(): string | null {
  if (usable !== undefined) return usable;
  usable = probe();
  return usable;
}

function probe(): string | null {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root (run the tests as root, e.g. in a container or VM)';
  try { ip(['-V']); } catch { return 'the `ip` command (iproute2) is not installed'; }
  const name = `${NETNS_PREFIX}probe${process.pid}`;
  try {
    ip(['netns', 'add', name]);
    ip(['-n', name, 'link', 'add', 'pa', 'type', 'veth', 'peer', 'name', 'pb']);
    ip(['link', 'add', `${BRIDGE_PREFIX}p${process.pid % 1_000_000}`, 'type', 'bridge']);
    ipQuiet(['link', 'delete', `${BRIDGE_PREFIX}p${process.pid % 1_000_000}`]);
    return null;
  } catch (e) {
    return `cannot create a network namespace, veth pair or bridge: ${(e as Error).message.split('\n')[0]}`;
  } finally {
    ipQuiet(['netns', 'delete', name]);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function netnsNames(): string[] {
  return ip(['netns', 'list']).split('\n').map((l) => l.trim().split(' ')[0]!).filter((n) => n.length > 0);
}

function linkNames(): string[] {
  // "7: shv123a-1@if6: <BROADCAST,...>": the name is before '@' or ':'.
  return ip(['-o', 'link', 'show']).split('\n').map((l) => /^\d+:\s+([^@:\s]+)/.exec(l)?.[1]).filter((n): n is string => n !== undefined);
}

/** Pids of the processes in a namespace. */
function netnsPids(name: string): number[] {
  try {
    return ip(['netns', 'pids', name]).split('\n').map((l) => Number(l.trim())).filter((p) => Number.isInteger(p) && p > 0);
  } catch {
    return [];
  }
}

/** Kills every process in the namespaces and waits (bounded) until they have exited. */
async function killAll(namespaces: readonly string[]): Promise<number[]> {
  const pids = namespaces.flatMap(netnsPids);
  for (const pid of pids) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  const deadline = Date.now() + KILL_WAIT_MS;
  while (pids.some((p) => existsSync(`/proc/${p}`) && alive(p)) && Date.now() < deadline) await sleep(20);
  return pids.filter((p) => existsSync(`/proc/${p}`) && alive(p));
}

/** Removes namespaces and links of `runs` (processes killed first). Returns what is left. */
async function removeRuns(runs: ReadonlySet<string>): Promise<string[]> {
  const namespaces = netnsNames().filter((n) => runs.has(NETNS_NAME.exec(n)?.[1] ?? ''));
  // Heal every cut first: a socket left with unsent data towards a silent peer keeps its
  // (already unnamed) namespace alive in the kernel for minutes of retransmits.
  const veths = linkNames().filter((l) => runs.has(VETH_NAME.exec(l)?.[1] ?? ''));
  if (veths.length > 0) ipQuiet(['-force', '-batch', '-'], veths.map((v) => `link set ${v} up`).join('\n') + '\n');
  const stuck = await killAll(namespaces);
  const commands: string[] = namespaces.map((n) => `netns delete ${n}`);
  for (const link of linkNames()) {
    const run = BRIDGE_NAME.exec(link)?.[1] ?? VETH_NAME.exec(link)?.[1];
    if (run !== undefined && runs.has(run)) commands.push(`link delete ${link}`);
  }
  if (commands.length > 0) ipQuiet(['-force', '-batch', '-'], commands.join('\n') + '\n');
  // A namespace's veth pair goes with it, a moment after the namespace does: wait (bounded).
  const deadline = Date.now() + KILL_WAIT_MS;
  let left = leftoversOf(runs);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(50);
    ipQuiet(['-force', '-batch', '-'], left.map((name) => (NETNS_NAME.test(name) ? `netns delete ${name}` : `link delete ${name}`)).join('\n') + '\n');
    left = leftoversOf(runs);
  }
  return stuck.length > 0 ? [...left, ...stuck.map((p) => `pid ${p}`)] : left;
}

function leftoversOf(runs: ReadonlySet<string>): string[] {
  return [
    ...netnsNames().filter((n) => runs.has(NETNS_NAME.exec(n)?.[1] ?? '')),
    ...linkNames().filter((l) => runs.has(BRIDGE_NAME.exec(l)?.[1] ?? VETH_NAME.exec(l)?.[1] ?? '')),
  ];
}

/**
 * Removes the namespaces, bridges and veths of earlier runs whose process is gone (a test
 * process that crashed or was killed before its destroy()). Runs of live processes are left
 * alone: two test files may build hosts at the same time. Returns the run tags removed.
 */
export async function cleanLeftovers(): Promise<string[]> {
  const runs = new Set<string>();
  for (const name of [...netnsNames(), ...linkNames()]) {
    const run = NETNS_NAME.exec(name)?.[1] ?? BRIDGE_NAME.exec(name)?.[1] ?? VETH_NAME.exec(name)?.[1];
    if (run === undefined) continue;
    const pid = Number(RUN_NAME.exec(run)![1]);
    if (pid !== process.pid && !alive(pid)) runs.add(run);
  }
  if (runs.size > 0) await removeRuns(runs);
  return [...runs];
}

export interface HostProcessExit { code: number | null; signal: NodeJS.Signals | null }

/** A shoal process on a host (`ip netns exec HOST node cli.js ...`). */
export interface HostProcess {
  /** `http://<host address>:<port>`, from its listening line. */
  readonly url: string;
  readonly process: ChildProcess;
  /** The listening line (it says where a leaf restored its rows from). */
  readonly listeningLine: string;
  readonly exited: Promise<HostProcessExit>;
  /** The kept tail of its stdout and stderr. */
  output(): string;
  /** SIGTERM (or `signal`), SIGKILL after `timeoutMs`; resolves once it has exited. Safe twice. */
  stop(opts?: { signal?: NodeJS.Signals; timeoutMs?: number }): Promise<HostProcessExit>;
}

export interface Host {
  /** 0-based position in the array createHosts returned. */
  readonly index: number;
  /** The network namespace: `shoalh-<run>-<index + 1>`. */
  readonly netns: string;
  /** Its IPv4 address on the bridge, 10.213.<y>.<index + 1>. */
  readonly address: string;
  /** True between cut() and heal(). */
  readonly isCut: boolean;
  /** Starts `command args` inside the host (`ip netns exec`, which execs: the pid is the command's). */
  spawn(command: string, args: readonly string[], opts?: SpawnOptions): ChildProcess;
  /** Starts `node dist/server/cli/cli.js ARGS` on the host; resolves at its listening line. */
  startShoal(args: readonly string[], opts?: { startTimeoutMs?: number }): Promise<HostProcess>;
  /** Cuts the host off the bridge (a partition: silence both ways, see the module header). */
  cut(): void;
  heal(): void;
  /** Pids of every process in the host's namespace. */
  pids(): number[];
}

export interface Hosts extends ReadonlyArray<Host> {
  /** The run tag in every name: `<pid><letter>`. */
  readonly run: string;
  /** The root namespace's address on the bridge (where the test process, and a proxy in it, is reached). */
  readonly bridgeAddress: string;
  /** Kills what still runs on the hosts and removes every namespace and link of this run; lists
   * what could not be removed (empty when all went). Safe to call twice. */
  destroy(): Promise<string[]>;
  /** The names of this run still present (empty after destroy()). */
  leftovers(): string[];
}

let runsStarted = 0;

/** Picks y for 10.213.<y>.0/24: not routed in the root namespace yet, starting from the pid. */
function pickSubnet(): number {
  const routes = ip(['-o', '-4', 'route', 'show']);
  for (let k = 0; k < 250; k++) {
    const y = (process.pid + runsStarted * 37 + k) % 250 + 1;
    if (!routes.includes(`${SUBNET_PREFIX}.${y}.0/24`)) return y;
  }
  throw new Error(`no free ${SUBNET_PREFIX}.<y>.0/24 subnet in the root namespace`);
}

/** Locally administered MACs: 02:53:<host byte>:00:00:01 (the bridge: byte 254). */
function macOf(hostByte: number): string {
  return `02:53:${hostByte.toString(16).padStart(2, '0')}:00:00:01`;
}

/** Builds `count` hosts (see the module header). On a failure midway everything made is removed. */
export async function createHosts(count: number): Promise<Hosts> {
  assert(Number.isInteger(count) && count >= 1 && count <= HOSTS_MAX, `createHosts(${count}): 1..${HOSTS_MAX} hosts`);
  assert(runsStarted < RUNS_PER_PROCESS_MAX, `at most ${RUNS_PER_PROCESS_MAX} createHosts calls per process`);
  const reason = canUseNetns();
  if (reason !== null) throw new Error(`createHosts: ${reason}`);
  await cleanLeftovers();
  const run = `${process.pid}${String.fromCharCode(97 + runsStarted)}`;
  const y = pickSubnet();
  runsStarted++;
  const subnet = `${SUBNET_PREFIX}.${y}`;
  const bridge = `${BRIDGE_PREFIX}${run}`;
  const bridgeAddress = `${subnet}.${BRIDGE_HOST_BYTE}`;
  assert(bridge.length <= 15 && `${VETH_PREFIX}${run}-${HOSTS_MAX}`.length <= 15, `interface names of run ${run} fit in 15 characters`);
  const specs = Array.from({ length: count }, (_, index) => ({
    index,
    netns: `${NETNS_PREFIX}${run}-${index + 1}`,
    veth: `${VETH_PREFIX}${run}-${index + 1}`,
    address: `${subnet}.${index + 1}`,
    mac: macOf(index + 1),
  }));
  // Every address on the bridge with its MAC, as a permanent neighbour entry: a cut host then
  // stays silent (timeouts) instead of becoming "no route to host" once ARP gives up.
  const everyone = [{ address: bridgeAddress, mac: macOf(BRIDGE_HOST_BYTE) }, ...specs];
  const destroy = async () => removeRuns(new Set([run]));
  try {
    const root: string[] = [
      `link add name ${bridge} address ${macOf(BRIDGE_HOST_BYTE)} type bridge`,
      `addr add ${bridgeAddress}/24 dev ${bridge}`,
      `link set ${bridge} up`,
    ];
    for (const s of specs) {
      root.push(
        `netns add ${s.netns}`,
        `link add ${s.veth} type veth peer name eth0 netns ${s.netns}`,
        `link set ${s.veth} master ${bridge}`,
        `link set ${s.veth} up`,
        `neigh replace ${s.address} lladdr ${s.mac} dev ${bridge} nud permanent`,
      );
    }
    ip(['-batch', '-'], root.join('\n') + '\n');
    for (const s of specs) {
      const inside = [
        'link set lo up',
        `link set eth0 address ${s.mac}`,
        `addr add ${s.address}/24 dev eth0`,
        'link set eth0 up',
        ...everyone.filter((o) => o.address !== s.address).map((o) => `neigh replace ${o.address} lladdr ${o.mac} dev eth0 nud permanent`),
      ];
      ip(['-n', s.netns, '-batch', '-'], inside.join('\n') + '\n');
    }
  } catch (e) {
    await destroy();
    throw e;
  }
  const hosts = specs.map((s): Host => {
    let isCut = false;
    const host: Host = {
      index: s.index,
      netns: s.netns,
      address: s.address,
      get isCut() { return isCut; },
      spawn: (command, args, opts = {}) => spawn('ip', ['netns', 'exec', s.netns, command, ...args], opts),
      startShoal: (args, opts = {}) => startShoalOn(host, args, opts.startTimeoutMs ?? START_TIMEOUT_MS_DEFAULT),
      cut: () => { ip(['link', 'set', s.veth, 'down']); isCut = true; },
      heal: () => { ip(['link', 'set', s.veth, 'up']); isCut = false; },
      pids: () => netnsPids(s.netns),
    };
    return host;
  });
  return Object.assign(hosts, { run, bridgeAddress, destroy, leftovers: () => leftoversOf(new Set([run])) });
}

async function startShoalOn(host: Host, args: readonly string[], startTimeoutMs: number): Promise<HostProcess> {
  const child = host.spawn(process.execPath, [CLI_PATH, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const push = (chunk: string) => { out = (out + chunk).slice(-OUTPUT_TAIL_CHARS); };
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', push);
  const exited = new Promise<HostProcessExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const what = `${args.join(' ')} on ${host.netns}`;
  const { url, line } = await new Promise<{ url: string; line: string }>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => { if (!settled) { settled = true; clearTimeout(timer); fn(); } };
    const timer = setTimeout(() => settle(() => { child.kill('SIGKILL'); reject(new Error(`no listening line within ${startTimeoutMs} ms: ${what}\n${out}`)); }), startTimeoutMs);
    child.stdout!.on('data', (chunk: string) => {
      push(chunk);
      const m = LISTENING.exec(out);
      if (m) settle(() => resolve({ url: m[1]!, line: out.slice(out.lastIndexOf('\n', m.index) + 1).split('\n')[0]! }));
    });
    child.once('error', (e) => settle(() => reject(new Error(`cannot start ${what}: ${e.message}`))));
    void exited.then(({ code, signal }) => settle(() => reject(new Error(`exited (code ${code}, signal ${signal}) before listening: ${what}\n${out}`))));
  });
  let stopping: Promise<HostProcessExit> | null = null;
  const stop = (o: { signal?: NodeJS.Signals; timeoutMs?: number } = {}) => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(o.signal ?? 'SIGTERM');
      const first = await Promise.race([exited, sleep(o.timeoutMs ?? STOP_TIMEOUT_MS_DEFAULT).then(() => null)]);
      if (first) return first;
      child.kill('SIGKILL');
      const second = await Promise.race([exited, sleep(KILL_WAIT_MS).then(() => null)]);
      if (!second) throw new Error(`pid ${child.pid} (${what}) did not exit after SIGKILL\n${out}`);
      return second;
    })();
    return stopping;
  };
  return { url, process: child, listeningLine: line, exited, output: () => out, stop };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
