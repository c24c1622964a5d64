// The SecretSource port (core/secrets.ts) on AWS Secrets Manager: GetSecretValue by name or ARN,
// with the SDK's own retries. The client comes from core/aws/clients.ts, so its endpoint follows
// AWS_ENDPOINT_URL_SECRETS_MANAGER / AWS_ENDPOINT_URL like every other client.
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { type SecretSource, SecretUnavailableError, secretValue } from '../secrets.ts';

export class SecretsManagerSource implements SecretSource {
  constructor(private readonly client: Pick<SecretsManagerClient, 'send'>) {}

  async get(name: string): Promise<string> {
    let text: string | undefined;
    try {
      const out = await this.client.send(new GetSecretValueCommand({ SecretId: name }));
      text = out.SecretString;
    } catch (err) {
      throw failure(name, err);
    }
    if (text === undefined) throw new SecretUnavailableError(name, 'no-string-value', 'has no string value (a binary secret cannot be used)');
    return secretValue(name, text);
  }
}

function failure(name: string, err: unknown): SecretUnavailableError {
  const code = (err as { name?: string }).name ?? 'Error';
  const message = (err as Error).message ?? String(err);
  switch (code) {
    case 'ResourceNotFoundException':
      return new SecretUnavailableError(name, 'not-found', `not found (${code})`, { cause: err });
    case 'AccessDeniedException':
    case 'DecryptionFailure':
      return new SecretUnavailableError(name, 'access-denied', `access denied (${code}: ${message})`, { cause: err });
    default:
      return new SecretUnavailableError(name, 'unreadable', `cannot be read (${code}: ${message})`, { cause: err });
  }
}
