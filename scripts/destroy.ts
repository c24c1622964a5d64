// `npm run destroy [-- --keep-logs --keep-data --dry-run -c stackName=... --profile ...]`: stops the
// agents, empties the stack's buckets, runs `cdk destroy --force`, then deletes what CloudFormation
// leaves (retained tables, buckets and log groups, and the log groups services created outside the
// template) unless kept by a flag. --dry-run prints the plan only (README, "Deploy to AWS").
import { join } from 'node:path';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ECSClient } from '@aws-sdk/client-ecs';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { UsageError, parseCdkArgs } from './lib/cdk-args.ts';
import { destroyStack } from './lib/flows.ts';
import { cloudWatchLogs, kmsKeys } from './lib/logs.ts';
import { reportFailure, spawnRun } from './lib/run.ts';

const root = join(import.meta.dirname, '..');
try {
  const args = parseCdkArgs(process.argv.slice(2), process.env, ['--keep-logs', '--keep-data', '--dry-run']);
  const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  const config = region ? { region } : {};
  await destroyStack({
    cfn: new CloudFormationClient(config),
    s3: new S3Client(config),
    dynamodb: new DynamoDBClient(config),
    ecs: new ECSClient(config),
    sqs: new SQSClient(config),
    logs: (r) => cloudWatchLogs(r, defaultProvider()),
    keys: (r) => kmsKeys(r, defaultProvider()),
    run: spawnRun,
    env: process.env,
    args,
    cdk: join(root, 'node_modules/.bin/cdk'),
    print: (line) => console.log(line),
  });
} catch (err) {
  if (err instanceof UsageError) {
    console.error(`usage: npm run destroy [-- --keep-logs --keep-data --dry-run -c stackName=name --profile name]: ${err.message}`);
    process.exitCode = 2;
  } else reportFailure(err);
}
