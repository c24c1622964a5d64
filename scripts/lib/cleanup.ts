// What `npm run destroy` must do beside `cdk destroy` so that nothing of the stack is left behind.
//
// CloudFormation deletes what the template owns, except resources whose DeletionPolicy is Retain
// (here: the tables, both buckets, the Lambda, agent, flow-log and API access log groups, and API
// Gateway's account-wide CloudWatch role), and it refuses to delete a bucket that holds objects.
// Some log groups are not in the template at all: services create them on first write (Lambda's
// /aws/lambda/<function> for functions without a log group of their own, such as CDK's custom
// resource providers; API Gateway's execution logs; ECS Container Insights). The plan is computed
// from the deployed template and the stack's resources, so it follows changes to infra/.
import {
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetBucketVersioningCommand,
  ListObjectVersionsCommand,
  type ObjectIdentifier,
  S3Client,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ECSClient, StopTaskCommand, paginateListTasks } from '@aws-sdk/client-ecs';
import { DeleteQueueCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Keys, LogGroups } from './logs.ts';

export interface StackResource {
  readonly logicalId: string;
  readonly physicalId: string;
  readonly type: string;
}

interface TemplateResource {
  Type: string;
  DeletionPolicy?: string;
  Properties?: Record<string, unknown>;
}
export interface Template {
  Resources: Record<string, TemplateResource>;
}

export type LeftoverKind = 'bucket' | 'table' | 'log-group' | 'queue' | 'key' | 'other';

export interface Leftover {
  readonly kind: LeftoverKind;
  readonly name: string;
  readonly why: string;
}

export interface CleanupPlan {
  /** Buckets to empty before `cdk destroy` (CloudFormation cannot delete a bucket with objects). */
  readonly emptyFirst: string[];
  /** What remains after `cdk destroy` and is deleted then. */
  readonly deleteAfter: Leftover[];
  /** What remains on purpose (flags, or shared with other stacks). */
  readonly kept: Leftover[];
  /** The stack's ECS clusters: their running tasks are stopped so that the cluster and VPC can go. */
  readonly clusters: string[];
}

export interface CleanupOptions {
  /** Keep every log group (`--keep-logs`). */
  readonly keepLogs?: boolean;
  /** Keep the tables and the payload bucket with their data (`--keep-data`). */
  readonly keepData?: boolean;
}

const ref = (value: unknown): string | undefined => (value && typeof value === 'object' && 'Ref' in value ? String((value as { Ref: unknown }).Ref) : undefined);

