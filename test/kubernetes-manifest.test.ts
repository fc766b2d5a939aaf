/**
 * The Kubernetes deploy on paper (issue 19), checked without a cluster: docs/deploy/kubernetes.yaml
 * is parsed and every field the shared-memory restart depends on is checked against the design
 * and against the real CLI (the leaf and aggregator commander options, registered in-process);
 * docs/deploy/k8s-roll.sh is run against a simulated kubectl built from the same manifest
 * (skipped where bash, jq or curl is missing).
 *
 * Each check is a rule of `checkManifest`; a mutated copy of the manifest must trip the rule it
 * breaks, so no rule passes vacuously. Not here: whether Kubernetes accepts the objects (no API
 * server), what the kubelet really does (docs/operations.md says, with the sources).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, type Option } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { registerAggregator } from '../server/cli/cmd-aggregator.js';
import { registerLeaf } from '../server/cli/cmd-leaf.js';
import { defaultLeafConfig, parseBytes, validateLeafConfig } from '../server/leaf/config.js';
import { applyJsonPatch, argValue, FakeCluster, jsonpath, leafOf, matches, type Scenario } from './support/fake-kubectl.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const MANIFEST_PATH = path.join(REPO, 'docs/deploy/kubernetes.yaml');
const ROLL_PATH = path.join(REPO, 'docs/deploy/k8s-roll.sh');

/** Flags issue 19 adds to the CLI. Until one is registered, args may use it unchecked (for its
 * command only); once registered it is checked like any other. Remove when both have landed. */
const PENDING_FLAGS: Record<'leaf' | 'aggregator', readonly string[]> = {
  leaf: ['--join'],
  aggregator: ['--leaves-dns', '--dns-grace'],
};

/** The kubelet sends SIGKILL `terminationGracePeriodSeconds` after SIGTERM. A handoff cut short
 * is a crash (the next start reads the disk), so the grace period must cover its worst case:
 * the wait for running queries (read from lifecycle.ts below), copying into /dev/shm every block
 * that is on the heap (all of the budget if none could be placed; pwrite into tmpfs measured
 * ~2.7 GB/s, 1 GiB/s assumed), and finishing a running checkpoint plus the log's fdatasync on a
 * slow network volume (a checkpoint writes what was sealed since the last one: ~128 MiB). */
const SHM_COPY_BYTES_PER_S = 2 ** 30;
const CHECKPOINT_AND_SYNC_S = 30;
/** A slow network volume's read speed (a common cloud baseline) and the time a replaced Pod takes
 * to be scheduled and have its volume attached before the leaf starts reading it. */
const DISK_READ_BYTES_PER_S_MIN = 125e6;
const POD_REPLACE_S = 120;

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  // Manifests are untyped data; each rule checks the shape it reads.
  spec?: any;
}

interface Problem { rule: string; message: string }

type Flags = Map<string, Option>;
interface Cli { leaf: Flags; aggregator: Flags; binPath: string }

/** A Kubernetes quantity (8Gi, 500M, 1.5Gi, 2) in bytes or units. */
function parseQuantity(q: unknown): number {
  if (typeof q === 'number') return q;
  const m = typeof q === 'string' ? /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$/.exec(q) : null;
  if (m === null) throw new Error(`not a Kubernetes quantity: ${JSON.stringify(q)}`);
  const unit = m[2] ?? '';
  const binary: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50 };
  const decimal: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15 };
  return Number(m[1]) * (binary[unit] ?? decimal[unit]!);
}

function commandFlags(register: (p: Command) => void, name: string): Flags {
  const program = new Command();
  register(program);
  const cmd = program.commands.find((c) => c.name() === name);
  if (cmd === undefined) throw new Error(`no ${name} command registered`);
  return new Map(cmd.options.filter((o) => o.long !== undefined).map((o) => [o.long!, o]));
}

/** The `--flag value` pairs of a command's args, read the way commander reads them. */
function readArgs(args: string[], flags: Flags, pending: readonly string[]): { values: Map<string, string | true>; unknown: string[]; stray: string[] } {
  const values = new Map<string, string | true>();
  const unknown: string[] = [];
  const stray: string[] = [];
  for (let i = 1; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) { stray.push(arg); continue; }
    const eq = arg.indexOf('=');
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    const opt = flags.get(flag);
    const takesValue = opt !== undefined ? opt.required || opt.optional : pending.includes(flag);
    if (opt === undefined && !pending.includes(flag)) unknown.push(flag);
    values.set(flag, eq >= 0 ? arg.slice(eq + 1) : takesValue && i + 1 < args.length ? args[++i]! : true);
  }
  return { values, unknown, stray };
}

