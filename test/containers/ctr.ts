// Helpers of the containerd tests: ask the containerd the tests run against (XL_CONTAINERD_ADDRESS,
// set by engine-setup.ts) through its own client, as the runtime does.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CONTAINERD_NAMESPACE } from '../../local/containerd-runtime.ts';

/** Why the containerd tests cannot run here (engine-setup.ts found no containerd), or undefined. */
export const noContainerd = () => process.env.XL_TEST_NO_CONTAINERD;

export async function ctr(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('ctr', ['--address', process.env.XL_CONTAINERD_ADDRESS!, '--namespace', CONTAINERD_NAMESPACE, ...args]);
  return stdout;
}

/** Container ids in the namespace carrying a label (`key=value`), running or not. */
export async function ctrContainersLabelled(label: string): Promise<string[]> {
  const [key, value] = label.split('=') as [string, string];
  return (await ctr('containers', 'ls', '--quiet', `labels."${key}"==${value}`)).split('\n').map((l) => l.trim()).filter(Boolean);
}

/** A container's record: its labels and the OCI runtime spec containerd made for it. */
export async function ctrInfo(id: string): Promise<{ Labels: Record<string, string>; Image: string; Spec: any }> {
  return JSON.parse(await ctr('containers', 'info', id));
}

/** Each task's status by container id. */
export async function ctrTasks(): Promise<Map<string, string>> {
  const out = await ctr('tasks', 'ls');
  return new Map(out.split('\n').slice(1).filter(Boolean).map((l) => { const [id, , status] = l.trim().split(/\s+/); return [id!, status!]; }));
}

/** Removes containers (a test that failed midway): their tasks killed first. */
export async function ctrRemove(ids: string[]): Promise<void> {
  for (const id of ids) {
    await ctr('tasks', 'kill', '--signal', 'SIGKILL', id).catch(() => undefined);
    await ctr('tasks', 'delete', '--force', id).catch(() => undefined);
    await ctr('containers', 'delete', id).catch(() => undefined);
  }
}
