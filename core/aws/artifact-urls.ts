// Short-lived presigned GETs of artifacts, which the API Lambda answers with (a 302) instead of the
// bytes. Why not the bytes: a Lambda's synchronous response stops at 6 MB (Invoke API reference), a
// REST API's payload at 10 MB, and binary bodies need the API's binaryMediaTypes set to */* for
// browsers, which would turn every request body of the other routes into base64 as well ("Return
// binary media from a Lambda proxy integration"); transcripts run to 16 MiB (agent/worker/run.ts).
// A presigned URL made with a role's temporary credentials stops working when they expire, even
// before its own X-Amz-Expires (AWS re:Post, "presigned URL expired before its expiration"): 5
// minutes is well inside a Lambda's credentials' life.
//
// Signed here with @smithy/signature-v4 (a dependency already) as @aws-sdk/s3-request-presigner
// does: the payload is UNSIGNED-PAYLOAD, the path is not escaped twice.
import { Sha256 } from '@aws-crypto/sha256-js';
import type { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity } from '@smithy/types';
import { type ArtifactObject, contentDisposition } from '../artifacts.ts';

export const ARTIFACT_URL_SECONDS = 300;

export interface PresignOptions {
  region: string;
  credentials: AwsCredentialIdentity | (() => Promise<AwsCredentialIdentity>);
  /** An S3-compatible endpoint (LocalStack, AWS_ENDPOINT_URL_S3): path-style under it. Else AWS, virtual-hosted. */
  endpoint?: string;
  expiresIn?: number;
  now?: Date;
}

const encodeKey = (key: string) => key.split('/').map(encodeURIComponent).join('/');

/** A GET of the object that S3 answers without further credentials until it expires, saved under the artifact's name. */
export async function presignArtifact(object: ArtifactObject, opts: PresignOptions): Promise<{ url: string; expiresAt: string }> {
  const expiresIn = opts.expiresIn ?? ARTIFACT_URL_SECONDS;
  const now = opts.now ?? new Date();
  let protocol = 'https:';
  let hostname: string;
  let port: number | undefined;
  let path: string;
  if (opts.endpoint) {
    const base = new URL(opts.endpoint);
    protocol = base.protocol;
    hostname = base.hostname;
    port = base.port ? Number(base.port) : undefined;
    path = `${base.pathname.replace(/\/$/, '')}/${object.bucket}/${encodeKey(object.key)}`;
  } else {
    // The bucket's own regional host name (the stack's bucket names are DNS-safe).
    const suffix = opts.region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
    hostname = `${object.bucket}.s3.${opts.region}.${suffix}`;
    path = `/${encodeKey(object.key)}`;
  }
  const signer = new SignatureV4({ service: 's3', region: opts.region, credentials: opts.credentials, sha256: Sha256, uriEscapePath: false, applyChecksum: false });
  const host = port ? `${hostname}:${port}` : hostname;
  const signed = await signer.presign(
    {
      method: 'GET',
      protocol,
      hostname,
      port,
      path,
      query: { 'response-content-disposition': contentDisposition(object.name), 'response-content-type': object.contentType },
      headers: { host, 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD' },
    },
    { expiresIn, signingDate: now },
  );
  const query = Object.entries(signed.query ?? {})
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  return { url: `${protocol}//${host}${path}?${query}`, expiresAt: new Date(now.getTime() + expiresIn * 1000).toISOString() };
}

/** With the API's own S3 client: its region and credentials (the Lambda's role), its endpoint when one is set. */
export async function presignWithClient(s3: S3Client, object: ArtifactObject, expiresIn?: number): Promise<{ url: string; expiresAt: string }> {
  const region = await s3.config.region();
  return presignArtifact(object, {
    region,
    credentials: () => s3.config.credentials(),
    endpoint: process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL,
    expiresIn,
  });
}