/** `NAME="${NAME:-default}"` lines of the roll script. */
function scriptDefaults(script: string): Map<string, string> {
  return new Map([...script.matchAll(/^([A-Z_]+)="\$\{\1:-([^}]*)\}"/gm)].map((m) => [m[1]!, m[2]!]));
}


/** A container port given by number or by name. */
function portNumber(container: any, port: unknown): number | null {
  if (typeof port === 'number') return port;
  const named = (container?.ports ?? []).find((p: any) => p.name === port);
  return named?.containerPort ?? null;
}

function handoffQueryWaitS(): number {
  const source = fs.readFileSync(path.join(REPO, 'server/leaf/lifecycle.ts'), 'utf8');
  const m = /const HANDOFF_QUERY_WAIT_MS_MAX = ([\d_]+);/.exec(source);
  if (m === null) throw new Error('HANDOFF_QUERY_WAIT_MS_MAX not found in server/leaf/lifecycle.ts: update this test');
  return Number(m[1]!.replaceAll('_', '')) / 1000;
}

/** The smallest terminationGracePeriodSeconds that covers a handoff at this memory budget. */
function graceSecondsMin(budgetBytes: number): number {
  return handoffQueryWaitS() + budgetBytes / SHM_COPY_BYTES_PER_S + CHECKPOINT_AND_SYNC_S;
}

