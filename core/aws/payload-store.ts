// Claim-check storage: small JSON values stay inline in a table item, large ones go to the bucket.
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Stored } from '../records.ts';

/** Inline up to this many bytes of JSON; DynamoDB items stop at 400 KB. */
export const INLINE_LIMIT_BYTES = 200 * 1024;

export class PayloadStore {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  async putJson(key: string, value: unknown): Promise<number> {
    const body = JSON.stringify(value);
    await this.s3.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/json' }),
    );
    return Buffer.byteLength(body);
  }

  /** Writes bytes as they are (artifacts); returns their size. */
  async putBytes(key: string, body: Uint8Array, contentType: string): Promise<number> {
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType }));
    return body.byteLength;
  }

  async getBytes(key: string): Promise<Uint8Array> {
    const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    return res.Body!.transformToByteArray();
  }

  async getJson<T>(key: string): Promise<T> {
    const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    const text = await res.Body!.transformToString('utf8');
    return JSON.parse(text) as T;
  }

  /** Keeps the value inline when small, else writes it under `key` and returns the pointer. */
  async store<T>(key: string, value: T): Promise<Stored<T>> {
    const bytes = Buffer.byteLength(JSON.stringify(value));
    if (bytes <= INLINE_LIMIT_BYTES) return { inline: value };
    await this.putJson(key, value);
    return { key, bytes };
  }

  async load<T>(stored: Stored<T>): Promise<T> {
    return 'inline' in stored ? stored.inline : this.getJson<T>(stored.key);
  }

  get bucketName(): string {
    return this.bucket;
  }

  uri(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }
}
