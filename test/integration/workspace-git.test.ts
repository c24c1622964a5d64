// Task workspaces with real git (agent/engines/workspace-git.ts): clones of local repositories,
// the changes as artifacts in a fauxqs bucket (read back and checked), pushes to a bare repository.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { SFNClient } from '@aws-sdk/client-sfn';
import { ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoints } from '../../agent/checkpoint.ts';
import { CommandDriver } from '../../agent/drivers/command.ts';
import type { DriverResult } from '../../agent/drivers/types.ts';
import {
  DIFF_ARTIFACT,
  NEW_FILES_ARTIFACT,
  type Run,
  WorkspaceGit,
  isCommitId,
  prepareWorkspace,
  run as realRun,
} from '../../agent/engines/workspace-git.ts';
import { RepositoryMirrors } from '../../agent/engines/repository-mirrors.ts';
import { resolveRunAs } from '../../agent/run-as.ts';
import { Worker, type WorkerDeps } from '../../agent/worker.ts';
import { Workspaces } from '../../agent/workspace.ts';
import { PayloadStore } from '../../core/aws/payload-store.ts';
import type { Task } from '../../core/plan.ts';
import type { ExecutionRecord, TaskRecord } from '../../core/records.ts';
import { startFauxqs127, type RunningFauxqs } from '../../local/services/fauxqs.ts';
import { LOCAL_CLIENT } from '../support/emulators.ts';
import { waitFor } from '../support/processes.ts';

const BUCKET = 'xlt-artifacts';
const IDS = { executionId: 'ex-1', taskId: 'code', attempt: 1 };
let fauxqs: RunningFauxqs;
let s3: S3Client;
let payloads: PayloadStore;
let scratch: string;
/** A bare "origin" with a `main` branch (two commits) and a `v1` tag on the first. */
let origin: string;
let firstCommit: string;
let n = 0;

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'safe.directory=*', '-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, encoding: 'utf8' }).trim();

