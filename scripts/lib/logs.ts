// The two AWS calls of `npm run destroy` whose clients the project does not carry: CloudWatch Logs
// DeleteLogGroup and KMS ScheduleKeyDeletion. Both services speak JSON 1.1 (an X-Amz-Target header
// naming the action), so one signed request each does it, signed as every SDK client signs. The
// endpoint follows the SDK's variables (AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL).
import { Sha256 } from '@aws-crypto/sha256-js';
import type { AwsCredentialIdentityProvider } from '@aws-sdk/types';
import { SignatureV4 } from '@smithy/signature-v4';

export interface LogGroups {
  /** Deletes a log group; 'absent' when there was none of that name. */
  delete(name: string): Promise<'deleted' | 'absent'>;
}

export interface Keys {
  /** Schedules a customer-managed key's deletion after the shortest wait KMS allows (7 days). */
  scheduleDeletion(keyId: string): Promise<'scheduled' | 'absent'>;
}

/** The endpoint of a service: its own variable, the general one, else AWS's. */
export function serviceEndpoint(service: 'logs' | 'kms', region: string, env: NodeJS.ProcessEnv = process.env): string {
  const own = service === 'logs' ? env.AWS_ENDPOINT_URL_CLOUDWATCH_LOGS : env.AWS_ENDPOINT_URL_KMS;
  const override = own ?? env.AWS_ENDPOINT_URL;
  if (override) return override;
  return `https://${service}.${region}.${region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com'}`;
}

/** A JSON 1.1 call: the answer's `__type` on failure, for the caller to tell "not found" apart. */
function jsonClient(service: 'logs' | 'kms', targetPrefix: string, region: string, credentials: AwsCredentialIdentityProvider, endpoint: string) {
  const signer = new SignatureV4({ service, region, credentials, sha256: Sha256 });
  const url = new URL(endpoint);
  return async (action: string, input: object): Promise<{ ok: true } | { ok: false; type: string; text: string; status: number }> => {
    const body = JSON.stringify(input);
    const signed = await signer.sign({
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      path: '/',
      headers: { host: url.host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${targetPrefix}.${action}` },
      body,
    });
    const res = await fetch(new URL('/', url), { method: 'POST', headers: signed.headers as Record<string, string>, body });
    const text = await res.text();
    if (res.ok) return { ok: true };
    let type = '';
    try {
      type = String((JSON.parse(text) as { __type?: string }).__type ?? '');
    } catch {
      // not JSON: the text is reported
    }
    return { ok: false, type, text: text.slice(0, 200), status: res.status };
  };
}

export function cloudWatchLogs(region: string, credentials: AwsCredentialIdentityProvider, endpoint = serviceEndpoint('logs', region)): LogGroups {
  const call = jsonClient('logs', 'Logs_20140328', region, credentials, endpoint);
  return {
    async delete(name) {
      const res = await call('DeleteLogGroup', { logGroupName: name });
      if (res.ok) return 'deleted';
      if (res.type.endsWith('ResourceNotFoundException')) return 'absent';
      throw new Error(`DeleteLogGroup ${name}: ${res.status} ${res.type || res.text}`);
    },
  };
}

export function kmsKeys(region: string, credentials: AwsCredentialIdentityProvider, endpoint = serviceEndpoint('kms', region)): Keys {
  const call = jsonClient('kms', 'TrentService', region, credentials, endpoint);
  return {
    async scheduleDeletion(keyId) {
      const res = await call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 });
      if (res.ok) return 'scheduled';
      if (res.type.endsWith('NotFoundException')) return 'absent';
      // Already pending deletion: nothing more to do.
      if (res.type.endsWith('KMSInvalidStateException') && /pending ?deletion/i.test(res.text)) return 'scheduled';
      throw new Error(`ScheduleKeyDeletion ${keyId}: ${res.status} ${res.type || res.text}`);
    },
  };
}
