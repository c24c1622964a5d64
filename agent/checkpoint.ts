// The design's SaveState: when an agent must hand a running task back (SIGTERM past its grace
// period), it saves what the run has done so far, and the next attempt, on any agent, starts from it
// instead of from nothing.
//
// A checkpoint is one tar.gz in the bucket (`checkpoints/<executionId>/<taskId>/<attempt>.tar.gz`):
//   meta.json       { sessionId?, workspace }   (the run's working directory, for the transcripts)
//   workspace.diff  the changes against the clone's HEAD (a task with a repository), or
//   files.tar       the whole workspace (a task without one)
//   claude.tar      the run's Claude Code config directory (its session transcripts), when there is one
// Its pointer and the session id go on the task's record with the hand-back
// (ExecutionStore.handBack); the claude-code driver then resumes the session (`--resume`).
//
// The archives come from a workspace the agent's process could write, so they are unpacked as that
// process's user (never as the worker), and a diff is applied by git, which refuses paths that leave
// the work tree.
import { execFile } from 'node:child_process';
import { chown, mkdir, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { PayloadStore } from '../core/aws/payload-store.ts';
import type { TaskCheckpoint } from '../core/records.ts';
import { claudeConfigDir, claudeProjectDir } from './drivers/claude-code.ts';
import type { Checkout, TaskIds, WorkspaceGit } from './engines/workspace-git.ts';
import { exists } from './fs.ts';

/** A checkpoint larger than this is not saved (the task then restarts from scratch). */
export const CHECKPOINT_MAX_BYTES = 64 * 1024 * 1024;
const TAR_TIMEOUT_MS = 60_000;

export interface RunDirs {
  workspace: string;
  /** The run's private home (HOME, CLAUDE_CONFIG_DIR's parent). */
  home: string;
  checkout?: Checkout;
}

export interface CheckpointDeps {
  payloads: Pick<PayloadStore, 'putBytes' | 'getBytes'>;
  /** Needed for tasks with a repository (their diff). */
  git?: WorkspaceGit;
  /** The agent's process's user: archives are unpacked as it. */
  owner?: { uid: number; gid: number };
  maxBytes?: number;
}

interface Meta {
  sessionId?: string;
  workspace: string;
}

export class Checkpoints {
  private readonly maxBytes: number;

  constructor(private readonly deps: CheckpointDeps) {
    this.maxBytes = deps.maxBytes ?? CHECKPOINT_MAX_BYTES;
  }

  /**
   * Saves the run's state. Undefined when there is nothing worth resuming from (an empty workspace
   * and no session). Throws when it cannot be saved (too large, the bucket failing): the caller
   * hands the task back without it.
   */
  async save(dirs: RunDirs, ids: TaskIds, sessionId: string | undefined): Promise<TaskCheckpoint | undefined> {
    const stage = `${dirs.workspace}.ckpt`;
    await rm(stage, { recursive: true, force: true });
    await mkdir(stage, { mode: 0o700 });
    try {
      let content = false;
      if (dirs.checkout) {
        if (!this.deps.git) throw new Error('this agent cannot read a repository workspace');
        const diff = await this.deps.git.changes(dirs.checkout);
        if (diff.length > 0) {
          await writeFile(join(stage, 'workspace.diff'), diff);
          content = true;
        }
      } else if ((await readdir(dirs.workspace)).length > 0) {
        // Links are archived as links; nothing outside the workspace gets in.
        await tar(['-cf', join(stage, 'files.tar'), '-C', dirs.workspace, '.']);
        content = true;
      }
      if (await exists(claudeConfigDir(dirs.home))) {
        await tar(['-cf', join(stage, 'claude.tar'), '-C', dirs.home, '.claude']);
        content = true;
      }
      if (!content && !sessionId) return undefined;
      // As the CLI sees it (it names transcript directories after its resolved working directory).
      const meta: Meta = { workspace: await realpath(dirs.workspace), ...(sessionId ? { sessionId } : {}) };
      await writeFile(join(stage, 'meta.json'), JSON.stringify(meta));
      const archive = `${stage}.tar.gz`;
      try {
        await tar(['-czf', archive, '-C', stage, '.']);
        const body = await readFile(archive);
        if (body.length > this.maxBytes) {
          throw new Error(`the checkpoint is ${body.length} bytes, over the ${this.maxBytes}-byte limit`);
        }
        const key = `checkpoints/${ids.executionId}/${ids.taskId}/${ids.attempt}.tar.gz`;
        const bytes = await this.deps.payloads.putBytes(key, body, 'application/gzip');
        return { key, bytes, attempt: ids.attempt, savedAt: new Date().toISOString(), ...(sessionId ? { sessionId } : {}) };
      } finally {
        await rm(archive, { force: true });
      }
    } finally {
      await rm(stage, { recursive: true, force: true });
    }
  }

  /**
   * Puts a checkpoint's state into a fresh run's directories (after the clone, before the driver).
   * Returns the session to resume. Throws when the checkpoint cannot be used.
   */
  async restore(checkpoint: TaskCheckpoint, dirs: RunDirs): Promise<{ sessionId?: string }> {
    const stage = `${dirs.workspace}.ckpt`;
    await rm(stage, { recursive: true, force: true });
    await mkdir(stage, { mode: 0o700 });
    try {
      const archive = join(stage, 'in.tar.gz');
      await writeFile(archive, await this.deps.payloads.getBytes(checkpoint.key));
      const unpacked = join(stage, 'in');
      await mkdir(unpacked);
      await tar(['-xzf', archive, '-C', unpacked, '--no-same-owner']);
      const meta = JSON.parse(await readFile(join(unpacked, 'meta.json'), 'utf8')) as Meta;

      if (await exists(join(unpacked, 'workspace.diff'))) {
        if (!dirs.checkout || !this.deps.git) throw new Error('the checkpoint has a diff but the run has no clone to apply it to');
        await this.deps.git.applyChanges(dirs.checkout, join(unpacked, 'workspace.diff'));
      }
      if (await exists(join(unpacked, 'files.tar'))) {
        await this.unpackAsOwner(join(unpacked, 'files.tar'), dirs.workspace);
      }
      if (await exists(join(unpacked, 'claude.tar'))) {
        // The old workspace's transcripts land under the new workspace's project directory name.
        const from = basename(claudeProjectDir('', meta.workspace));
        const to = basename(claudeProjectDir('', await realpath(dirs.workspace)));
        await this.unpackAsOwner(join(unpacked, 'claude.tar'), dirs.home, [`--transform=s,^\\.claude/projects/${from}\\(/\\|$\\),.claude/projects/${to}\\1,`]);
      }
      return meta.sessionId ? { sessionId: meta.sessionId } : {};
    } finally {
      await rm(stage, { recursive: true, force: true });
    }
  }

  /** Unpacks as the agent's user: it owns `into`, and the archive comes on stdin (it cannot open the stage). */
  private async unpackAsOwner(archive: string, into: string, extra: string[] = []): Promise<void> {
    const owner = this.deps.owner;
    if (owner) await chown(into, owner.uid, owner.gid);
    await tar(['-xf', '-', '-C', into, '--no-same-owner', '--no-overwrite-dir', ...extra], owner, await readFile(archive));
  }
}

function tar(args: string[], as?: { uid: number; gid: number }, stdin?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile('tar', args, { timeout: TAR_TIMEOUT_MS, killSignal: 'SIGKILL', ...(as ?? {}) }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const last = String(stderr).trim().split('\n').pop();
      reject(new Error(`tar ${args[0]} failed: ${last || err.message}`));
    });
    child.stdin?.on('error', () => {}); // EPIPE when tar fails early; its exit says why
    child.stdin?.end(stdin);
  });
}
