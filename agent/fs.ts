// Small file-system helpers the agent's parts share.
import { stat } from 'node:fs/promises';

/** Whether anything is at `path` (a missing or unreadable path is not). */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
