/**
 * A simulated kubectl for test/kubernetes-manifest.test.ts: runs docs/deploy/k8s-roll.sh without a
 * cluster. It answers the calls the script makes from Pods built out of the manifest's templates,
 * evaluates its jsonpath templates and JSON patches on them, and plays the kubelet: a changed
 * image restarts the container in the same Pod.
 */
import { parse as parseYaml } from 'yaml';

/** Whether a label selector (non-empty) selects these labels. */
export const matches = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);
/** The leaf container of the StatefulSet among `list`. */
export const leafOf = (list: readonly { kind: string; spec?: any }[]) => list.find((o) => o.kind === 'StatefulSet')!.spec.template.spec.containers.find((c: any) => c.args[0] === 'leaf');
/** The value after `flag` in a container's args. */
export const argValue = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

export interface Scenario { restore: 'shm' | 'disk'; restartPolls: number | null }

export class FakeCluster {
  readonly calls: string[][] = [];
  readonly pods = new Map<string, any>();
  readonly prepulls: { name: string; node: string; image: string }[] = [];
  private readonly restarting = new Map<string, number>();
  private uidCount = 0;

  constructor(readonly sts: any, readonly deploy: any, readonly scenario: Scenario, replicas: number) {
    sts.spec.replicas = replicas;
    const leafName = leafOf([sts]).name as string;
    for (let i = 0; i < replicas; i++) {
      const spec = structuredClone(sts.spec.template.spec);
      this.pods.set(`${sts.metadata.name}-${i}`, {
        metadata: { name: `${sts.metadata.name}-${i}`, uid: `uid-${++this.uidCount}`, labels: { ...sts.spec.template.metadata.labels } },
        spec: { ...spec, nodeName: 'node-a' },
        status: { podIP: `10.0.0.${10 + i}`, containerStatuses: [{ name: leafName, restartCount: 0, ready: true, image: spec.containers[0].image, imageID: `sha256:${spec.containers[0].image}` }] },
      });
    }
    for (let i = 0; i < deploy.spec.replicas; i++) {
      this.pods.set(`${deploy.metadata.name}-5d8f-${i}`, {
        metadata: { name: `${deploy.metadata.name}-5d8f-${i}`, uid: `uid-${++this.uidCount}`, labels: { ...deploy.spec.template.metadata.labels } },
        spec: structuredClone(deploy.spec.template.spec), status: { podIP: `10.0.1.${i}` },
      });
    }
  }

  /** One kubectl call: exit code and output. */
  run(argv: string[], stdin: string): { code: number; stdout: string; stderr: string } {
    this.calls.push(argv);
    try {
      return { code: 0, stdout: this.answer(argv, stdin), stderr: '' };
    } catch (e) {
      return { code: 1, stdout: '', stderr: `error: ${(e as Error).message}\n` };
    }
  }

  private answer(argv: string[], stdin: string): string {
    const [nsFlag, ns, verb, ...rest] = argv;
    if (nsFlag !== '-n' || ns !== this.sts.metadata.namespace) throw new Error(`expected -n ${this.sts.metadata.namespace} first: ${argv.join(' ')}`);
    const opt = (name: string) => { const i = rest.indexOf(name); return i < 0 ? undefined : rest[i + 1]; };
    switch (verb) {
      case 'get': {
        // `get pod NAME` and `get pod/NAME` alike.
        if (rest[0]!.startsWith('pod/')) rest.splice(0, 1, 'pod', rest[0]!.slice('pod/'.length));
        const target = rest[0] === 'pod' ? this.pod(rest[1]!) : rest[0] === 'pods' ? { items: this.select(opt('-l')!) } : this.workload(rest[0]!);
        if (rest[0] === 'pod') this.kubelet(rest[1]!);
        const out = opt('-o')!;
        if (out === 'json') return JSON.stringify(target);
        if (!out.startsWith('jsonpath=')) throw new Error(`unexpected -o ${out}`);
        return jsonpath(target, out.slice('jsonpath='.length));
      }
      case 'patch': {
        if (!rest.includes('--type=json')) throw new Error('expected --type=json');
        const [kind, name] = rest[0]!.split('/');
        const target = kind === 'pod' ? this.pod(name!) : this.workload(rest[0]!);
        const before = JSON.stringify(target.spec.containers ?? []);
        applyJsonPatch(target, JSON.parse(opt('-p')!));
        if (kind === 'pod' && JSON.stringify(target.spec.containers) !== before) {
          // The kubelet stops the container and starts the new image in the same Pod.
          this.restarting.set(name!, this.scenario.restartPolls ?? Infinity);
        }
        return `${rest[0]} patched\n`;
      }
      case 'wait': {
        const pod = rest.find((a) => a.startsWith('pod/'));
        if (pod !== undefined) {
          if (!this.prepulls.some((p) => `pod/${p.name}` === pod)) throw new Error(`pods "${pod}" not found`);
          return `${pod} condition met\n`;
        }
        if (!rest.includes('--for=condition=Ready')) throw new Error(`unexpected wait ${rest.join(' ')}`);
        const pods = this.select(opt('-l')!);
        if (pods.length === 0) throw new Error('no matching resources found');
        if (pods.some((p) => p.status.containerStatuses?.[0]?.ready !== true)) throw new Error('timed out waiting for the condition');
        return '';
      }
      case 'exec': {
        const name = rest[0]!;
        const pod = this.pod(name);
        const cmd = rest.slice(rest.indexOf('--') + 1);
        const container = pod.spec.containers.find((c: any) => c.name === opt('-c'));
        if (container === undefined) throw new Error(`container ${opt('-c')} not found in pod ${name}`);
        const port = argValue(container.args, '--port');
        const want = [...container.command, 'status', '--url', `http://127.0.0.1:${port}`, '--json'];
        if (JSON.stringify(cmd) !== JSON.stringify(want)) throw new Error(`exec ${JSON.stringify(cmd)}, expected ${JSON.stringify(want)}`);
        if (container.args[0] === 'leaf') {
          const restarted = pod.status.containerStatuses[0].restartCount > 0;
          const source = restarted ? this.scenario.restore : 'disk';
          return JSON.stringify({ leafId: name, state: 'serving', rows: 1000, restart: { source, ms: source === 'shm' ? 40 : 9000, reason: source === 'shm' ? null : 'layout version 1002, this build reads 1001' } });
        }
        const leaves = [...this.pods.values()].filter((p) => matches(this.sts.spec.selector.matchLabels, p.metadata.labels)).map((p) => ({
          id: p.metadata.name, url: `http://${p.status.podIP}:${argValue(leafOf([this.sts]).args, '--port')}`,
          state: this.restarting.has(p.metadata.name) ? 'unhealthy' : 'healthy', memberState: 'serving', lastSeenMsAgo: 0, rows: 1000,
        }));
        return JSON.stringify({ role: 'aggregator', leaves });
      }
      case 'apply': {
        if (opt('-f') !== '-') throw new Error('expected -f -');
        const pod = parseYaml(stdin);
        if (pod.kind !== 'Pod' || typeof pod.spec?.nodeName !== 'string') throw new Error('expected a Pod with a nodeName');
        this.prepulls.push({ name: pod.metadata.name, node: pod.spec.nodeName, image: pod.spec.containers[0].image });
        return `pod/${pod.metadata.name} created\n`;
      }
      case 'delete':
        return `pod "${rest[1]}" deleted\n`;
      default:
        throw new Error(`unexpected kubectl ${verb}`);
    }
  }

