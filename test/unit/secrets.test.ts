// Secrets by name: the local secrets file (real files), the cache, and the Secrets Manager adapter,
// whose happy path talks to a loopback stand-in speaking the service's JSON protocol through the
// endpoint variable, and whose rarer failures come from a mocked client.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type IncomingMessage, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretsManagerSource } from '../../core/aws/secrets.ts';
import { WorkspaceGit } from '../../agent/engines/workspace-git.ts';
import { CachedSecretSource, LocalSecretsFile, type SecretSource, SecretUnavailableError, secretValue } from '../../core/secrets.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xl-secrets-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function secretsFile(content: unknown, mode = 0o600): Promise<string> {
  const path = join(dir, `secrets-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  await chmod(path, mode);
  return path;
}

const rejection = (p: Promise<unknown>) => p.then(() => undefined, (err: unknown) => err as SecretUnavailableError);

describe('a secret\'s value', () => {
  it('is its text, or the token or apiKey field of a JSON object', () => {
    expect(secretValue('a', ' ghp_plain \n')).toBe('ghp_plain');
    expect(secretValue('a', '{"token":"ghp_json","user":"x"}')).toBe('ghp_json');
    expect(secretValue('a', '{"apiKey":"sk-ant-json"}')).toBe('sk-ant-json');
  });

  it('is refused when empty or a JSON object without either field', () => {
    expect(() => secretValue('xl/empty', '  ')).toThrow(/secret "xl\/empty": is empty/);
    expect(() => secretValue('xl/odd', '{"password":"p"}')).toThrow(/secret "xl\/odd": .*"token" or "apiKey"/);
  });
});

describe('the local secrets file', () => {
  it('gives the value stored under a name, string or object', async () => {
    const source = new LocalSecretsFile(await secretsFile({ 'xl/git': 'ghp_local', 'xl/anthropic': { apiKey: 'sk-ant-local' } }));
    expect(await source.get('xl/git')).toBe('ghp_local');
    expect(await source.get('xl/anthropic')).toBe('sk-ant-local');
  });

  it('names the secret that is not in it', async () => {
    const source = new LocalSecretsFile(await secretsFile({ 'xl/git': 'ghp_local' }));
    const err = await rejection(source.get('xl/other'));
    expect(err).toBeInstanceOf(SecretUnavailableError);
    expect(err?.reason).toBe('not-found');
    expect(err?.message).toMatch(/secret "xl\/other": not found in /);
  });

  it('is refused when others may read it', async () => {
    const source = new LocalSecretsFile(await secretsFile({ 'xl/git': 'ghp_local' }, 0o644));
    const err = await rejection(source.get('xl/git'));
    expect(err?.reason).toBe('unreadable');
    expect(err?.message).toMatch(/readable by others \(mode 644\); chmod 600 it/);
  });

  it('fails a task whose credentialsSecret it lacks as permanent, naming the secret', async () => {
    const source = new LocalSecretsFile(await secretsFile({ 'xl/git': 'ghp_local' }));
    const git = new WorkspaceGit({ payloads: { putBytes: async () => undefined, uri: () => '' } as never, resolveSecret: (name) => source.get(name) });
    const { failed } = await git.clone({ repository: 'https://example.invalid/r.git', credentialsSecret: 'xl/missing' }, join(dir, 'ws'));
    expect(failed?.status).toBe('failed');
    expect(failed).toMatchObject({ error: { type: 'permanent', message: expect.stringMatching(/^the repository credentials could not be read: secret "xl\/missing": not found in /) } });
  });

  it('is refused when it is not a JSON object, or missing', async () => {
    expect((await rejection(new LocalSecretsFile(await secretsFile('[1,2]')).get('x')))?.message).toMatch(/not a JSON object of name to value/);
    expect((await rejection(new LocalSecretsFile(join(dir, 'nope.json')).get('x')))?.message).toMatch(/cannot be used: ENOENT/);
  });
});

describe('the cache', () => {
  class Counting implements SecretSource {
    calls = 0;
    fail = false;
    async get(name: string) {
      this.calls++;
      if (this.fail) throw new SecretUnavailableError(name, 'unreadable', 'boom');
      return `value-${this.calls}`;
    }
  }

  it('reads a secret once within its time to live, again after it', async () => {
    let now = 0;
    const inner = new Counting();
    const cached = new CachedSecretSource(inner, 1000, () => now);
    expect(await cached.get('a')).toBe('value-1');
    now = 999;
    expect(await cached.get('a')).toBe('value-1');
    now = 1000;
    expect(await cached.get('a')).toBe('value-2');
  });

  it('keeps no failure', async () => {
    const inner = new Counting();
    const cached = new CachedSecretSource(inner, 60_000);
    inner.fail = true;
    await expect(cached.get('a')).rejects.toThrow(/boom/);
    inner.fail = false;
    expect(await cached.get('a')).toBe('value-2');
  });
});

describe('Secrets Manager', () => {
  // The service's JSON 1.1 protocol, as much as GetSecretValue needs.
  const stored: Record<string, string> = { 'xl/git': 'ghp_from_sm', 'xl/anthropic': '{"apiKey":"sk-ant-from-sm"}' };
  const seen: { target?: string; authorization?: string; body: unknown }[] = [];
  let server: Server;
  const saved = { ...process.env };

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { SecretId: string };
        seen.push({ target: req.headers['x-amz-target'] as string, authorization: req.headers.authorization, body });
        res.setHeader('content-type', 'application/x-amz-json-1.1');
        const value = stored[body.SecretId];
        if (req.headers['x-amz-target'] !== 'secretsmanager.GetSecretValue' || value === undefined) {
          res.statusCode = 400;
          res.end(JSON.stringify({ __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." }));
          return;
        }
        res.end(JSON.stringify({ ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${body.SecretId}-AbCdEf`, Name: body.SecretId, SecretString: value, VersionId: 'v1' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_SECRETS_MANAGER: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'test-secret',
    });
  });
  afterAll(async () => {
    process.env = saved;
    await new Promise((r) => server.close(r));
  });

  it('reads a secret through the endpoint in the environment, signed', async () => {
    // Built the way the worker builds it: the endpoint comes from the environment alone.
    const { secretsManagerClient } = await import('../../core/aws/clients.ts');
    const source = new SecretsManagerSource(secretsManagerClient());
    expect(await source.get('xl/git')).toBe('ghp_from_sm');
    expect(await source.get('xl/anthropic')).toBe('sk-ant-from-sm');
    expect(seen[0]).toMatchObject({ target: 'secretsmanager.GetSecretValue', body: { SecretId: 'xl/git' } });
    expect(seen[0]?.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/us-east-1\/secretsmanager\/aws4_request/);
  });

  it('names a secret the service does not know', async () => {
    const source = new SecretsManagerSource(new SecretsManagerClient({}));
    const err = await rejection(source.get('xl/missing'));
    expect(err?.reason).toBe('not-found');
    expect(err?.message).toBe('secret "xl/missing": not found (ResourceNotFoundException)');
  });

  it('says access was denied, or that the secret holds no string', async () => {
    const mock = mockClient(SecretsManagerClient);
    try {
      const client = new SecretsManagerClient({});
      const source = new SecretsManagerSource(client);
      mock.on(GetSecretValueCommand, { SecretId: 'xl/denied' }).rejects(
        Object.assign(new Error('User: arn:aws:sts::1:assumed-role/agent is not authorized to perform: secretsmanager:GetSecretValue'), { name: 'AccessDeniedException' }),
      );
      mock.on(GetSecretValueCommand, { SecretId: 'xl/binary' }).resolves({ Name: 'xl/binary', SecretBinary: new Uint8Array([1, 2]) });
      const denied = await rejection(source.get('xl/denied'));
      expect(denied?.reason).toBe('access-denied');
      expect(denied?.message).toMatch(/^secret "xl\/denied": access denied \(AccessDeniedException: User: .* is not authorized/);
      const binary = await rejection(source.get('xl/binary'));
      expect(binary?.reason).toBe('no-string-value');
      expect(binary?.message).toBe('secret "xl/binary": has no string value (a binary secret cannot be used)');
    } finally {
      mock.restore();
    }
  });
});