export function planCleanup(template: Template, resources: readonly StackResource[], opts: CleanupOptions = {}): CleanupPlan {
  const physical = new Map(resources.map((r) => [r.logicalId, r.physicalId]));
  const emptyFirst: string[] = [];
  const deleteAfter: Leftover[] = [];
  const kept: Leftover[] = [];
  const clusters: string[] = [];
  const logGroup = (name: string, why: string) => (opts.keepLogs ? kept : deleteAfter).push({ kind: 'log-group', name, why: opts.keepLogs ? `${why}; --keep-logs` : why });

  for (const r of resources) {
    const t = template.Resources[r.logicalId];
    if (!t || !r.physicalId) continue;
    const retained = t.DeletionPolicy === 'Retain' || t.DeletionPolicy === 'RetainExceptOnCreate';
    const props = t.Properties ?? {};
    switch (t.Type) {
      case 'AWS::S3::Bucket':
        if (retained && opts.keepData) kept.push({ kind: 'bucket', name: r.physicalId, why: 'retained by the template; --keep-data' });
        else {
          emptyFirst.push(r.physicalId);
          if (retained) deleteAfter.push({ kind: 'bucket', name: r.physicalId, why: 'retained by the template' });
        }
        break;
      case 'AWS::DynamoDB::Table':
        if (retained) (opts.keepData ? kept : deleteAfter).push({ kind: 'table', name: r.physicalId, why: opts.keepData ? 'retained by the template; --keep-data' : 'retained by the template' });
        break;
      case 'AWS::Logs::LogGroup':
        if (retained) logGroup(r.physicalId, 'retained by the template');
        break;
      case 'AWS::SQS::Queue':
        // The physical id of a queue is its URL.
        if (retained) deleteAfter.push({ kind: 'queue', name: r.physicalId, why: 'retained by the template' });
        break;
      case 'AWS::KMS::Key':
        // A key kept data or logs depend on stays with them: without it they cannot be read.
        if (retained) {
          if (opts.keepData || opts.keepLogs) kept.push({ kind: 'key', name: r.physicalId, why: 'retained by the template; kept with the data or logs it encrypts' });
          else deleteAfter.push({ kind: 'key', name: r.physicalId, why: 'retained by the template; KMS deletes a key 7 days after it is scheduled' });
        }
        break;
      case 'AWS::Lambda::Function': {
        // A function with LoggingConfig.LogGroup writes there (a template log group); else Lambda
        // creates /aws/lambda/<name> on its first run, which no template owns.
        const own = (props.LoggingConfig as { LogGroup?: unknown } | undefined)?.LogGroup;
        if (!own) logGroup(`/aws/lambda/${r.physicalId}`, `Lambda's own log group of ${r.logicalId}`);
        break;
      }
      case 'AWS::ApiGateway::Stage': {
        const settings = (props.MethodSettings as { LoggingLevel?: string; DataTraceEnabled?: boolean }[] | undefined) ?? [];
        const logging = settings.some((s) => (s.LoggingLevel && s.LoggingLevel !== 'OFF') || s.DataTraceEnabled);
        const apiId = physical.get(ref(props.RestApiId) ?? '');
        if (logging && apiId) logGroup(`API-Gateway-Execution-Logs_${apiId}/${r.physicalId}`, `API Gateway's execution logs of stage ${r.physicalId}`);
        break;
      }
      case 'AWS::ECS::Cluster': {
        clusters.push(r.physicalId);
        const settings = (props.ClusterSettings as { Name?: string; Value?: string }[] | undefined) ?? [];
        if (settings.some((s) => s.Name === 'containerInsights' && s.Value !== 'disabled')) {
          logGroup(`/aws/ecs/containerinsights/${r.physicalId}/performance`, 'ECS Container Insights of the cluster');
        }
        break;
      }
      default:
        if (retained) kept.push({ kind: 'other', name: `${r.physicalId} (${t.Type})`, why: keptWhy(t.Type) });
    }
  }
  return { emptyFirst, deleteAfter, kept, clusters };
}

function keptWhy(type: string): string {
  if (type === 'AWS::ApiGateway::Account') return "the region's API Gateway logging setting, shared by every REST API of the account: left on purpose";
  if (type === 'AWS::IAM::Role') return 'retained by the template (CDK retains the API Gateway CloudWatch role, which the account setting names and other APIs may use): left on purpose';
  return `retained by the template (${type}): delete it by hand if nothing else uses it`;
}

/** One line per entry of the plan, for the terminal. */
export function describePlan(plan: CleanupPlan): string[] {
  return [
    ...plan.clusters.map((c) => `stop the agents (ECS tasks) of cluster ${c}`),
    ...plan.emptyFirst.map((b) => `empty bucket ${b}`),
    'cdk destroy',
    ...plan.deleteAfter.map((l) => `then delete ${l.kind} ${l.name} (${l.why})`),
    ...plan.kept.map((l) => `keep ${l.kind === 'other' ? '' : `${l.kind} `}${l.name}: ${l.why}`),
  ];
}

