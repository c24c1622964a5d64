// Artifacts as the API hands them out: which object a name stands for (core/artifacts.ts), the
// presigned GET the API Lambda redirects to (core/aws/artifact-urls.ts), checked against SigV4's
// query-string rules computed here independently, and how the console reads a diff and a transcript.
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { artifactContentType, artifactObject, contentDisposition } from '../../core/artifacts.ts';
import { presignArtifact } from '../../core/aws/artifact-urls.ts';
import { looksLikeDiff, parseDiff, transcriptTurns } from '../../console/views/artifacts.ts';

const BUCKET = 'xl-payloads-1a2b';
const task = {
  taskId: 'write',
  artifacts: [
    { name: 'workspace.diff', uri: `s3://${BUCKET}/artifacts/ex-1/write/1/workspace.diff`, bytes: 120 },
    { name: 'claude-transcript.jsonl', uri: `s3://${BUCKET}/artifacts/ex-1/write/1/claude-transcript.jsonl`, bytes: 4000 },
  ],
};

describe('an artifact by name', () => {
  it('is the object its record names, typed by its name', () => {
    expect(artifactObject(task, 'workspace.diff', BUCKET)).toEqual({
      name: 'workspace.diff',
      bucket: BUCKET,
      key: 'artifacts/ex-1/write/1/workspace.diff',
      bytes: 120,
      contentType: 'text/x-diff; charset=utf-8',
    });
    expect(artifactContentType('claude-transcript.jsonl')).toBe('application/x-ndjson; charset=utf-8');
    expect(artifactContentType('new-files.tar.gz')).toBe('application/gzip');
    expect(artifactContentType('report.html')).toBe('application/octet-stream');
  });

  it('is a 404 naming what the task has when it has no such artifact', () => {
    expect(() => artifactObject(task, 'nothing.txt', BUCKET)).toThrow('task write has no artifact nothing.txt (it has: workspace.diff, claude-transcript.jsonl)');
    expect(() => artifactObject({ taskId: 'bare' }, 'x', BUCKET)).toThrow('task bare has no artifact x (it has none)');
  });

  it('is never an object outside the bucket’s artifacts/ prefix, whatever the record says', () => {
    const outside = { taskId: 't', artifacts: [{ name: 'plan', uri: `s3://${BUCKET}/plans/ex-1.json`, bytes: 1 }, { name: 'other', uri: 's3://someone-else/artifacts/x', bytes: 1 }] };
    expect(() => artifactObject(outside, 'plan', BUCKET)).toThrow(/points outside the layer's artifacts/);
    expect(() => artifactObject(outside, 'other', BUCKET)).toThrow(/points outside the layer's artifacts/);
  });

  it('is saved under its name, never shown as a page', () => {
    expect(contentDisposition('workspace.diff')).toBe(`attachment; filename="workspace.diff"; filename*=UTF-8''workspace.diff`);
    expect(contentDisposition('résumé "x".txt')).toBe(`attachment; filename="r_sum_ _x_.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22x%22.txt`);
  });
});

const KEYS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'FQoGZXIvYXdzEXAMPLE' };
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
const uriEncode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** SigV4 query-string authentication, from its documented steps: whether the URL's signature is right. */
function verifyPresigned(url: URL, secret: string): boolean {
  const params = [...url.searchParams].filter(([k]) => k !== 'X-Amz-Signature');
  const query = params.map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`).sort().join('&');
  const headers = url.searchParams.get('X-Amz-SignedHeaders')!.split(';');
  const canonicalHeaders = headers.map((h) => `${h}:${h === 'host' ? url.host : ''}\n`).join('');
  const canonical = ['GET', url.pathname, query, canonicalHeaders, headers.join(';'), 'UNSIGNED-PAYLOAD'].join('\n');
  const date = url.searchParams.get('X-Amz-Date')!;
  const scope = url.searchParams.get('X-Amz-Credential')!.split('/').slice(1).join('/');
  const toSign = ['AWS4-HMAC-SHA256', date, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  const [day, region, service] = scope.split('/');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day!), region!), service!), 'aws4_request');
  return hmac(key, toSign).toString('hex') === url.searchParams.get('X-Amz-Signature');
}

describe('the presigned GET the API redirects to', () => {
  const object = artifactObject(task, 'workspace.diff', BUCKET);
  const now = new Date('2026-12-07T01:00:00Z');

  it('is a GET of the object on the bucket’s regional host, valid for 5 minutes, with a valid signature', async () => {
    const { url, expiresAt } = await presignArtifact(object, { region: 'eu-west-1', credentials: KEYS, now });
    const u = new URL(url);
    expect(u.origin).toBe(`https://${BUCKET}.s3.eu-west-1.amazonaws.com`);
    expect(u.pathname).toBe('/artifacts/ex-1/write/1/workspace.diff');
    expect(u.searchParams.get('X-Amz-Expires')).toBe('300');
    expect(expiresAt).toBe('2026-12-07T01:05:00.000Z');
    expect(u.searchParams.get('X-Amz-Credential')).toBe('AKIDEXAMPLE/20261207/eu-west-1/s3/aws4_request');
    // A role's temporary credentials: the token travels in the URL.
    expect(u.searchParams.get('X-Amz-Security-Token')).toBe(KEYS.sessionToken);
    expect(u.searchParams.get('X-Amz-Content-Sha256')).toBe('UNSIGNED-PAYLOAD');
    expect(u.searchParams.get('response-content-disposition')).toBe(contentDisposition('workspace.diff'));
    expect(u.searchParams.get('response-content-type')).toBe('text/x-diff; charset=utf-8');
    expect(verifyPresigned(u, KEYS.secretAccessKey)).toBe(true);
    expect(verifyPresigned(u, 'another-secret')).toBe(false);
  });

  it('signs the key as S3 reads it: each segment escaped once', async () => {
    const odd = { ...object, key: 'artifacts/ex-1/write/1/my notes+1.txt', name: 'my notes+1.txt' };
    const u = new URL((await presignArtifact(odd, { region: 'us-east-1', credentials: KEYS, now })).url);
    expect(u.pathname).toBe('/artifacts/ex-1/write/1/my%20notes%2B1.txt');
    expect(verifyPresigned(u, KEYS.secretAccessKey)).toBe(true);
  });

  it('is path-style under an S3-compatible endpoint (LocalStack)', async () => {
    const u = new URL((await presignArtifact(object, { region: 'us-east-1', credentials: KEYS, endpoint: 'http://localhost.localstack.cloud:4566', now })).url);
    expect(`${u.origin}${u.pathname}`).toBe(`http://localhost.localstack.cloud:4566/${BUCKET}/artifacts/ex-1/write/1/workspace.diff`);
    expect(verifyPresigned(u, KEYS.secretAccessKey)).toBe(true);
  });
});

