// Repositories in a task's workspace (CONTRACT.md, Task.workspace; project issue #3). Before the
// driver runs, the worker clones `workspace.repository` at `ref` into the workspace; after it has
// completed, the workspace's changes go to the bucket as artifacts (a binary-safe diff and a
// tarball of the new files) and, with `pushBranch`, are committed and pushed to that branch.
//
// Git runs as the worker (it holds the credentials), never as the task's command, and never with a
// repository the command could have written to: the clone's git directory is kept out of the
// workspace (`--separate-git-dir`, in a 0700 sibling, `<workspace>.git`) and every later git call names
// it with `--git-dir`/`--work-tree`. A command that runs as another user (agent/run-as.ts) owns the
// work tree but cannot reach the git directory, so it cannot plant hooks, filters or config that
// git would then run as root. (That user cannot use git in the workspace itself; giving agents a
// git of their own is left for later.) The work tree is another user's, hence `safe.directory=*`.
//
// The token named by `credentialsSecret` reaches git through a credential helper that reads it from
// the git process's environment: never in an argument (visible in /proc/<pid>/cmdline), never in
// a file, never in the command's environment.
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { classifyGit } from '../../core/classify.ts';
import type { ErrorSource, ErrorType } from '../../core/errors.ts';
import type { PayloadStore } from '../../core/aws/payload-store.ts';
import type { Task } from '../../core/plan.ts';
import type { Artifact } from '../../core/records.ts';
import type { DriverResult } from '../drivers/types.ts';
import type { RepositoryMirrors } from './repository-mirrors.ts';

export type TaskWorkspace = NonNullable<Task['workspace']>;

// ---- running git ----------------------------------------------------------------------------------

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface RunOutput {
  stdout: Buffer;
  stderr: string;
}

/** A process that failed: its exit, and the last line of its stderr (what a person needs). */
export class RunError extends Error {
  constructor(
    readonly cmd: string,
    readonly lastLine: string,
    readonly timedOut: boolean,
  ) {
    super(lastLine);
    this.name = 'RunError';
  }
}

/** Runs a program to its end; throws a RunError when it fails or outlives its timeout. */
export type Run = (cmd: string, args: string[], opts?: RunOptions) => Promise<RunOutput>;

export const GIT_TIMEOUT_MS = 10 * 60 * 1000;
/** Diffs and listings read into memory stop here (the command's output would fail beyond). */
const MAX_BUFFER = 512 * 1024 * 1024;

export const run: Run = (cmd, args, opts = {}) =>
  new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      {
        cwd: opts.cwd,
        env: opts.env,
        timeout: opts.timeoutMs ?? GIT_TIMEOUT_MS,
        killSignal: 'SIGKILL',
        maxBuffer: MAX_BUFFER,
        encoding: 'buffer',
      },
      (err, stdout, stderr) => {
        const errText = stderr.toString('utf8');
        if (!err) return resolve({ stdout, stderr: errText });
        const lines = errText.split('\n').map((l) => l.trim()).filter(Boolean);
        const timedOut = (err as { killed?: boolean }).killed === true && err.signal === 'SIGKILL';
        const last = timedOut ? `${cmd} timed out` : (lines.at(-1) ?? err.message.split('\n')[0] ?? `${cmd} failed`);
        reject(new RunError(cmd, last, timedOut));
      },
    );
  });

// ---- the steps ------------------------------------------------------------------------------------

export interface WorkspaceGitDeps {
  /** Where artifacts go (`artifacts/<executionId>/<taskId>/<attempt>/<name>`). */
  payloads: Pick<PayloadStore, 'putBytes' | 'uri'>;
  /**
   * The token stored under a `credentialsSecret` name (core/secrets.ts: Secrets Manager, or the
   * local secrets file); without it, such tasks fail saying the agent cannot read the secret.
   */
  resolveSecret?: (name: string) => Promise<string>;
  /** The user commands run as (agent/run-as.ts): the cloned work tree is handed to it. */
  owner?: { uid: number; gid: number };
  run?: Run;
  timeoutMs?: number;
  /** The worker's warm mirrors (RepositoryMirrors): clones then fetch only what is new. */
  mirrors?: RepositoryMirrors;
}