/** Deletes every object version and delete marker, or every object of an unversioned bucket. Returns how many. */
export async function emptyBucket(s3: S3Client, bucket: string): Promise<number> {
  const versioning = await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }));
  let deleted = 0;
  const remove = async (objects: ObjectIdentifier[]) => {
    // DeleteObjects takes at most 1000 keys a request.
    for (let i = 0; i < objects.length; i += 1000) {
      const batch = objects.slice(i, i + 1000);
      const res = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch, Quiet: true } }));
      if (res.Errors?.length) {
        const e = res.Errors[0]!;
        throw new Error(`bucket ${bucket}: ${res.Errors.length} object(s) could not be deleted, e.g. ${e.Key}: ${e.Code} ${e.Message}`);
      }
      deleted += batch.length;
    }
  };
  if (versioning.Status === 'Enabled' || versioning.Status === 'Suspended') {
    // ListObjectVersions pages with two markers, and the SDK has no paginator for it.
    let KeyMarker: string | undefined;
    let VersionIdMarker: string | undefined;
    do {
      const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, KeyMarker, VersionIdMarker }));
      await remove([...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({ Key: v.Key!, VersionId: v.VersionId })));
      ({ NextKeyMarker: KeyMarker, NextVersionIdMarker: VersionIdMarker } = page.IsTruncated ? page : { NextKeyMarker: undefined, NextVersionIdMarker: undefined });
    } while (KeyMarker !== undefined || VersionIdMarker !== undefined);
  } else {
    for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket })) {
      await remove((page.Contents ?? []).map((o) => ({ Key: o.Key! })));
    }
  }
  return deleted;
}

/** Stops the cluster's running tasks (agents the pool manager started); returns how many. */
export async function stopClusterTasks(ecs: ECSClient, cluster: string): Promise<number> {
  let stopped = 0;
  try {
    for await (const page of paginateListTasks({ client: ecs }, { cluster, desiredStatus: 'RUNNING' })) {
      for (const task of page.taskArns ?? []) {
        await ecs.send(new StopTaskCommand({ cluster, task, reason: 'npm run destroy' }));
        stopped++;
      }
    }
  } catch (err) {
    if ((err as { name?: string }).name === 'ClusterNotFoundException') return stopped;
    throw err;
  }
  return stopped;
}

export interface CleanupClients {
  readonly s3: S3Client;
  readonly dynamodb: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly logs: LogGroups;
  readonly keys: Keys;
}

/** Deletes what `cdk destroy` left; each result is a line for the terminal. A failure is reported and the rest goes on. */
export async function deleteLeftovers(leftovers: readonly Leftover[], clients: CleanupClients): Promise<{ lines: string[]; failed: number }> {
  const lines: string[] = [];
  let failed = 0;
  for (const l of leftovers) {
    try {
      if (l.kind === 'bucket') {
        const n = await deleteBucket(clients.s3, l.name);
        lines.push(`deleted bucket ${l.name}${n ? ` (and ${n} object(s) written since it was emptied)` : ''}`);
      } else if (l.kind === 'table') {
        await clients.dynamodb.send(new DeleteTableCommand({ TableName: l.name })).catch((err) => {
          if ((err as { name?: string }).name !== 'ResourceNotFoundException') throw err;
        });
        lines.push(`deleted table ${l.name}`);
      } else if (l.kind === 'log-group') {
        const result = await clients.logs.delete(l.name);
        lines.push(result === 'deleted' ? `deleted log group ${l.name}` : `no log group ${l.name} (never written)`);
      } else if (l.kind === 'queue') {
        await clients.sqs.send(new DeleteQueueCommand({ QueueUrl: l.name })).catch((err) => {
          if (!/NonExistentQueue|QueueDoesNotExist/.test((err as { name?: string }).name ?? '')) throw err;
        });
        lines.push(`deleted queue ${l.name}`);
      } else if (l.kind === 'key') {
        const result = await clients.keys.scheduleDeletion(l.name);
        lines.push(result === 'scheduled' ? `scheduled key ${l.name} for deletion in 7 days` : `no key ${l.name}`);
      }
    } catch (err) {
      failed++;
      lines.push(`could not delete ${l.kind} ${l.name}: ${(err as Error).message}`);
    }
  }
  return { lines, failed };
}

/** Server access logs arrive minutes after the requests they record: empty again until the bucket goes. */
async function deleteBucket(s3: S3Client, bucket: string, attempts = 3): Promise<number> {
  let late = 0;
  for (let i = 1; ; i++) {
    try {
      await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
      return late;
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'NoSuchBucket') return late;
      if (name !== 'BucketNotEmpty' || i >= attempts) throw err;
      late += await emptyBucket(s3, bucket);
    }
  }
}
