// Who the agent's process runs as. The worker holds AWS credentials and task tokens; a process of
// the same user could read them from /proc/<pid>/environ (scrubbing its own environment is not
// enough), so when the worker can switch user it runs every command as another one.
import { execFile, execFileSync } from 'node:child_process';

export interface RunAs {
  uid: number;
  gid: number;
  /** For logs and the README: who that is. */
  name: string;
}

/**
 * XL_AGENT_RUN_AS: a user name, `uid:gid`, or `none`. Unset: `nobody` when the worker runs as root
 * (locally as root, and in the container, whose worker keeps only the capabilities to switch).
 * Undefined: commands run as the worker's own user (its environment is still scrubbed).
 */
export function resolveRunAs(spec: string | undefined, isRoot = process.getuid?.() === 0): RunAs | undefined {
  if (spec === 'none') return undefined;
  if (!isRoot) {
    if (spec) throw new Error(`XL_AGENT_RUN_AS=${spec} needs the worker to run as root (or with CAP_SETUID and CAP_SETGID)`);
    return undefined;
  }
  const wanted = spec || 'nobody';
  const pair = /^(\d+):(\d+)$/.exec(wanted);
  if (pair) return { uid: Number(pair[1]), gid: Number(pair[2]), name: wanted };
  try {
    const uid = Number(execFileSync('id', ['-u', wanted], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', wanted], { encoding: 'utf8' }).trim());
    if (uid === 0) throw new Error('it is root');
    return { uid, gid, name: wanted };
  } catch (err) {
    throw new Error(`XL_AGENT_RUN_AS: cannot run commands as "${wanted}": ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
}

/**
 * Kills every process of `user` (`kill -KILL -1` run as that user), so that nothing the agent's
 * process started outside its process group (a `setsid` daemon) is still running when the worker,
 * as root, reads or writes the workspace. Only for an agent that is the user's one owner (one agent
 * per container, one task at a time): never for root, and never locally, where agents share `nobody`.
 */
export function killAllProcessesOf(user: RunAs): Promise<void> {
  if (user.uid === 0) return Promise.reject(new Error('refusing to kill every process of root'));
  return new Promise((resolve) => {
    execFile('kill', ['-KILL', '-1'], { uid: user.uid, gid: user.gid, timeout: 5000 }, () => resolve());
  });
}
