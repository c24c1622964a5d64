// A stand-in Kubernetes API server: the few endpoints the kubernetes runtime (core/kubernetes-runtime.ts)
// calls, spoken over HTTP as the real one speaks them, so that the runtime is tested through the real
// client library. It plays the Job controller (a created Job gets one pod, Pending) and the garbage
// collector (a Job deleted in the background takes its pods), and the kubelet's graceful deletion: a
// running pod deleted with a grace period stays, terminating, until the test ends its process
// (terminate()) or the grace is over; a pod that runs nothing goes at once.
// No API server can run on these machines (../shared/notes/containers.md); this is not one.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig, type V1Job, type V1Pod } from '@kubernetes/client-node';

export interface Recorded {
  method: string;
  path: string;
  query: Record<string, string>;
  body?: unknown;
}

const status = (code: number, reason: string, message: string, details?: object) => ({
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message,
  reason,
  ...(details ? { details } : {}),
  code,
});

const matches = (labels: Record<string, string> | undefined, selector: string | undefined) =>
  !selector ||
  selector.split(',').every((term) => {
    const [k, v] = term.split('=');
    return labels?.[k!] === v;
  });

export class StandInKubeApi {
  readonly namespaces = new Set<string>();
  /** `namespace/name` of the service accounts that exist. */
  readonly serviceAccounts = new Set<string>();
  /** `verb resource` pairs RBAC denies (SelfSubjectAccessReview answers, and the calls themselves). */
  readonly denied = new Set<string>();
  /** A cluster that has taken away the right to ask what one may do (system:basic-user). */
  reviewsForbidden = false;
  /** Reading namespaces is cluster-wide: a namespaced Role does not give it. */
  namespaceReadForbidden = false;
  /** A message with which the pod admission refuses every pod (Pod Security, a quota). */
  refusePods?: string;
  readonly jobs = new Map<string, V1Job>();
  readonly pods = new Map<string, V1Pod>();
  readonly requests: Recorded[] = [];
  private readonly watchers = new Set<{ ns: string; selector?: string; res: ServerResponse }>();
  private server?: Server;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((ok) => this.server!.listen(0, '127.0.0.1', () => ok()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.res.end();
    this.server?.closeAllConnections();
    await new Promise<void>((ok) => (this.server ? this.server.close(() => ok()) : ok()));
  }

  /** A kubeconfig whose current context is this server, as a user's file would say it. */
  kubeConfig(namespace?: string): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'stand-in', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'tester', token: 'stand-in-token' }],
      contexts: [{ name: 'stand-in', cluster: 'stand-in', user: 'tester', ...(namespace ? { namespace } : {}) }],
      currentContext: 'stand-in',
    });
    return kc;
  }

  podsOf(jobName: string): V1Pod[] {
    return [...this.pods.values()].filter((p) => p.metadata?.labels?.['job-name'] === jobName);
  }

  /** The kubelet reports a phase (and the container's exit code when it ended). */
  setPhase(podName: string, phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown', exitCode?: number): void {
    const pod = this.pods.get(podName)!;
    pod.status = {
      phase,
      ...(exitCode !== undefined ? { containerStatuses: [{ name: 'agent', image: '', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode } } }] } : {}),
    };
    this.emit('MODIFIED', pod);
  }

  /** The process of a terminating pod exits: the pod object goes. */
  terminate(podName: string): void {
    const pod = this.pods.get(podName);
    if (!pod) return;
    this.pods.delete(podName);
    this.emit('DELETED', pod);
  }

  private emit(type: string, pod: V1Pod): void {
    for (const w of this.watchers) {
      if (w.ns === pod.metadata?.namespace && matches(pod.metadata?.labels, w.selector)) w.res.write(JSON.stringify({ type, object: pod }) + '\n');
    }
  }

  private deletePod(pod: V1Pod, grace: number): void {
    // The kubelet: a pod with no running container goes at once; a running one gets SIGTERM, and
    // SIGKILL when its grace is over (unless the test ends its process first).
    if (grace === 0 || pod.status?.phase !== 'Running') return this.terminate(pod.metadata!.name!);
    setTimeout(() => this.terminate(pod.metadata!.name!), grace * 1000).unref();
    // A shorter grace period may replace a longer one, never the reverse (as the API server does).
    const current = pod.metadata!.deletionGracePeriodSeconds;
    pod.metadata!.deletionGracePeriodSeconds = current === undefined ? grace : Math.min(current, grace);
    pod.metadata!.deletionTimestamp ??= new Date();
    this.emit('MODIFIED', pod);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
    const query = Object.fromEntries(url.searchParams);
    this.requests.push({ method: req.method!, path: url.pathname, query, ...(body ? { body } : {}) });
    const send = (code: number, payload: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(payload));
    };
    const p = url.pathname;
    let m: RegExpExecArray | null;

    if (p === '/version') return send(200, { major: '1', minor: '31', gitVersion: 'v1.31.0' });
    if (p === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews' && req.method === 'POST') {
      if (this.reviewsForbidden) return send(403, status(403, 'Forbidden', 'selfsubjectaccessreviews.authorization.k8s.io is forbidden: User "tester" cannot create resource "selfsubjectaccessreviews"'));
      const attrs = (body as { spec: { resourceAttributes: { verb: string; resource: string } } }).spec.resourceAttributes;
      return send(201, { ...body, status: { allowed: !this.denied.has(`${attrs.verb} ${attrs.resource}`) } });
    }
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(p))) {
      if (this.namespaceReadForbidden) return send(403, status(403, 'Forbidden', `namespaces "${m[1]}" is forbidden: User "tester" cannot get resource "namespaces"`));
      return this.namespaces.has(m[1]!) ? send(200, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: m[1] } }) : send(404, status(404, 'NotFound', `namespaces "${m[1]}" not found`, { name: m[1], kind: 'namespaces' }));
    }
    m = /^\/(?:api\/v1|apis\/batch\/v1)\/namespaces\/([^/]+)\/(jobs|pods)(?:\/([^/]+))?$/.exec(p);
    if (!m) return send(404, status(404, 'NotFound', `the stand-in does not serve ${req.method} ${p}`));
    const [, ns, resource, name] = m as unknown as [string, string, 'jobs' | 'pods', string | undefined];
    const verb = { GET: name ? 'get' : query.watch ? 'watch' : 'list', POST: 'create', DELETE: 'delete' }[req.method!] ?? '?';
    if (this.denied.has(`${verb} ${resource}`)) {
      return send(403, status(403, 'Forbidden', `${resource} is forbidden: User "tester" cannot ${verb} resource "${resource}" in the namespace "${ns}"`, { kind: resource }));
    }
    if (!this.namespaces.has(ns)) return send(404, status(404, 'NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' }));
    const store = resource === 'jobs' ? this.jobs : this.pods;

    if (req.method === 'POST') {
      const obj = body as V1Job & V1Pod;
      const objName = obj.metadata!.name!;
      if (resource === 'pods') {
        const sa = obj.spec?.serviceAccountName ?? 'default';
        if (!this.serviceAccounts.has(`${ns}/${sa}`)) {
          return send(403, status(403, 'Forbidden', `pods "${objName}" is forbidden: error looking up service account ${ns}/${sa}: serviceaccount "${sa}" not found`));
        }
        if (this.refusePods) return send(403, status(403, 'Forbidden', `pods "${objName}" is forbidden: ${this.refusePods}`));
      }
      if (query.dryRun === 'All') return send(201, obj);
      if (store.has(objName)) return send(409, status(409, 'AlreadyExists', `${resource} "${objName}" already exists`));
      const created = { ...obj, metadata: { ...obj.metadata, namespace: ns, uid: crypto.randomUUID(), creationTimestamp: new Date() } };
      store.set(objName, created);
      if (resource === 'jobs') {
        // The Job controller: one pod of the template, with the labels it adds.
        const job = created as V1Job;
        const podName = `${objName}-${crypto.randomUUID().slice(0, 5)}`;
        const pod: V1Pod = {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name: podName,
            namespace: ns,
            labels: { ...job.spec!.template.metadata?.labels, 'job-name': objName, 'batch.kubernetes.io/job-name': objName },
            ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: objName, uid: job.metadata!.uid!, controller: true }],
          },
          spec: job.spec!.template.spec,
          status: { phase: 'Pending' },
        };
        this.pods.set(podName, pod);
        this.emit('ADDED', pod);
      }
      return send(201, created);
    }
    if (req.method === 'GET' && name) {
      const obj = store.get(name);
      return obj ? send(200, obj) : send(404, status(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource }));
    }
    if (req.method === 'GET' && query.watch) {
      res.writeHead(200, { 'content-type': 'application/json' });
      const w = { ns, selector: query.labelSelector, res };
      this.watchers.add(w);
      req.socket.on('close', () => this.watchers.delete(w));
      // As the API server does for a watch from no resourceVersion: what exists, as ADDED.
      for (const pod of this.pods.values()) if (pod.metadata?.namespace === ns && matches(pod.metadata?.labels, query.labelSelector)) res.write(JSON.stringify({ type: 'ADDED', object: pod }) + '\n');
      return;
    }
    if (req.method === 'GET') {
      const items = [...store.values()].filter((o) => o.metadata?.namespace === ns && matches(o.metadata?.labels, query.labelSelector));
      return send(200, { apiVersion: resource === 'jobs' ? 'batch/v1' : 'v1', kind: resource === 'jobs' ? 'JobList' : 'PodList', metadata: {}, items });
    }
    if (req.method === 'DELETE' && name) {
      const obj = store.get(name);
      if (!obj) return send(404, status(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource }));
      const options = (body ?? {}) as { gracePeriodSeconds?: number; propagationPolicy?: string };
      if (resource === 'jobs') {
        this.jobs.delete(name);
        // The garbage collector deletes the dependents with their own grace period (Background).
        if ((query.propagationPolicy ?? options.propagationPolicy) !== 'Orphan') {
          for (const pod of this.podsOf(name)) this.deletePod(pod, pod.spec?.terminationGracePeriodSeconds ?? 30);
        }
      } else {
        const pod = obj as V1Pod;
        const grace = query.gracePeriodSeconds ?? options.gracePeriodSeconds;
        this.deletePod(pod, grace === undefined ? (pod.spec?.terminationGracePeriodSeconds ?? 30) : Number(grace));
      }
      return send(200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' });
    }
    return send(405, status(405, 'MethodNotAllowed', `${req.method} ${p}`));
  }
}