/** What the clone step gives the worker: a checkout, or the task's failure (or both: remove the git directory). */
export interface Prepared {
  checkout?: Checkout;
  failed?: DriverResult;
}

/** A workspace with a clone in it. */
export interface Checkout {
  workTree: string;
  /** `<workspace>.git`, mode 0700, the worker's only: remove it with the workspace. */
  privateDir: string;
  /** The clone's git directory, in privateDir. */
  gitDir: string;
  spec: TaskWorkspace;
  /** The token, when the task names a secret (kept for the push). */
  token?: string;
}

export interface TaskIds {
  executionId: string;
  taskId: string;
  attempt: number;
}

export const AUTHOR = { name: 'xl agent', email: 'agent@xl.local' };
export const DIFF_ARTIFACT = 'workspace.diff';
export const NEW_FILES_ARTIFACT = 'new-files.tar.gz';

/** Answers git's `get` with the token in XL_GIT_TOKEN (set on the git process only). */
const CREDENTIAL_HELPER = '!f() { test "$1" = get || return 0; echo username=x-access-token; echo "password=$XL_GIT_TOKEN"; }; f';

const failed = (type: ErrorType, message: string, source: ErrorSource = 'git'): DriverResult => ({ status: 'failed', error: { type, source, message } });
const reason = (err: unknown) => (err instanceof RunError ? err.lastLine : err instanceof Error ? err.message : String(err));

export class WorkspaceGit {
  private readonly run: Run;

  constructor(private readonly deps: WorkspaceGitDeps) {
    this.run = deps.run ?? run;
  }

  /**
   * Clones the task's repository into the (empty) workspace. A failure (no such repository, bad
   * ref, a secret that cannot be read) is the task's: a permanent failure, the git error's last
   * line as its message. A clone that timed out is transient.
   */
  async clone(spec: TaskWorkspace, workspace: string): Promise<Prepared> {
    const privateDir = `${workspace}.git`;
    const gitDir = `${privateDir}/git`;
    let token: string | undefined;
    try {
      if (spec.credentialsSecret) {
        if (!this.deps.resolveSecret) throw new Error(`this agent cannot read the secret ${spec.credentialsSecret}`);
        token = await this.deps.resolveSecret(spec.credentialsSecret);
      }
    } catch (err) {
      return { failed: failed('permanent', `the repository credentials could not be read: ${reason(err)}`, 'agent') };
    }
    const checkout: Checkout = { workTree: workspace, privateDir, gitDir, spec, ...(token !== undefined ? { token } : {}) };
    try {
      await mkdir(privateDir, { mode: 0o700 });
      if (!(await this.cloneFromMirror(checkout))) await this.cloneFromOrigin(checkout);
      if (this.deps.owner) await this.run('chown', ['-R', `${this.deps.owner.uid}:${this.deps.owner.gid}`, workspace], { timeoutMs: this.deps.timeoutMs });
    } catch (err) {
      // The classifier tells a refused or missing repository (the plan's) from an unreachable host (a dependency).
      const error = classifyGit('clone', reason(err), { timedOut: err instanceof RunError && err.timedOut });
      return { failed: failed(error.type, `the repository could not be cloned: ${reason(err)}`), checkout };
    }
    return { checkout };
  }

  /** The plain clone: from the origin, shallow for a branch or tag. */
  private async cloneFromOrigin(checkout: Checkout): Promise<void> {
    const { spec, gitDir, workTree: workspace } = checkout;
    const ref = spec.ref;
    if (ref !== undefined && isCommitId(ref)) {
      await this.git(checkout, ['clone', '--quiet', '--no-checkout', `--separate-git-dir=${gitDir}`, '--', spec.repository, workspace], { bare: true });
      await this.git(checkout, ['checkout', '--quiet', '--detach', ref]);
    } else {
      const branch = ref !== undefined ? ['--branch', ref] : [];
      await this.git(checkout, ['clone', '--quiet', '--depth', '1', ...branch, `--separate-git-dir=${gitDir}`, '--', spec.repository, workspace], { bare: true });
    }
  }