describe('the console’s reading of artifacts', () => {
  it('splits a git diff into files, with added, removed and context lines and hunk headers', () => {
    const diff = [
      'diff --git a/README.md b/README.md',
      'index ce01362..94954ab 100644',
      '--- a/README.md',
      '+++ b/README.md',
      '@@ -1 +1,2 @@',
      ' hello',
      '+world',
      'diff --git a/src/old.ts b/src/old.ts',
      'deleted file mode 100644',
      '--- a/src/old.ts',
      '+++ /dev/null',
      '@@ -1,2 +0,0 @@',
      '-export const a = 1;',
      '--- not a header: a removed line that starts with two dashes',
      '\\ No newline at end of file',
      '',
    ].join('\n');
    expect(looksLikeDiff(diff)).toBe(true);
    const files = parseDiff(diff);
    expect(files.map((f) => [f.name, f.added, f.removed])).toEqual([
      ['README.md', 1, 0],
      ['src/old.ts', 0, 2],
    ]);
    expect(files[0]!.lines.map((l) => l.kind)).toEqual(['hunk', 'ctx', 'add']);
    expect(files[1]!.meta).toEqual(['deleted file mode 100644', '--- a/src/old.ts', '+++ /dev/null']);
    expect(files[1]!.lines.at(-1)).toEqual({ kind: 'meta', text: '\\ No newline at end of file' });
  });

  it('reads a plain unified diff (no git header) too, and no diff where there is none', () => {
    const files = parseDiff('--- a.txt\t2026-01-01\n+++ b.txt\t2026-01-02\n@@ -1 +1 @@\n-a\n+b\n');
    expect(files.map((f) => [f.name, f.added, f.removed])).toEqual([['b.txt', 1, 1]]);
    expect(looksLikeDiff('just some output\n-with a dash\n')).toBe(false);
  });

  it('reads a stream-json transcript turn by turn, naming the tool a result belongs to', () => {
    const text = readFileSync(join(import.meta.dirname, '../fixtures/claude-transcripts/coder-typescript.jsonl'), 'utf8');
    const turns = transcriptTurns(text);
    expect(turns.map((t) => t.label)).toEqual(['Session', 'Tool use: Write', 'Tool result: Write', 'Assistant', expect.stringMatching(/^Result \(success, 2 turns, \$\d/)]);
    // The written file reads as the file, below its path.
    expect(turns[1]!.text.split('\n').slice(0, 3)).toEqual(['file_path: /workspace/src/slug.ts', 'content:', 'export function slugify(title: string): string {']);
  });

  it('reads a Claude Code session file’s lines (string content, thinking, summaries) and skips what is not a turn', () => {
    const lines = [
      { type: 'summary', summary: 'Adds slugify' },
      { type: 'user', message: { role: 'user', content: 'Write slugify' }, uuid: '1' },
      { type: 'assistant', message: { role: 'assistant', content: [{ type: 'thinking', thinking: 'A regex will do.' }, { type: 'tool_use', id: 't1', name: 'Bash', input: { command: 'ls' } }] } },
      { type: 'user', message: { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: 'no such file' }], is_error: true }] } },
      { type: 'file-history-snapshot', snapshot: {} },
    ];
    const turns = transcriptTurns(lines.map((l) => JSON.stringify(l)).join('\n') + '\n{"cut off');
    expect(turns.map((t) => [t.role, t.label, t.error ?? false])).toEqual([
      ['summary', 'Summary', false],
      ['user', 'User', false],
      ['assistant', 'Assistant (thinking)', false],
      ['tool-use', 'Tool use: Bash', false],
      ['tool-result', 'Tool result: Bash (error)', true],
    ]);
    expect(turns[3]!.text).toBe('command: ls');
    expect(turns[4]!.text).toBe('no such file');
  });
});
