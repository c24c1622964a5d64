// Deleting CloudWatch Logs log groups. The project has no CloudWatch Logs client package, and this
// is the only call it needs: one signed JSON 1.1 request (X-Amz-Target Logs_20140328.DeleteLogGroup),
// signed as every SDK client signs. The endpoint follows the SDK's variables (AWS_ENDPOINT_URL_CLOUDWATCH_LOGS,
// AWS_ENDPOINT_URL), so LocalStack works too.
import { Sha256 } from '@aws-crypto/sha256-js';
import type { AwsCredentialIdentityProvider } from '@aws-sdk/types';
import { SignatureV4 } from '@smithy/signature-v4';

export interface LogGroups {
  /** Deletes a log group; 'absent' when there was none of that name. */
  delete(name: string): Promise<'deleted' | 'absent'>;
}

export function logsEndpoint(region: string, env: NodeJS.ProcessEnv = process.env): string {
  const override = env.AWS_ENDPOINT_URL_CLOUDWATCH_LOGS ?? env.AWS_ENDPOINT_URL;
  if (override) return override;
  return `https://logs.${region}.${region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com'}`;
}

export function cloudWatchLogs(region: string, credentials: AwsCredentialIdentityProvider, endpoint = logsEndpoint(region)): LogGroups {
  const signer = new SignatureV4({ service: 'logs', region, credentials, sha256: Sha256 });
  const url = new URL(endpoint);
  return {
    async delete(name) {
      const body = JSON.stringify({ logGroupName: name });
      const signed = await signer.sign({
        method: 'POST',
        protocol: url.protocol,
        hostname: url.hostname,
        port: url.port ? Number(url.port) : undefined,
        path: '/',
        headers: {
          host: url.host,
          'content-type': 'application/x-amz-json-1.1',
          'x-amz-target': 'Logs_20140328.DeleteLogGroup',
        },
        body,
      });
      const res = await fetch(new URL('/', url), { method: 'POST', headers: signed.headers as Record<string, string>, body });
      if (res.ok) return 'deleted';
      const text = await res.text();
      let type = '';
      try {
        type = String((JSON.parse(text) as { __type?: string }).__type ?? '');
      } catch {
        // not JSON: reported below
      }
      if (type.endsWith('ResourceNotFoundException')) return 'absent';
      throw new Error(`DeleteLogGroup ${name}: ${res.status} ${type || text.slice(0, 200)}`);
    },
  };
}
