// The CloudWatch Logs and KMS calls of `npm run destroy`: deleting the log groups CloudFormation
// leaves behind and scheduling a retained customer-managed key's deletion. The SDK's clients find
// their endpoint as every client does (AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, else AWS's).
import { CloudWatchLogsClient, DeleteLogGroupCommand } from '@aws-sdk/client-cloudwatch-logs';
import { KMSClient, ScheduleKeyDeletionCommand } from '@aws-sdk/client-kms';
import type { AwsCredentialIdentityProvider } from '@aws-sdk/types';

export interface LogGroups {
  /** Deletes a log group; 'absent' when there was none of that name. */
  delete(name: string): Promise<'deleted' | 'absent'>;
}

export interface Keys {
  /** Schedules a customer-managed key's deletion after the shortest wait KMS allows (7 days). */
  scheduleDeletion(keyId: string): Promise<'scheduled' | 'absent'>;
}

/** An SDK error as one line: its status and its name (what a person needs to act on it). */
function failure(action: string, subject: string, err: unknown): Error {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  return new Error(`${action} ${subject}: ${e.$metadata?.httpStatusCode ?? ''} ${e.name ?? e.message ?? String(err)}`.replace(/ {2}/, ' '), { cause: err });
}

export function cloudWatchLogs(region: string, credentials: AwsCredentialIdentityProvider, endpoint?: string): LogGroups {
  const client = new CloudWatchLogsClient({ region, credentials, ...(endpoint ? { endpoint } : {}) });
  return {
    async delete(name) {
      try {
        await client.send(new DeleteLogGroupCommand({ logGroupName: name }));
        return 'deleted';
      } catch (err) {
        if ((err as Error).name === 'ResourceNotFoundException') return 'absent';
        throw failure('DeleteLogGroup', name, err);
      }
    },
  };
}

export function kmsKeys(region: string, credentials: AwsCredentialIdentityProvider, endpoint?: string): Keys {
  const client = new KMSClient({ region, credentials, ...(endpoint ? { endpoint } : {}) });
  return {
    async scheduleDeletion(keyId) {
      try {
        await client.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
        return 'scheduled';
      } catch (err) {
        const e = err as Error;
        if (e.name === 'NotFoundException') return 'absent';
        // Already pending deletion: nothing more to do.
        if (e.name === 'KMSInvalidStateException' && /pending ?deletion/i.test(e.message)) return 'scheduled';
        throw failure('ScheduleKeyDeletion', keyId, err);
      }
    },
  };
}
