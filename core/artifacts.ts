// A task's artifacts as the API hands them out (GET /executions/{id}/tasks/{taskId}/artifacts/{name}):
// which object an artifact name stands for, and how its bytes are labelled. Only objects under the
// bucket's artifacts/ prefix are ever served: a record naming anything else is refused, not followed.
import { NotFoundError, XlError } from './errors.ts';

/** Where agents write artifacts (`artifacts/<executionId>/<taskId>/<attempt>/<name>`). */
export const ARTIFACT_PREFIX = 'artifacts/';

export interface ArtifactObject {
  name: string;
  bucket: string;
  key: string;
  bytes: number;
  contentType: string;
}

/** `s3://bucket/key` → its parts; undefined for anything else. */
export function parseS3Uri(uri: string): { bucket: string; key: string } | undefined {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  return m ? { bucket: m[1]!, key: m[2]! } : undefined;
}

const TYPES: [RegExp, string][] = [
  [/\.(diff|patch)$/i, 'text/x-diff; charset=utf-8'],
  [/\.jsonl$/i, 'application/x-ndjson; charset=utf-8'],
  [/\.json$/i, 'application/json; charset=utf-8'],
  [/\.(txt|log|md)$/i, 'text/plain; charset=utf-8'],
  [/\.(tar\.gz|tgz)$/i, 'application/gzip'],
];

/** The media type an artifact is served as, by its name; unknown names are bytes. */
export function artifactContentType(name: string): string {
  return TYPES.find(([re]) => re.test(name))?.[1] ?? 'application/octet-stream';
}

/**
 * `attachment` with the name (RFC 6266): a browser saves the artifact rather than showing it, so an
 * artifact holding HTML never runs as a page of the API's origin. Non-ASCII names go in filename*.
 */
export function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/** What of a task's result names its artifacts (TaskResult's fields; said here so executions.ts can import this file). */
interface TaskArtifacts {
  taskId: string;
  artifacts?: { name: string; uri: string; bytes: number }[];
}

/**
 * The object behind one artifact of one task. 404 when the task has no artifact of that name; a
 * record that points outside the layer's bucket or its artifacts/ prefix is a 500 (the layer's
 * records are wrong), never a read of that object.
 */
export function artifactObject(task: TaskArtifacts, name: string, bucket: string): ArtifactObject {
  const artifacts = task.artifacts ?? [];
  // A name may repeat only if a driver and an engine both wrote it: the later one is the task's.
  const artifact = artifacts.findLast((a) => a.name === name);
  if (!artifact) {
    const have = artifacts.map((a) => a.name).join(', ');
    throw new NotFoundError(`task ${task.taskId} has no artifact ${name} (${have ? `it has: ${have}` : 'it has none'})`);
  }
  const where = parseS3Uri(artifact.uri);
  if (!where || where.bucket !== bucket || !where.key.startsWith(ARTIFACT_PREFIX)) {
    // The object's name stays out of the answer: the record is the layer's fault, not the caller's.
    throw new XlError('transient', `artifact ${name} of task ${task.taskId} points outside the layer's artifacts: not served`, 500);
  }
  return { name, bucket, key: where.key, bytes: artifact.bytes, contentType: artifactContentType(name) };
}