/** Every way the manifest and the roll script can break the design; [] when none. */
function checkManifest(objects: K8sObject[], rollScript: string, cli: Cli): Problem[] {
  const problems: Problem[] = [];
  const fail = (rule: string, message: string) => { problems.push({ rule, message }); };
  const of = (kind: string) => objects.filter((o) => o.kind === kind);

  const sts = of('StatefulSet')[0];
  const deploy = of('Deployment')[0];
  if (sts === undefined || deploy === undefined) {
    fail('objects', 'expected a StatefulSet (leaves) and a Deployment (aggregators)');
    return problems;
  }
  const ns = sts.metadata.namespace ?? 'default';
  const podSpec = sts.spec?.template?.spec ?? {};
  const leaf = (podSpec.containers ?? []).find((c: any) => c.args?.[0] === 'leaf');
  const aggSpec = deploy.spec?.template?.spec ?? {};
  const agg = (aggSpec.containers ?? []).find((c: any) => c.args?.[0] === 'aggregator');
  if (leaf === undefined || agg === undefined) {
    fail('objects', 'expected a container running `leaf` in the StatefulSet and one running `aggregator` in the Deployment');
    return problems;
  }

  // The entry point: the CLI that package.json's bin names, with the subcommand first.
  for (const [what, c] of [['leaf', leaf], ['aggregator', agg]] as const) {
    const cmd: unknown[] = c.command ?? [];
    if (cmd.length !== 2 || cmd[0] !== 'node' || typeof cmd[1] !== 'string' || !cmd[1].endsWith(`/${cli.binPath}`)) {
      fail('entry-point', `${what} command ${JSON.stringify(cmd)} is not ["node", ".../${cli.binPath}"]`);
    }
  }

  // OnDelete: the controller never replaces a leaf Pod on a template change.
  if (sts.spec?.updateStrategy?.type !== 'OnDelete') {
    fail('sts-on-delete', `StatefulSet updateStrategy.type is ${JSON.stringify(sts.spec?.updateStrategy?.type)}, not OnDelete: a template change would replace every leaf Pod and its shared memory`);
  }

  // The leaf's args, against the real CLI.
  const leafArgs = readArgs(leaf.args ?? [], cli.leaf, PENDING_FLAGS.leaf);
  for (const flag of leafArgs.unknown) fail('leaf-flags', `leaf arg ${flag} is not an option of \`shoal leaf\``);
  for (const s of leafArgs.stray) fail('leaf-flags', `leaf arg ${JSON.stringify(s)} is not a flag's value`);
  const value = (flag: string): string | null => { const v = leafArgs.values.get(flag); return typeof v === 'string' ? v : null; };
  for (const flag of ['--host', '--port', '--id', '--data-dir', '--memory-budget']) {
    if (value(flag) === null) fail('leaf-flags', `leaf args lack ${flag} (its default is wrong in a container)`);
  }
  if (['127.0.0.1', 'localhost', '::1'].includes(value('--host') ?? '')) fail('leaf-flags', `leaf --host ${value('--host')} is not reachable from other Pods`);

  // --id from the Pod name.
  const idVar = /^\$\(([A-Za-z_][A-Za-z0-9_]*)\)$/.exec(value('--id') ?? '')?.[1];
  const idEnv = (leaf.env ?? []).find((e: any) => e.name === idVar);
  if (idVar === undefined || idEnv?.valueFrom?.fieldRef?.fieldPath !== 'metadata.name') {
    fail('leaf-id', `leaf --id ${JSON.stringify(value('--id'))} is not $(VAR) with VAR from fieldRef metadata.name`);
  }
  // The values as the leaf itself validates them, with the longest Pod name as its id.
  const lastPodName = `${sts.metadata.name}-${Math.max(0, Number(sts.spec?.replicas ?? 1) - 1)}`;
  const d = defaultLeafConfig();
  try {
    validateLeafConfig({
      ...d, leafId: lastPodName, host: value('--host') ?? d.host, port: Number(value('--port') ?? d.port),
      workers: Number(value('--workers') ?? d.workers), memoryBudgetBytes: parseBytes(value('--memory-budget') ?? '0'),
    });
  } catch (e) {
    fail('leaf-config', `the leaf would refuse its args (--id ${lastPodName}): ${(e as Error).message}`);
  }

  // The leaf's port: --port, the containerPort, the headless Service, the probe, --leaves-dns.
  const leafPort = Number(value('--port'));
  const leafPorts: number[] = (leaf.ports ?? []).map((p: any) => p.containerPort);
  if (!leafPorts.includes(leafPort)) fail('leaf-port', `leaf --port ${leafPort} is not a containerPort (${leafPorts.join(', ')})`);

  // The headless Service that serviceName names.
  const svc = of('Service').find((s) => s.metadata.name === sts.spec?.serviceName && (s.metadata.namespace ?? 'default') === ns);
  const podLabels = sts.spec?.template?.metadata?.labels;
  if (svc === undefined) {
    fail('headless-service', `StatefulSet serviceName ${JSON.stringify(sts.spec?.serviceName)} names no Service in namespace ${ns}`);
  } else {
    if (svc.spec?.clusterIP !== 'None') fail('headless-service', `Service ${svc.metadata.name} has clusterIP ${JSON.stringify(svc.spec?.clusterIP)}, not None: DNS would answer with one virtual IP, not one record per leaf`);
    // Not-ready leaves stay in DNS, so the aggregators keep them as members counted missing.
    if (svc.spec?.publishNotReadyAddresses !== true) fail('headless-service', `Service ${svc.metadata.name} does not set publishNotReadyAddresses: true: a leaf that is restarting or recovering would drop out of DNS, and out of coverage after --dns-grace`);
    if (!matches(svc.spec?.selector, podLabels)) fail('headless-service', `Service ${svc.metadata.name} does not select the leaf Pods`);
    const targets = (svc.spec?.ports ?? []).map((p: any) => portNumber(leaf, p.targetPort ?? p.port));
    if (!targets.includes(leafPort)) fail('headless-service', `Service ${svc.metadata.name} has no port that targets the leaf's ${leafPort}`);
  }
  if (!matches(sts.spec?.selector?.matchLabels, podLabels)) fail('headless-service', 'the StatefulSet selector does not match its Pod labels');

  // /dev/shm: a memory-backed emptyDir, big enough for the budget.
  const budget = value('--memory-budget') === null ? NaN : parseBytes(value('--memory-budget')!);
  const shmMount = (leaf.volumeMounts ?? []).find((m: any) => m.mountPath === '/dev/shm');
  const shmVolume = (podSpec.volumes ?? []).find((v: any) => v.name === shmMount?.name);
  let shmBytes = NaN;
  if (shmVolume?.emptyDir?.medium !== 'Memory') {
    fail('shm-memory', '/dev/shm is not an emptyDir with medium: Memory');
  } else if (shmVolume.emptyDir.sizeLimit === undefined) {
    fail('shm-memory', '/dev/shm has no sizeLimit (the tmpfs would be sized by the node, not the Pod)');
  } else {
    shmBytes = parseQuantity(shmVolume.emptyDir.sizeLimit);
    if (!(shmBytes >= budget)) fail('shm-memory', `/dev/shm sizeLimit ${shmVolume.emptyDir.sizeLimit} is below --memory-budget ${value('--memory-budget')}: blocks would stay on the heap and restarts copy them`);
  }

  // Memory: tmpfs pages count against the container (then the Pod) cgroup.
  const limit = leaf.resources?.limits?.memory;
  const request = leaf.resources?.requests?.memory;
  if (limit === undefined) {
    fail('memory-limit', 'the leaf container has no memory limit');
  } else {
    const limitBytes = parseQuantity(limit);
    if (!(limitBytes >= shmBytes + budget)) fail('memory-limit', `memory limit ${limit} is below /dev/shm sizeLimit + --memory-budget (${((shmBytes + budget) / 2 ** 30).toFixed(1)} GiB): shared memory is charged to the leaf`);
    if (request === undefined || parseQuantity(request) !== limitBytes) fail('memory-limit', `memory request ${request} differs from the limit ${limit}: a Pod above its request is evicted first, and an eviction loses /dev/shm`);
  }

  // The grace period covers a handoff.
  const grace = podSpec.terminationGracePeriodSeconds ?? 30;
  const graceMin = graceSecondsMin(budget);
  if (!(grace >= graceMin)) fail('grace', `terminationGracePeriodSeconds ${grace} is below ${Math.ceil(graceMin)} s, the worst-case handoff at this budget`);

  // The disk log on the PersistentVolumeClaim.
  const claims: string[] = (sts.spec?.volumeClaimTemplates ?? []).map((c: any) => c.metadata?.name);
  const dataDir = value('--data-dir') ?? '';
  const dataMount = (leaf.volumeMounts ?? []).find((m: any) => dataDir === m.mountPath || dataDir.startsWith(`${String(m.mountPath).replace(/\/$/, '')}/`));
  if (dataMount === undefined || !claims.includes(dataMount.name)) fail('data-dir', `--data-dir ${dataDir} is not on a volumeClaimTemplate's volume`);

  // Readiness on /healthz (503 from the first moment of a handoff); no liveness probe.
  const probe = leaf.readinessProbe?.httpGet;
  if (probe?.path !== '/healthz' || portNumber(leaf, probe?.port) !== leafPort) fail('readiness', 'the leaf readinessProbe is not an httpGet of /healthz on the leaf port');
  if (leaf.livenessProbe !== undefined) fail('readiness', 'the leaf has a livenessProbe: it would kill a leaf that is slowly recovering from disk');

  // One uid for every container generation (segments are taken only from their owner).
  if (podSpec.securityContext?.runAsUser === undefined && leaf.securityContext?.runAsUser === undefined) {
    fail('run-as-user', 'runAsUser is not pinned: an image with another USER could not take its predecessor\'s segments');
  }

  // The aggregators: --leaves-dns names the headless Service and the leaf port.
  const aggArgs = readArgs(agg.args ?? [], cli.aggregator, PENDING_FLAGS.aggregator);
  for (const flag of aggArgs.unknown) fail('aggregator-flags', `aggregator arg ${flag} is not an option of \`shoal aggregator\``);
  for (const s of aggArgs.stray) fail('aggregator-flags', `aggregator arg ${JSON.stringify(s)} is not a flag's value`);
  const dns = aggArgs.values.get('--leaves-dns');
  const wantDns = `${svc?.metadata.name}.${ns}.svc.cluster.local:${leafPort}`;
  if (dns !== wantDns) fail('leaves-dns', `aggregator --leaves-dns is ${JSON.stringify(dns)}, expected ${wantDns}`);
  // A replaced leaf Pod is out of DNS from its deletion until its new Pod is scheduled, has its
  // volume attached and has recovered from disk; for that long it must stay a member (counted
  // missing), or coverage forgets it. Bound: the budget read at a slow network volume's speed.
  const graceOption = cli.aggregator.get('--dns-grace');
  const dnsGrace = aggArgs.values.get('--dns-grace') ?? graceOption?.defaultValue;
  const dnsGraceMin = (budget / DISK_READ_BYTES_PER_S_MIN + POD_REPLACE_S) * 1000;
  if (graceOption !== undefined && !(Number(dnsGrace) >= dnsGraceMin)) {
    fail('leaves-dns', `aggregator --dns-grace ${dnsGrace} ms is below ${Math.ceil(dnsGraceMin)} ms, a replaced leaf's way back (reading ${value('--memory-budget')} at 125 MB/s, plus ${POD_REPLACE_S} s)`);
  }
  if (!(Number(deploy.spec?.replicas) >= 2)) fail('aggregator-service', `the aggregator Deployment has ${deploy.spec?.replicas} replicas, not 2 or more`);
  const aggPort = Number(aggArgs.values.get('--port'));
  const aggSvc = of('Service').find((s) => s.spec?.clusterIP !== 'None' && matches(s.spec?.selector, deploy.spec?.template?.metadata?.labels));
  if (aggSvc === undefined || !(aggSvc.spec?.ports ?? []).some((p: any) => portNumber(agg, p.targetPort ?? p.port) === aggPort)) {
    fail('aggregator-service', `no ClusterIP Service selects the aggregator Pods on their --port ${aggPort}`);
  }

  // The roll script patches what the manifest defines.
  const defaults = scriptDefaults(rollScript);
  const want: Record<string, string> = {
    NAMESPACE: ns, STATEFULSET: sts.metadata.name, CONTAINER: leaf.name,
    AGGREGATOR_DEPLOYMENT: deploy.metadata.name, AGGREGATOR_CONTAINER: agg.name,
    SHOAL_CLI: (leaf.command ?? []).join(' '), LEAF_PORT: String(leafPort), AGGREGATOR_PORT: String(aggPort),
  };
  for (const [name, v] of Object.entries(want)) {
    if (defaults.get(name) !== v) fail('roll-script', `k8s-roll.sh ${name} defaults to ${JSON.stringify(defaults.get(name))}, the manifest has ${JSON.stringify(v)}`);
  }
  if (!/^set -euo pipefail$/m.test(rollScript)) fail('roll-script', 'k8s-roll.sh does not `set -euo pipefail`');
  return problems;
}

