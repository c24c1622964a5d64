import { afterEach, describe, expect, it } from 'vitest';
import { signedHeaders } from '../../cli/aws.ts';

describe('xl against the deployed API', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('signs requests with SigV4 for execute-api in the URL\'s region', async () => {
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'session' });
    const headers = await signedHeaders('POST', 'https://abc123.execute-api.eu-west-1.amazonaws.com/v1/executions', '{"pattern":"sequential"}', {
      'content-type': 'application/json',
    });
    expect(headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=.*host.*, Signature=[0-9a-f]{64}$/);
    expect(headers['x-amz-security-token']).toBe('session');
    expect(headers['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
  });
});