  /**
   * The warm clone: the mirror fetches what is new from the origin (with this task's credentials,
   * so access is checked on every clone), then the workspace is a local clone of the mirror
   * (hard-linked objects: immutable, so the mirror may fetch, repack or be evicted meanwhile) whose
   * origin is then the repository itself, for a push. Any trouble with the mirror falls back to
   * the plain clone (false), after dropping a mirror that may be broken.
   */
  private async cloneFromMirror(checkout: Checkout): Promise<boolean> {
    const mirrors = this.deps.mirrors;
    if (!mirrors) return false;
    const { spec, gitDir, workTree: workspace } = checkout;
    try {
      return await mirrors.use(spec.repository, spec.credentialsSecret, async (dir, fresh) => {
        // A mirror's fetch refspec (+refs/*:refs/*) with --prune keeps it an exact copy of the origin.
        if (fresh) await this.git(checkout, ['clone', '--quiet', '--mirror', '--', spec.repository, dir], { bare: true });
        // Its origin is the repository (the mirror is keyed by it), with the mirror's refspec.
        else await this.git(checkout, [`--git-dir=${dir}`, 'fetch', '--quiet', '--prune', 'origin'], { bare: true });
        const ref = spec.ref;
        const commit = ref !== undefined && isCommitId(ref);
        const branch = ref !== undefined && !commit ? ['--branch', ref] : [];
        await this.git(checkout, ['clone', '--quiet', '--local', ...(commit ? ['--no-checkout'] : branch), `--separate-git-dir=${gitDir}`, '--', dir, workspace], { bare: true });
        await this.git(checkout, ['remote', 'set-url', 'origin', spec.repository]);
        if (commit) await this.git(checkout, ['checkout', '--quiet', '--detach', ref]);
        return true;
      });
    } catch (err) {
      mirrors.warn(spec.repository, reason(err));
      // A half-made clone is cleared for the plain one.
      await rm(gitDir, { recursive: true, force: true });
      for (const entry of await readdir(workspace)) await rm(join(workspace, entry), { recursive: true, force: true });
      return false;
    }
  }

  /** The commit the clone checked out (a result-cache key names it: a branch may move). */
  async head(checkout: Checkout): Promise<string> {
    return (await this.git(checkout, ['rev-parse', 'HEAD'])).stdout.toString('utf8').trim();
  }

  /**
   * After a completed driver: the workspace's changes as artifacts (added to the result), then,
   * with `pushBranch`, a commit pushed to that branch. Failed results pass through unchanged. An
   * artifact that cannot be written fails the task as transient; a push that fails, as dependency.
   */
  async collect(checkout: Checkout, ids: TaskIds, result: DriverResult): Promise<DriverResult> {
    if (result.status !== 'completed') return result;
    const keep = result.cost ? { cost: result.cost } : {};
    let artifacts: Artifact[];
    try {
      artifacts = await this.artifacts(checkout, ids);
    } catch (err) {
      return { ...failed('transient', `the workspace's changes could not be stored: ${reason(err)}`, 'agent'), ...keep };
    }
    if (checkout.spec.pushBranch) {
      try {
        // There is something to commit exactly when there is a diff (an artifact).
        await this.push(checkout, checkout.spec.pushBranch, ids, artifacts.length > 0);
      } catch (err) {
        const error = classifyGit('push', reason(err), { timedOut: err instanceof RunError && err.timedOut });
        return { ...failed(error.type, `the changes could not be pushed to ${checkout.spec.pushBranch}: ${reason(err)}`), ...keep };
      }
    }
    return artifacts.length ? { ...result, artifacts: [...(result.artifacts ?? []), ...artifacts] } : result;
  }

  /** Stages everything (the git directory's own index) and returns the binary-safe diff against HEAD. */
  async changes(checkout: Checkout): Promise<Buffer> {
    await this.git(checkout, ['add', '--all']);
    return (await this.git(checkout, ['diff', '--cached', '--binary', '--no-ext-diff', '--no-textconv', '--no-color', 'HEAD'])).stdout;
  }

  /**
   * Applies a diff that `changes` made (a checkpoint's) to a fresh clone, then hands the work tree
   * back to the command's user. git refuses paths outside the work tree and beyond links.
   */
  async applyChanges(checkout: Checkout, patchFile: string): Promise<void> {
    await this.git(checkout, ['apply', '--binary', '--whitespace=nowarn', patchFile]);
    if (this.deps.owner) await this.run('chown', ['-R', `${this.deps.owner.uid}:${this.deps.owner.gid}`, checkout.workTree], { timeoutMs: this.deps.timeoutMs });
  }

