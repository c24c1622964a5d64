// Secrets the worker reads by name: a task's `credentialsSecret` (a git token) and the Anthropic API
// key. A port with two adapters: AWS Secrets Manager (core/aws/secrets.ts) and, for the embedded
// local mode, a JSON file on the worker's machine (no Secrets Manager emulator runs there).
//
// A secret's value is its text, or, when that text is a JSON object, its `token` or `apiKey` field
// (what the Secrets Manager console writes as key/value pairs): `{"token":"ghp_..."}`.
import { readFile, stat } from 'node:fs/promises';
import { z } from 'zod';

export interface SecretSource {
  /** The secret's value; throws a SecretUnavailableError naming the secret and why. */
  get(name: string): Promise<string>;
}

export type SecretFailure = 'not-found' | 'access-denied' | 'no-string-value' | 'no-token-field' | 'unreadable';

export class SecretUnavailableError extends Error {
  constructor(
    readonly secretName: string,
    readonly reason: SecretFailure,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`secret "${secretName}": ${detail}`, options);
    this.name = 'SecretUnavailableError';
  }
}

const jsonSecret = z.looseObject({ token: z.string().min(1).optional(), apiKey: z.string().min(1).optional() });

/** The usable value of a secret's text (see the header). */
export function secretValue(name: string, text: string): string {
  const trimmed = text.trim();
  if (trimmed === '') throw new SecretUnavailableError(name, 'no-string-value', 'is empty');
  if (!trimmed.startsWith('{')) return trimmed;
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    return trimmed; // not JSON after all: the text is the value
  }
  const fields = jsonSecret.safeParse(parsed);
  const value = fields.success ? (fields.data.token ?? fields.data.apiKey) : undefined;
  if (value === undefined) throw new SecretUnavailableError(name, 'no-token-field', 'is a JSON object without a string "token" or "apiKey" field');
  return value;
}

/** Remembers values for a while, so a worker does not read the same secret for every task; failures are not kept. */
export class CachedSecretSource implements SecretSource {
  private readonly entries = new Map<string, { value: Promise<string>; until: number }>();

  constructor(
    private readonly source: SecretSource,
    private readonly ttlMs = 5 * 60 * 1000,
    private readonly now: () => number = Date.now,
  ) {}

  get(name: string): Promise<string> {
    const hit = this.entries.get(name);
    if (hit && hit.until > this.now()) return hit.value;
    const value = this.source.get(name);
    this.entries.set(name, { value, until: this.now() + this.ttlMs });
    value.catch(() => {
      if (this.entries.get(name)?.value === value) this.entries.delete(name);
    });
    return value;
  }
}

const secretsFile = z.record(z.string(), z.union([z.string(), z.record(z.string(), z.unknown())]));

/**
 * XL_LOCAL_SECRETS_FILE: a JSON object of name → value (a string, or an object with `token` or
 * `apiKey`). It must be the worker user's and not readable by group or others (mode 0600), as an
 * SSH key must: otherwise an agent's process running as another user could read it.
 */
export class LocalSecretsFile implements SecretSource {
  constructor(private readonly path: string) {}

  async get(name: string): Promise<string> {
    let text: string;
    try {
      const info = await stat(this.path);
      if ((info.mode & 0o077) !== 0) {
        throw new Error(`${this.path} is readable by others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it`);
      }
      if (process.getuid && info.uid !== process.getuid()) throw new Error(`${this.path} does not belong to the worker's user`);
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      throw new SecretUnavailableError(name, 'unreadable', `the local secrets file cannot be used: ${(err as Error).message}`, { cause: err });
    }
    let secrets: z.infer<typeof secretsFile>;
    try {
      secrets = secretsFile.parse(JSON.parse(text));
    } catch (err) {
      throw new SecretUnavailableError(name, 'unreadable', `${this.path} is not a JSON object of name to value`, { cause: err });
    }
    if (!Object.hasOwn(secrets, name)) throw new SecretUnavailableError(name, 'not-found', `not found in ${this.path}`);
    const entry = secrets[name]!;
    return secretValue(name, typeof entry === 'string' ? entry : JSON.stringify(entry));
  }
}