async function freshWorkspace(): Promise<string> {
  const dir = join(scratch, 'ws', `t${++n}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

async function getObject(uri: string): Promise<Buffer> {
  const key = uri.slice(`s3://${BUCKET}/`.length);
  const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

function counting(): { run: Run; calls: string[][] } {
  const calls: string[][] = [];
  return { calls, run: (cmd, args, opts) => (calls.push([cmd, ...args]), realRun(cmd, args, opts)) };
}

const completed: DriverResult = { status: 'completed', output: {} };

beforeAll(async () => {
  fauxqs = await startFauxqs127();
  s3 = new S3Client({ ...LOCAL_CLIENT, endpoint: fauxqs.endpoint, forcePathStyle: true });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  payloads = new PayloadStore(s3, BUCKET);
  scratch = await mkdtemp(join(tmpdir(), 'xl-wsgit-test-'));
  await chmod(scratch, 0o755);

  const seed = join(scratch, 'seed');
  await mkdir(seed);
  git(seed, 'init', '--quiet', '--initial-branch=main');
  await writeFile(join(seed, 'README.md'), 'one\n');
  await writeFile(join(seed, 'logo.bin'), Buffer.from([0, 1, 2, 3, 255]));
  git(seed, 'add', '-A');
  git(seed, 'commit', '--quiet', '-m', 'first');
  firstCommit = git(seed, 'rev-parse', 'HEAD');
  git(seed, 'tag', 'v1');
  await writeFile(join(seed, 'README.md'), 'one\ntwo\n');
  git(seed, 'commit', '--quiet', '-am', 'second');
  origin = join(scratch, 'origin.git');
  git(scratch, 'clone', '--quiet', '--bare', seed, origin);
}, 60_000);

afterAll(async () => {
  await fauxqs?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('clone', () => {
  it('clones a branch (file:// URL) with the git directory outside the workspace', async () => {
    const ws = await freshWorkspace();
    const wg = new WorkspaceGit({ payloads });
    const { checkout, failed } = await wg.clone({ repository: `file://${origin}`, ref: 'main' }, ws);
    expect(failed).toBeUndefined();
    expect(await readFile(join(ws, 'README.md'), 'utf8')).toBe('one\ntwo\n');
    expect(checkout!.privateDir).toBe(`${ws}.git`);
    expect((await stat(checkout!.privateDir)).mode & 0o777).toBe(0o700);
    expect(checkout!.gitDir.startsWith(`${checkout!.privateDir}/`)).toBe(true);
    expect(git(ws, `--git-dir=${checkout!.gitDir}`, 'rev-parse', '--is-shallow-repository')).toBe('true');
  });

  it('clones a tag, and a commit (full clone, detached)', async () => {
    const wg = new WorkspaceGit({ payloads });
    const tagged = await freshWorkspace();
    expect((await wg.clone({ repository: origin, ref: 'v1' }, tagged)).failed).toBeUndefined();
    expect(await readFile(join(tagged, 'README.md'), 'utf8')).toBe('one\n');

    const ws = await freshWorkspace();
    const { checkout, failed } = await wg.clone({ repository: origin, ref: firstCommit }, ws);
    expect(failed).toBeUndefined();
    expect(await readFile(join(ws, 'README.md'), 'utf8')).toBe('one\n');
    expect(git(ws, `--git-dir=${checkout!.gitDir}`, 'rev-parse', 'HEAD')).toBe(firstCommit);
    expect(isCommitId(firstCommit.slice(0, 7))).toBe(true);
    expect(isCommitId('main')).toBe(false);
  });

  it('fails as permanent on a missing repository or a bad ref, with git\'s last line', async () => {
    const wg = new WorkspaceGit({ payloads });
    const missing = await wg.clone({ repository: join(scratch, 'nope.git') }, await freshWorkspace());
    expect(missing.failed).toMatchObject({ status: 'failed', error: { type: 'permanent' } });
    const message = (missing.failed as Extract<DriverResult, { status: 'failed' }>).error.message;
    expect(message).toMatch(/^the repository could not be cloned: .*nope\.git/);
    expect(message).not.toContain('\n');

    const badRef = await wg.clone({ repository: origin, ref: 'no-such-branch' }, await freshWorkspace());
    expect(badRef.failed).toMatchObject({ error: { type: 'permanent', message: expect.stringContaining('no-such-branch') } });
    const badCommit = await wg.clone({ repository: origin, ref: 'deadbeefdeadbeef' }, await freshWorkspace());
    expect(badCommit.failed).toMatchObject({ error: { type: 'permanent' } });
    expect(badCommit.checkout?.privateDir).toBeDefined(); // for the worker to remove
  });

  it('makes no git call for a task without a repository', async () => {
    const { run, calls } = counting();
    const prepared = await prepareWorkspace(new WorkspaceGit({ payloads, run }), {}, await freshWorkspace());
    expect(prepared).toEqual({});
    expect(calls).toEqual([]);
    // and an agent without git fails tasks that need it
    expect((await prepareWorkspace(undefined, { workspace: { repository: origin } }, await freshWorkspace())).failed).toMatchObject({
      error: { type: 'permanent' },
    });
  });
});

describe('warm mirror', () => {
  /** A repository with some history: ten commits rewriting 400 files of 4 KB of noise each. */
  async function bigOrigin(name: string): Promise<string> {
    const seed = join(scratch, `${name}-seed`);
    await mkdir(seed);
    git(seed, 'init', '--quiet', '--initial-branch=main');
    for (let c = 0; c < 10; c++) {
      await Promise.all(Array.from({ length: 400 }, (_, i) => writeFile(join(seed, `f${i}.txt`), randomBytes(3000).toString('base64'))));
      git(seed, 'add', '-A');
      git(seed, 'commit', '--quiet', '-m', `c${c}`);
    }
    const bare = join(scratch, `${name}.git`);
    git(scratch, 'clone', '--quiet', '--bare', seed, bare);
    return bare;
  }

  it('clones from the mirror what is new on the origin, with the origin as the remote', async () => {
    const mirrors = new RepositoryMirrors({ root: join(scratch, 'mirrors-a') });
    const wg = new WorkspaceGit({ payloads, mirrors });
    const source = join(scratch, 'moving.git');
    git(scratch, 'clone', '--quiet', '--bare', origin, source);
    const repository = `file://${source}`;
    expect((await wg.clone({ repository, ref: 'main' }, await freshWorkspace())).failed).toBeUndefined();
    expect((await stat(join(scratch, 'mirrors-a'))).mode & 0o777).toBe(0o700);

    // A new commit on the origin: the next clone has it.
    const work = join(scratch, 'moving-work');
    git(scratch, 'clone', '--quiet', source, work);
    await writeFile(join(work, 'README.md'), 'three\n');
    git(work, 'commit', '--quiet', '-am', 'third');
    git(work, 'push', '--quiet', 'origin', 'main');
    const ws = await freshWorkspace();
    const { checkout, failed } = await wg.clone({ repository, ref: 'main' }, ws);
    expect(failed).toBeUndefined();
    expect(await readFile(join(ws, 'README.md'), 'utf8')).toBe('three\n');
    expect(git(ws, `--git-dir=${checkout!.gitDir}`, 'remote', 'get-url', 'origin')).toBe(repository);
    // A commit, too (the mirror has the whole history).
    const pinned = await wg.clone({ repository, ref: firstCommit }, await freshWorkspace());
    expect(git(scratch, `--git-dir=${pinned.checkout!.gitDir}`, 'rev-parse', 'HEAD')).toBe(firstCommit);
    expect(mirrors.totalBytes).toBeGreaterThan(0);
  });

  it('fails a missing repository as the plain clone does', async () => {
    const wg = new WorkspaceGit({ payloads, mirrors: new RepositoryMirrors({ root: join(scratch, 'mirrors-b') }) });
    const missing = await wg.clone({ repository: join(scratch, 'nope.git') }, await freshWorkspace());
    expect(missing.failed).toMatchObject({ status: 'failed', error: { type: 'permanent', message: expect.stringMatching(/nope\.git/) } });
  });

  it('keeps its mirrors within their size, the least recently used going first', async () => {
    const mirrors = new RepositoryMirrors({ root: join(scratch, 'mirrors-c'), maxBytes: 1 });
    const wg = new WorkspaceGit({ payloads, mirrors });
    await wg.clone({ repository: `file://${origin}` }, await freshWorkspace());
    // Over its bound at once: nothing in use is kept.
    expect(mirrors.totalBytes).toBe(0);
    const roomy = new RepositoryMirrors({ root: join(scratch, 'mirrors-d') });
    await new WorkspaceGit({ payloads, mirrors: roomy }).clone({ repository: `file://${origin}` }, await freshWorkspace());
    expect(roomy.totalBytes).toBeGreaterThan(0);
  });

  // How much faster is the benchmark's (bench/run.ts "affinity"): here, that a warm clone takes its
  // objects from the mirror (hard links to the mirror's packs) instead of fetching them again.
  it('makes a warm clone from the mirror: its objects are the mirror\'s, linked, not fetched again', async () => {
    const repository = `file://${await bigOrigin('big')}`;
    const root = join(scratch, 'mirrors-e');
    const warm = new WorkspaceGit({ payloads, mirrors: new RepositoryMirrors({ root }) });
    await warm.clone({ repository, ref: 'main' }, await freshWorkspace()); // fills the mirror
    const ws = await freshWorkspace();
    const { checkout, failed } = await warm.clone({ repository, ref: 'main' }, ws);
    expect(failed).toBeUndefined();
    const packs = await findFiles(checkout!.gitDir, (f) => f.endsWith('.pack'));
    expect(packs.length).toBeGreaterThan(0);
    for (const pack of packs) expect((await stat(pack)).nlink, pack).toBeGreaterThan(1);
  }, 60_000);
});

describe('artifacts and push', () => {
  /** A coder-style command: edits a tracked file (and a binary one), adds new files. */
  const CODER = [
    'printf "one\\ntwo\\nthree\\n" > README.md',
    'printf "\\001\\002\\000" > logo.bin',
    'mkdir -p src && echo "export const x = 1;" > src/new.ts',
    'printf "\\377\\376" > src/blob.bin',
  ].join(' && ');

  async function runCoder(ws: string, runAs?: ReturnType<typeof resolveRunAs>): Promise<DriverResult> {
    const driver = new CommandDriver(runAs ? { runAs } : {});
    const task = { id: 'code', agentType: 'coder', command: CODER, timeoutSeconds: 30 } as unknown as Task;
    return driver.run(task, { workspace: ws, input: {}, signal: new AbortController().signal, env: {}, onSpawn() {} });
  }

  async function checkArtifacts(result: DriverResult, attempt: number) {
    expect(result.status).toBe('completed');
    const artifacts = (result as Extract<DriverResult, { status: 'completed' }>).artifacts!;
    expect(artifacts.map((a) => a.name)).toEqual([DIFF_ARTIFACT, NEW_FILES_ARTIFACT]);
    for (const a of artifacts) expect(a.uri).toBe(`s3://${BUCKET}/artifacts/ex-1/code/${attempt}/${a.name}`);

    // The diff, read back, applies to a fresh clone and gives the command's tree.
    const diff = await getObject(artifacts[0]!.uri);
    expect(diff.length).toBe(artifacts[0]!.bytes);
    const fresh = join(scratch, `fresh-${++n}`);
    git(scratch, 'clone', '--quiet', origin, fresh);
    await writeFile(join(scratch, 'w.diff'), diff);
    git(fresh, 'apply', '--binary', join(scratch, 'w.diff'));
    expect(await readFile(join(fresh, 'README.md'), 'utf8')).toBe('one\ntwo\nthree\n');
    expect(await readFile(join(fresh, 'logo.bin'))).toEqual(Buffer.from([1, 2, 0]));
    expect(await readFile(join(fresh, 'src/blob.bin'))).toEqual(Buffer.from([0xff, 0xfe]));

    // The tarball has the new files only.
    const tarball = await getObject(artifacts[1]!.uri);
    expect(tarball.length).toBe(artifacts[1]!.bytes);
    await writeFile(join(scratch, 'n.tgz'), tarball);
    const listed = execFileSync('tar', ['-tzf', join(scratch, 'n.tgz')], { encoding: 'utf8' }).trim().split('\n').sort();
    expect(listed).toEqual(['src/blob.bin', 'src/new.ts']);
  }

  it('stores a diff that applies and a tarball of the new files', async () => {
    const wg = new WorkspaceGit({ payloads });
    const ws = await freshWorkspace();
    const { checkout } = await wg.clone({ repository: origin, ref: 'main' }, ws);
    const result = await wg.collect(checkout!, IDS, await runCoder(ws));
    await checkArtifacts(result, 1);
  });

  it('as root, hands the clone to the command\'s user and still collects (safe.directory)', async (ctx) => {
    if (process.getuid?.() !== 0) return ctx.skip();
    const runAs = resolveRunAs(undefined)!;
    const wg = new WorkspaceGit({ payloads, owner: runAs });
    const ws = await freshWorkspace();
    const { checkout } = await wg.clone({ repository: origin, ref: 'main' }, ws);
    expect((await stat(join(ws, 'README.md'))).uid).toBe(runAs.uid);
    expect((await stat(checkout!.privateDir)).uid).toBe(0);
    const result = await wg.collect(checkout!, { ...IDS, attempt: 2 }, await runCoder(ws, runAs));
    await checkArtifacts(result, 2);
  });

  it('produces no artifacts when nothing changed, and passes failures through', async () => {
    const { run, calls } = counting();
    const wg = new WorkspaceGit({ payloads, run });
    const ws = await freshWorkspace();
    const { checkout } = await wg.clone({ repository: origin }, ws);
    expect(await wg.collect(checkout!, IDS, completed)).toEqual(completed);
    const failure: DriverResult = { status: 'failed', error: { type: 'permanent', message: 'x' } };
    const before = calls.length;
    expect(await wg.collect(checkout!, IDS, failure)).toBe(failure);
    expect(calls.length).toBe(before);
  });

  it('commits and pushes to pushBranch of the origin', async () => {
    const wg = new WorkspaceGit({ payloads });
    const ws = await freshWorkspace();
    const { checkout } = await wg.clone({ repository: `file://${origin}`, ref: 'main', pushBranch: 'xl/code' }, ws);
    const result = await wg.collect(checkout!, IDS, await runCoder(ws));
    expect(result.status).toBe('completed');
    expect(git(origin, 'log', '-1', '--format=%an <%ae>|%s', 'xl/code')).toBe('xl agent <agent@xl.local>|xl: task code (execution ex-1, attempt 1)');
    expect(git(origin, 'rev-parse', 'xl/code~1')).toBe(git(origin, 'rev-parse', 'main'));
    expect(git(origin, 'show', 'xl/code:src/new.ts')).toBe('export const x = 1;');
  });

  it('fails as dependency when the push is refused', async () => {
    const wg = new WorkspaceGit({ payloads });
    const ws = await freshWorkspace();
    // From the first commit, pushing to main (which has moved on) is not a fast-forward.
    const { checkout } = await wg.clone({ repository: origin, ref: firstCommit, pushBranch: 'main' }, ws);
    const result = await wg.collect(checkout!, IDS, await runCoder(ws));
    expect(result).toMatchObject({ status: 'failed', error: { type: 'dependency', message: expect.stringContaining('could not be pushed to main') } });
  });

  it('feeds the secret to git through the credential helper, not the arguments', async () => {
    const { run, calls } = counting();
    const secrets: string[] = [];
    const wg = new WorkspaceGit({ payloads, run, resolveSecret: async (name) => (secrets.push(name), 's3cr3t-token') });
    const ws = await freshWorkspace();
    const { checkout, failed } = await wg.clone({ repository: origin, credentialsSecret: 'git/token' }, ws);
    expect(failed).toBeUndefined();
    expect(secrets).toEqual(['git/token']);
    expect(JSON.stringify(calls)).not.toContain('s3cr3t-token');
    // What git would send to an HTTPS remote: ask the configured helper as git does.
    const helper = calls[0]!.find((a) => a.startsWith('credential.helper=!'))!;
    const answer = execFileSync('git', ['-c', 'credential.helper=', '-c', helper, 'credential', 'fill'], {
      cwd: ws,
      input: 'protocol=https\nhost=git.example.com\n\n',
      env: { PATH: process.env.PATH!, XL_GIT_TOKEN: checkout!.token!, GIT_TERMINAL_PROMPT: '0' },
      encoding: 'utf8',
    });
    expect(answer).toContain('password=s3cr3t-token');
    // The secret is not in the workspace or its git directory's config.
    expect(await readFile(join(checkout!.gitDir, 'config'), 'utf8')).not.toContain('s3cr3t');

    const noSecret = await new WorkspaceGit({ payloads }).clone({ repository: origin, credentialsSecret: 'x' }, await freshWorkspace());
    expect(noSecret.failed).toMatchObject({ error: { type: 'permanent' } });
  });
});

describe('checkpoints of a repository workspace', () => {
  it('a handed-back run\'s changes (edits, binary files, new files) are restored onto a fresh clone, as the command\'s user', async (ctx) => {
    if (process.getuid?.() !== 0) return ctx.skip();
    const runAs = resolveRunAs(undefined)!;
    const wg = new WorkspaceGit({ payloads, owner: runAs });
    const checkpoints = new Checkpoints({ payloads, git: wg, owner: runAs });
    const ws = await freshWorkspace();
    const { checkout } = await wg.clone({ repository: origin, ref: 'main' }, ws);
    const driver = new CommandDriver({ runAs });
    const edit = 'printf "one\\nhalf\\n" > README.md && printf "\\377\\000" > logo.bin && mkdir -p src && echo "wip" > src/next.ts';
    const task = { id: 'code', agentType: 'coder', command: edit, timeoutSeconds: 30 } as unknown as Task;
    expect((await driver.run(task, { workspace: ws, input: {}, signal: new AbortController().signal, env: {}, onSpawn() {} })).status).toBe('completed');
    const home = `${ws}.home`;
    await mkdir(home, { mode: 0o700 });

    const saved = await checkpoints.save({ workspace: ws, home, checkout: checkout! }, IDS, 'session-1');
    expect(saved).toMatchObject({ key: 'checkpoints/ex-1/code/1.tar.gz', attempt: 1, sessionId: 'session-1' });

    const ws2 = await freshWorkspace();
    const { checkout: fresh } = await wg.clone({ repository: origin, ref: 'main' }, ws2);
    await mkdir(`${ws2}.home`, { mode: 0o700 });
    expect(await checkpoints.restore(saved!, { workspace: ws2, home: `${ws2}.home`, checkout: fresh! })).toEqual({ sessionId: 'session-1' });
    expect(await readFile(join(ws2, 'README.md'), 'utf8')).toBe('one\nhalf\n');
    expect(await readFile(join(ws2, 'logo.bin'))).toEqual(Buffer.from([0xff, 0]));
    expect(await readFile(join(ws2, 'src/next.ts'), 'utf8')).toBe('wip\n');
    expect((await stat(join(ws2, 'src/next.ts'))).uid).toBe(runAs.uid); // the command's, not root's
  });

  it('an unchanged workspace without a session saves nothing', async () => {
    const wg = new WorkspaceGit({ payloads });
    const ws = await freshWorkspace();
    const { checkout } = await wg.clone({ repository: origin, ref: 'main' }, ws);
    await mkdir(`${ws}.home`);
    expect(await new Checkpoints({ payloads, git: wg }).save({ workspace: ws, home: `${ws}.home`, checkout: checkout! }, IDS, undefined)).toBeUndefined();
  });

  it('refuses a checkpoint over its size limit', async () => {
    const ws = await freshWorkspace();
    await writeFile(join(ws, 'big.bin'), randomBytes(64 * 1024));
    await mkdir(`${ws}.home`);
    await expect(new Checkpoints({ payloads, maxBytes: 1024 }).save({ workspace: ws, home: `${ws}.home` }, IDS, undefined)).rejects.toThrow(/over the 1024-byte limit/);
  });
});

describe('through the Worker', () => {
  /**
   * One task through a Worker whose AWS ports are fakes (one message on the coder queue, a claim
   * that succeeds): what finishClaim records, and whether the workspace root is left clean.
   */
  async function runTask(definition: Task, git: WorkerDeps['git']): Promise<{ finished: Record<string, unknown>; root: string }> {
    const executionId = 'ex-w';
    const record = {
      executionId, index: 0, taskId: definition.id, stage: 0, agentType: 'coder', priority: 'normal', timeoutSeconds: 30,
      failureStrategy: 'stop', definition: { inline: definition }, status: 'running', attempts: 1, dispatchSeq: 1, retries: {},
    } as unknown as TaskRecord;
    const execution = { executionId, pattern: 'sequential', input: { inline: {} } } as unknown as ExecutionRecord;
    let delivered = false;
    let finished: Record<string, unknown> | undefined;
    let resolveFinished!: () => void;
    const done = new Promise<void>((r) => (resolveFinished = r));
    const sqs = {
      send: async (cmd: unknown) => {
        if (cmd instanceof ReceiveMessageCommand) {
          if (!delivered && cmd.input.QueueUrl!.endsWith('coder-normal')) {
            delivered = true;
            const body = { executionId, taskIndex: 0, dispatchSeq: 1, dispatchTimeoutSeconds: 60, taskToken: 'tok' };
            return { Messages: [{ Body: JSON.stringify(body), ReceiptHandle: 'rh', MessageId: 'm1' }] };
          }
          await new Promise((r) => setTimeout(r, 50));
          return { Messages: [] };
        }
        return {};
      },
    } as unknown as SQSClient;
    const root = join(scratch, `worker-ws-${++n}`);
    const worker = new Worker(
      { agentId: 'coder-1', agentType: 'coder', slots: 1, queueUrlPrefix: 'http://q/000/xlt-', heartbeatIntervalMs: 5000, graceMs: 0, runtime: { kind: 'process', pid: process.pid } },
      {
        executions: {
          claimTask: async () => ({ claimed: true, task: record }),
          renewLease: async () => true,
          handBack: async () => true,
          addSpend: async () => {},
          finishClaim: async (_e, _i, _c, result) => ((finished = result as Record<string, unknown>), resolveFinished(), true),
          getExecution: async () => execution,
          getTask: async () => record,
          listTasks: async () => [record],
          getCachedResult: async () => undefined,
          putCachedResult: async () => {},
        },
        payloads,
        agents: { put: async () => {}, get: async () => undefined, heartbeat: async () => true, setStatus: async () => true } as unknown as WorkerDeps['agents'],
        breaker: { recordSuccess: async () => {} } as unknown as WorkerDeps['breaker'],
        sqs,
        sfn: { send: async () => ({}) } as unknown as SFNClient,
        drivers: { command: new CommandDriver() },
        workspaces: new Workspaces(root),
        ...(git ? { git } : {}),
      },
    );
    await worker.start();
    await done;
    await worker.stop({ graceful: true });
    return { finished: finished!, root };
  }

  const coderTask = (extra: Partial<Task>): Task =>
    ({ id: 'wt', agentType: 'coder', command: 'echo changed >> README.md && echo new > added.txt', timeoutSeconds: 30, failureStrategy: 'stop', priority: 'normal', ...extra }) as Task;

  it('clones, runs, records the artifacts and pushes; leaves nothing behind', async () => {
    const { finished, root } = await runTask(coderTask({ workspace: { repository: origin, ref: 'main', pushBranch: 'xl/worker' } }), new WorkspaceGit({ payloads }));
    expect(finished).toMatchObject({ status: 'completed' });
    const artifacts = finished.artifacts as { name: string; uri: string; bytes: number }[];
    expect(artifacts.map((a) => a.name)).toEqual([DIFF_ARTIFACT, NEW_FILES_ARTIFACT]);
    expect(artifacts[0]!.uri).toBe(`s3://${BUCKET}/artifacts/ex-w/wt/1/${DIFF_ARTIFACT}`);
    expect((await getObject(artifacts[0]!.uri)).toString()).toContain('+changed');
    expect(git(origin, 'show', 'xl/worker:added.txt')).toBe('new');
    // Removals run after the report.
    await waitFor(() => execFileSync('ls', ['-A', root], { encoding: 'utf8' }) === '');
  });

  it('fails a task whose clone fails as permanent, without running its command', async () => {
    const marker = join(scratch, `ran-${++n}`);
    const { finished } = await runTask(coderTask({ command: `touch ${marker}`, workspace: { repository: join(scratch, 'missing.git') } }), new WorkspaceGit({ payloads }));
    expect(finished).toMatchObject({ status: 'failed', error: { type: 'permanent', message: expect.stringContaining('could not be cloned') } });
    await expect(stat(marker)).rejects.toThrow();
  });

  it('makes no git call for a task without a workspace', async () => {
    const { run, calls } = counting();
    const { finished } = await runTask(coderTask({ command: 'true' }), new WorkspaceGit({ payloads, run }));
    expect(finished).toMatchObject({ status: 'completed' });
    expect(finished.artifacts).toBeUndefined();
    expect(calls).toEqual([]);
  });
});

/** Files under `dir` (recursively) whose path passes `keep`. */
async function findFiles(dir: string, keep: (path: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await findFiles(path, keep)));
    else if (keep(path)) out.push(path);
  }
  return out;
}