  /** Stages everything (the git directory's own index) and stores the diff and the new files. */
  async artifacts(checkout: Checkout, ids: TaskIds): Promise<Artifact[]> {
    const diff = await this.changes(checkout);
    if (diff.length === 0) return [];
    const prefix = `artifacts/${ids.executionId}/${ids.taskId}/${ids.attempt}/`;
    const out: Artifact[] = [await this.store(prefix + DIFF_ARTIFACT, DIFF_ARTIFACT, diff, 'text/x-diff')];
    const added = (await this.git(checkout, ['diff', '--cached', '--name-only', '--diff-filter=A', '--no-renames', '-z', 'HEAD'])).stdout;
    if (added.length > 0) {
      const list = `${checkout.privateDir}/new-files`;
      const tarball = `${checkout.privateDir}/new-files.tar.gz`;
      await writeFile(list, added);
      // Links are stored as links (tar does not follow them), so nothing outside the tree gets in.
      await this.run('tar', ['-czf', tarball, '-C', checkout.workTree, '--null', '--no-recursion', '--verbatim-files-from', '-T', list], {
        timeoutMs: this.deps.timeoutMs,
      });
      out.push(await this.store(prefix + NEW_FILES_ARTIFACT, NEW_FILES_ARTIFACT, await readFile(tarball), 'application/gzip'));
    }
    return out;
  }

  /** Commits what `artifacts` staged (when anything is) and pushes HEAD to `branch` of the origin. */
  async push(checkout: Checkout, branch: string, ids: TaskIds, staged: boolean): Promise<void> {
    if (staged) {
      const message = `xl: task ${ids.taskId} (execution ${ids.executionId}, attempt ${ids.attempt})`;
      await this.git(checkout, ['-c', `user.name=${AUTHOR.name}`, '-c', `user.email=${AUTHOR.email}`, 'commit', '--quiet', '--no-verify', '-m', message]);
    }
    await this.git(checkout, ['push', '--quiet', '--no-verify', 'origin', `HEAD:refs/heads/${branch}`]);
  }

  private async store(key: string, name: string, body: Buffer, contentType: string): Promise<Artifact> {
    const bytes = await this.deps.payloads.putBytes(key, body, contentType);
    return { name, uri: this.deps.payloads.uri(key), bytes };
  }

  /** git as the worker: on the worker's git directory, with nothing of the workspace's config. */
  private git(checkout: Checkout, args: string[], opts: { bare?: boolean } = {}): Promise<RunOutput> {
    const where = opts.bare ? [] : [`--git-dir=${checkout.gitDir}`, `--work-tree=${checkout.workTree}`];
    const config = [
      '-c', 'safe.directory=*',
      '-c', 'core.hooksPath=/dev/null',
      '-c', 'core.fsmonitor=false',
      '-c', 'credential.helper=',
      ...(checkout.token !== undefined ? ['-c', `credential.helper=${CREDENTIAL_HELPER}`] : []),
    ];
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: process.env.HOME ?? '/',
      LANG: 'C',
      GIT_TERMINAL_PROMPT: '0',
      GIT_CONFIG_NOSYSTEM: '1',
      ...(checkout.token !== undefined ? { XL_GIT_TOKEN: checkout.token } : {}),
    };
    return this.run('git', [...config, ...where, ...args], { cwd: checkout.workTree, env, timeoutMs: this.deps.timeoutMs });
  }
}

/** A ref that names a commit (hexadecimal, 7 to 64 digits) rather than a branch or a tag. */
export function isCommitId(ref: string): boolean {
  return /^[0-9a-f]{7,64}$/i.test(ref);
}

// ---- the worker's hook ------------------------------------------------------------------------------

/**
 * Before the driver: the task's clone, when it names a repository. Nothing (and no git call) for
 * a task without one. An agent without a WorkspaceGit fails such tasks as permanent.
 */
export async function prepareWorkspace(
  git: WorkspaceGit | undefined,
  task: Pick<Task, 'workspace'>,
  workspace: string,
): Promise<Prepared> {
  if (!task.workspace) return {};
  if (!git) return { failed: failed('permanent', 'this agent cannot clone repositories', 'agent') };
  return git.clone(task.workspace, workspace);
}