// ---------------------------------------------------------------------------------------------

const manifestText = fs.readFileSync(MANIFEST_PATH, 'utf8');
const rollScript = fs.readFileSync(ROLL_PATH, 'utf8');
const documents = parseAllDocuments(manifestText);
const objects = (Array.isArray(documents) ? documents : [documents]).map((d) => d.toJS() as K8sObject).filter((o) => o !== null);
const cli: Cli = {
  leaf: commandFlags(registerLeaf, 'leaf'),
  aggregator: commandFlags(registerAggregator, 'aggregator'),
  binPath: (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { bin: { shoal: string } }).bin.shoal,
};
const byKind = (list: K8sObject[], kind: string) => list.find((o) => o.kind === kind)!;
const aggOf = (list: K8sObject[]) => byKind(list, 'Deployment').spec.template.spec.containers.find((c: any) => c.args[0] === 'aggregator');
const setArg = (container: any, flag: string, v: string) => { container.args[container.args.indexOf(flag) + 1] = v; };

describe('docs/deploy/kubernetes.yaml', () => {
  it('parses as YAML, one object per document, each with apiVersion, kind and name', () => {
    for (const d of Array.isArray(documents) ? documents : [documents]) expect(d.errors.map(String)).toEqual([]);
    for (const o of objects) {
      expect(typeof o.apiVersion, JSON.stringify(o)).toBe('string');
      expect(o.metadata?.name, o.kind).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
    expect(objects.map((o) => o.kind).sort()).toEqual(['Deployment', 'Namespace', 'PodDisruptionBudget', 'PodDisruptionBudget', 'Service', 'Service', 'StatefulSet']);
  });

  it('reads Kubernetes quantities', () => {
    expect(parseQuantity('8Gi')).toBe(8 * 2 ** 30);
    expect(parseQuantity('20Gi')).toBe(20 * 2 ** 30);
    expect(parseQuantity('1.5Gi')).toBe(1.5 * 2 ** 30);
    expect(parseQuantity('500M')).toBe(500e6);
    expect(parseQuantity(4)).toBe(4);
    expect(() => parseQuantity('8GiB')).toThrow(/not a Kubernetes quantity/);
  });

  it('meets every rule the shared-memory restart depends on', () => {
    expect(checkManifest(objects, rollScript, cli)).toEqual([]);
  });

  it('reads a pending flag as taking a value, as it does once registered', () => {
    for (const command of ['leaf', 'aggregator'] as const) {
      for (const flag of PENDING_FLAGS[command]) {
        const registered = cli[command].get(flag);
        if (registered !== undefined) expect(registered.required, `${command} ${flag} takes a value`).toBe(true);
      }
    }
  });

  // Each mutation breaks one thing the design depends on; the rule named must catch it.
  const mutations: [string, string, (list: K8sObject[]) => void, ((script: string) => string)?][] = [
    ['RollingUpdate instead of OnDelete', 'sts-on-delete', (l) => { byKind(l, 'StatefulSet').spec.updateStrategy = { type: 'RollingUpdate' }; }],
    ['a Service with a cluster IP', 'headless-service', (l) => { delete l.find((o) => o.metadata.name === 'shoal-leaf' && o.kind === 'Service')!.spec.clusterIP; }],
    ['serviceName naming no Service', 'headless-service', (l) => { byKind(l, 'StatefulSet').spec.serviceName = 'leaves'; }],
    ['not-ready leaves left out of DNS', 'headless-service', (l) => { l.find((o) => o.metadata.name === 'shoal-leaf' && o.kind === 'Service')!.spec.publishNotReadyAddresses = false; }],
    ['/dev/shm on the node disk', 'shm-memory', (l) => { delete byKind(l, 'StatefulSet').spec.template.spec.volumes.find((v: any) => v.name === 'shm').emptyDir.medium; }],
    ['/dev/shm without sizeLimit', 'shm-memory', (l) => { delete byKind(l, 'StatefulSet').spec.template.spec.volumes.find((v: any) => v.name === 'shm').emptyDir.sizeLimit; }],
    ['/dev/shm smaller than the budget', 'shm-memory', (l) => { byKind(l, 'StatefulSet').spec.template.spec.volumes.find((v: any) => v.name === 'shm').emptyDir.sizeLimit = '4Gi'; }],
    ['a memory limit without room for /dev/shm', 'memory-limit', (l) => { leafOf(l).resources.limits.memory = '12Gi'; leafOf(l).resources.requests.memory = '12Gi'; }],
    ['a budget raised without the limit', 'memory-limit', (l) => { setArg(leafOf(l), '--memory-budget', '11GiB'); byKind(l, 'StatefulSet').spec.template.spec.volumes.find((v: any) => v.name === 'shm').emptyDir.sizeLimit = '11Gi'; }],
    ['a request below the limit', 'memory-limit', (l) => { leafOf(l).resources.requests.memory = '12Gi'; }],
    ['the default 30 s grace period', 'grace', (l) => { delete byKind(l, 'StatefulSet').spec.template.spec.terminationGracePeriodSeconds; }],
    ['a misspelt leaf flag', 'leaf-flags', (l) => { leafOf(l).args.push('--memory-budgett', '4GiB'); }],
    ['an aggregator flag on the leaf', 'leaf-flags', (l) => { leafOf(l).args.push('--leaves-dns', 'x:1'); }],
    ['no --memory-budget', 'leaf-flags', (l) => { const a = leafOf(l).args; a.splice(a.indexOf('--memory-budget'), 2); }],
    ['a leaf on loopback', 'leaf-flags', (l) => { setArg(leafOf(l), '--host', '127.0.0.1'); }],
    ['a fixed --id', 'leaf-id', (l) => { setArg(leafOf(l), '--id', 'leaf-1'); }],
    ['a StatefulSet name too long for a leaf id', 'leaf-config', (l) => { byKind(l, 'StatefulSet').metadata.name = 'shoal-leaf-'.repeat(6); }],
    ['more workers than a leaf takes', 'leaf-config', (l) => { setArg(leafOf(l), '--workers', '100'); }],
    ['--id from the Pod IP', 'leaf-id', (l) => { leafOf(l).env.find((e: any) => e.name === 'POD_NAME').valueFrom.fieldRef.fieldPath = 'status.podIP'; }],
    ['--port not the containerPort', 'leaf-port', (l) => { setArg(leafOf(l), '--port', '7002'); }],
    ['the data dir off the volume claim', 'data-dir', (l) => { setArg(leafOf(l), '--data-dir', '/tmp/leaf'); }],
    ['a liveness probe', 'readiness', (l) => { leafOf(l).livenessProbe = { httpGet: { path: '/healthz', port: 'http' } }; }],
    ['readiness on another path', 'readiness', (l) => { leafOf(l).readinessProbe.httpGet.path = '/'; }],
    ['no pinned uid', 'run-as-user', (l) => { delete byKind(l, 'StatefulSet').spec.template.spec.securityContext.runAsUser; }],
    ['--leaves-dns on another port', 'leaves-dns', (l) => { setArg(aggOf(l), '--leaves-dns', 'shoal-leaf.shoal.svc.cluster.local:7002'); }],
    ['--leaves-dns in another namespace', 'leaves-dns', (l) => { setArg(aggOf(l), '--leaves-dns', 'shoal-leaf.default.svc.cluster.local:7001'); }],
    ['the default --dns-grace', 'leaves-dns', (l) => { const a = aggOf(l).args; a.splice(a.indexOf('--dns-grace'), 2); }],
    ['a misspelt aggregator flag', 'aggregator-flags', (l) => { aggOf(l).args.push('--leaf-timout', '5000'); }],
    ['one aggregator', 'aggregator-service', (l) => { byKind(l, 'Deployment').spec.replicas = 1; }],
    ['another entry point', 'entry-point', (l) => { leafOf(l).command = ['node', '/opt/shoal/dist/server/cli.js']; }],
    ['the leaf container renamed', 'roll-script', (l) => { leafOf(l).name = 'shoal'; }],
    ['the script patching another container', 'roll-script', () => {}, (s) => s.replace('CONTAINER="${CONTAINER:-leaf}"', 'CONTAINER="${CONTAINER:-shoal}"')],
  ];
  it.each(mutations)('catches %s (%s)', (_what, rule, mutate, mutateScript) => {
    const copy = structuredClone(objects);
    mutate(copy);
    const problems = checkManifest(copy, mutateScript ? mutateScript(rollScript) : rollScript, cli);
    expect(problems.map((p) => p.rule), JSON.stringify(problems)).toContain(rule);
  });

  it('checks the args against the options the CLI registers, not a list of its own', () => {
    const withoutId = new Map(cli.leaf);
    withoutId.delete('--id');
    expect(checkManifest(objects, rollScript, { ...cli, leaf: withoutId }).map((p) => p.message).join('\n')).toMatch(/leaf arg --id is not an option/);
  });
});

const hasTools = ['bash', 'jq', 'curl', 'base64'].every((tool) => spawnSync(tool, ['--version']).status === 0);

describe.skipIf(!hasTools)('docs/deploy/k8s-roll.sh against a simulated kubectl', () => {
  const NEW_IMAGE = 'registry.example.com/shoal:1.1.0';
  const ROLL_RUN_MS_MAX = 25_000;
  let server: http.Server;
  let cluster: FakeCluster;
  let binDir: string;

  beforeAll(async () => {
    binDir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-k8s-roll-'));
    // Forwards one kubectl call (args and stdin) to the fake and prints its answer: a line with
    // the exit code, a line with stderr in base64, then stdout. (bash, jq and curl: a Node process
    // per call would cost ~0.1 s each, and a roll makes dozens.)
    fs.writeFileSync(path.join(binDir, 'kubectl'), `#!/usr/bin/env bash
set -uo pipefail
input=$(mktemp)
cat >"$input"
{ read -r code; read -r err; cat; } < <(jq -n --rawfile stdin "$input" '{argv: $ARGS.positional, stdin: $stdin}' --args -- "$@" |
  curl -sS --data-binary @- "http://127.0.0.1:$FAKE_KUBECTL_PORT/")
rm -f "$input"
[[ -z $err ]] || base64 -d <<<"$err" >&2
exit "\${code:-1}"
`, { mode: 0o755 });
    // The script's polls sleep 1 s; a tenth keeps the test short (deadlines still count seconds).
    fs.writeFileSync(path.join(binDir, 'sleep'), '#!/bin/sh\nexec /bin/sleep 0.1\n', { mode: 0o755 });
    server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => {
        const { argv, stdin } = JSON.parse(body) as { argv: string[]; stdin: string };
        const r = cluster.run(argv, stdin);
        res.end(`${r.code}\n${Buffer.from(r.stderr).toString('base64')}\n${r.stdout}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(binDir, { recursive: true, force: true });
  });

  const newCluster = (scenario: Scenario, mutate?: (sts: any) => void) => {
    const sts = structuredClone(byKind(objects, 'StatefulSet'));
    mutate?.(sts);
    cluster = new FakeCluster(sts, structuredClone(byKind(objects, 'Deployment')), scenario, 2);
    return cluster;
  };

  const roll = (env: Record<string, string> = {}) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn('bash', [ROLL_PATH, NEW_IMAGE], {
      env: { ...process.env, PATH: `${binDir}:${process.env.PATH}`, FAKE_KUBECTL_PORT: String((server.address() as AddressInfo).port), LEAF_TIMEOUT_S: '10', AGGREGATOR_TIMEOUT_S: '10', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
    child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    // A script that hangs must not outlive its test.
    const timer = setTimeout(() => child.kill('SIGKILL'), ROLL_RUN_MS_MAX);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });

  const patched = (c: FakeCluster) => c.calls.filter((a) => a[2] === 'patch').map((a) => a[3]);
  const leafImage = (pod: any) => pod.spec.containers.find((x: any) => x.name === leafOf(objects).name).image;

  it('patches the template, then each leaf Pod in order, in place, waiting for each to come back', async () => {
    const c = newCluster({ restore: 'shm', restartPolls: 1 });
    const r = await roll();
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(patched(c)).toEqual(['statefulset/shoal-leaf', 'pod/shoal-leaf-0', 'pod/shoal-leaf-1']);
    expect(leafOf([c.sts]).image).toBe(NEW_IMAGE);
    for (const name of ['shoal-leaf-0', 'shoal-leaf-1']) {
      const pod = c.pods.get(name);
      expect(leafImage(pod)).toBe(NEW_IMAGE);
      expect(pod.status.containerStatuses[0]).toMatchObject({ restartCount: 1, ready: true, imageID: `sha256:${NEW_IMAGE}` });
      expect(pod.metadata.uid).toMatch(/^uid-[12]$/); // the same Pods: nothing was deleted
    }
    expect(c.prepulls.map(({ node, image }) => ({ node, image }))).toEqual([{ node: 'node-a', image: NEW_IMAGE }]); // once per node
    expect(r.stdout).toMatch(/shoal-leaf-1: back from shm in 40 ms with 1000 rows; every aggregator counts it healthy/);
    expect(r.stdout).toMatch(/done: all 2 leaves run/);

    // Run again: every Pod is on the image already.
    const again = await roll();
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/shoal-leaf-0: already on .*, skipped/);
    expect(patched(c).filter((p) => p.startsWith('pod/'))).toHaveLength(2);
  }, 30_000);

  it('stops at a leaf that came back from disk, leaving the next one untouched', async () => {
    const c = newCluster({ restore: 'disk', restartPolls: 0 });
    const r = await roll();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/shoal-leaf-0 came back from disk, not shared memory \(layout version 1002.*\); rerun with ALLOW_DISK=1/);
    expect(patched(c)).toEqual(['statefulset/shoal-leaf', 'pod/shoal-leaf-0']);
    expect(leafImage(c.pods.get('shoal-leaf-1'))).not.toBe(NEW_IMAGE);
  }, 30_000);

  it('gives up on a container that does not come back, within its bound, saying why', async () => {
    const c = newCluster({ restore: 'shm', restartPolls: null });
    const r = await roll({ LEAF_TIMEOUT_S: '2' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/shoal-leaf-0 did not come back within 2s \(restartCount 0 -> 0, ready false, .*waiting: ImagePullBackOff/);
    expect(patched(c)).toEqual(['statefulset/shoal-leaf', 'pod/shoal-leaf-0']);
  }, 30_000);

  it('refuses a StatefulSet that would replace its Pods, before it changes anything', async () => {
    const c = newCluster({ restore: 'shm', restartPolls: 0 }, (sts) => { sts.spec.updateStrategy = { type: 'RollingUpdate' }; });
    const r = await roll();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/has updateStrategy RollingUpdate.*set it to OnDelete first/);
    expect(patched(c)).toEqual([]);
  });
});