  private pod(name: string): any {
    const pod = this.pods.get(name);
    if (pod === undefined) throw new Error(`pods "${name}" not found`);
    return pod;
  }

  private workload(ref: string): any {
    if (ref === `statefulset/${this.sts.metadata.name}`) return this.sts;
    if (ref === `deployment/${this.deploy.metadata.name}`) return this.deploy;
    throw new Error(`${ref} not found`);
  }

  private select(selector: string): any[] {
    const want = Object.fromEntries(selector.split(',').map((kv) => kv.split('=') as [string, string]));
    return [...this.pods.values()].filter((p) => matches(want, p.metadata.labels));
  }

  /** A restart in progress: not ready for a few looks, then the new container, ready. */
  private kubelet(name: string): void {
    const left = this.restarting.get(name);
    if (left === undefined) return;
    const pod = this.pods.get(name);
    const status = pod.status.containerStatuses[0];
    if (left > 0) {
      Object.assign(status, { ready: false, state: { waiting: { reason: left === Infinity ? 'ImagePullBackOff' : 'ContainerCreating' } } });
      this.restarting.set(name, left - 1);
      return;
    }
    const image = pod.spec.containers.find((c: any) => c.name === status.name).image;
    Object.assign(status, { ready: true, restartCount: status.restartCount + 1, image, imageID: `sha256:${image}`, state: { running: {} } });
    this.restarting.delete(name);
  }
}

/** The jsonpath subset the script uses: {.a.b}, [*], [n], [?(@.k=="v")]; missing keys print
 * nothing (kubectl's default), objects print as JSON, several results are joined by spaces. */
export function jsonpath(root: unknown, template: string): string {
  return template.replace(/\{([^{}]*)\}/g, (_m, expr: string) => {
    let values: any[] = [root];
    const step = /\.([A-Za-z0-9_]+)|\[\*\]|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_]+)=="([^"]*)"\)\]/y;
    for (step.lastIndex = 0; step.lastIndex < expr.length;) {
      const at = step.lastIndex;
      const m = step.exec(expr);
      if (m === null) throw new Error(`jsonpath ${expr}: cannot read from ${expr.slice(at)}`);
      if (m[1] !== undefined) values = values.flatMap((v) => (v?.[m[1]!] === undefined ? [] : [v[m[1]!]]));
      else if (m[0] === '[*]') values = values.flatMap((v) => (Array.isArray(v) ? v : []));
      else if (m[2] !== undefined) values = values.flatMap((v) => (Array.isArray(v) && v[Number(m[2])] !== undefined ? [v[Number(m[2])]] : []));
      else values = values.flatMap((v) => (Array.isArray(v) ? v.filter((e) => e?.[m[3]!] === m[4]) : []));
    }
    return values.map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v))).join(' ');
  });
}

/** RFC 6902 `test` and `replace`: what the script sends. */
export function applyJsonPatch(target: any, ops: { op: string; path: string; value: unknown }[]): void {
  for (const { op, path: pointer, value } of ops) {
    const keys = pointer.split('/').slice(1).map((k) => k.replaceAll('~1', '/').replaceAll('~0', '~'));
    const parent = keys.slice(0, -1).reduce((o, k) => o?.[k], target);
    const key = keys[keys.length - 1]!;
    if (parent === undefined || parent === null || !(key in parent)) throw new Error(`The request is invalid: path ${pointer} does not exist`);
    if (op === 'test') { if (JSON.stringify(parent[key]) !== JSON.stringify(value)) throw new Error(`The request is invalid: test of ${pointer} failed`); } else if (op === 'replace') parent[key] = value;
    else throw new Error(`unexpected op ${op}`);
  }
}

