// npm run deploy / destroy (scripts/): their decisions against mocked AWS clients and a fake runner
// standing in for cdk and docker. Nothing here reaches AWS.
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand, GetTemplateCommand, ListStackResourcesCommand } from '@aws-sdk/client-cloudformation';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ECSClient, ListTasksCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import {
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetBucketVersioningCommand,
  ListObjectVersionsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_STACK_NAME, parseCdkArgs } from '../../scripts/lib/cdk-args.ts';
import { type Template, emptyBucket, planCleanup } from '../../scripts/lib/cleanup.ts';
import { builderPlatforms, checkImageBuilder } from '../../scripts/lib/docker.ts';
import { deployStack, destroyStack } from '../../scripts/lib/flows.ts';
import { cloudWatchLogs, kmsKeys } from '../../scripts/lib/logs.ts';
import { bootstrapDecision } from '../../scripts/lib/preflight.ts';
import { DeployError, type Run, type RunResult } from '../../scripts/lib/run.ts';
import { deploySummary } from '../../scripts/lib/summary.ts';

const API = 'https://abc123defg.execute-api.eu-west-1.amazonaws.com/v1/';
const OUTPUTS = [
  { OutputKey: 'ApiUrl', OutputValue: API },
  { OutputKey: 'DashboardName', OutputValue: 'xl-dashboard' },
  { OutputKey: 'PayloadBucketName', OutputValue: 'xl-payloadbucket-1' },
];
const notFound = (name: string) => Object.assign(new Error(`Stack with id ${name} does not exist`), { name: 'ValidationError' });

/** A fake runner: records each command; `synth` writes the asset manifest of an arm64 image. */
function fakeRunner(answers: Record<string, Partial<RunResult>> = {}) {
  const calls: string[][] = [];
  const run: Run = async (command, args) => {
    calls.push([command.split('/').pop()!, ...args]);
    if (args[0] === 'synth') {
      const out = args[args.indexOf('--output') + 1]!;
      await mkdir(out, { recursive: true });
      await writeFile(join(out, 'xl.assets.json'), JSON.stringify({ dockerImages: { h: { source: { directory: 'asset.h', platform: 'linux/arm64' } } } }));
    }
    const key = [command.split('/').pop(), ...args].join(' ');
    const answer = Object.entries(answers).find(([prefix]) => key.startsWith(prefix))?.[1] ?? {};
    return { code: 0, stdout: '', stderr: '', ...answer };
  };
  return { run, calls, commands: () => calls.map((c) => c.slice(0, 3).join(' ')) };
}

const DOCKER_OK = {
  'docker version': { stdout: '28.2.2\n' },
  'docker buildx version': { stdout: 'github.com/docker/buildx v0.24.0 abc\n' },
  'docker buildx inspect': { stdout: 'Name: default\nDriver: docker\nPlatforms: linux/amd64, linux/amd64/v2, linux/arm64, linux/arm/v7\n' },
};

const creds = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' };
const cfn = mockClient(CloudFormationClient);
beforeEach(() => cfn.reset());

function deps(run: Run, extra: { env?: NodeJS.ProcessEnv; argv?: string[]; client?: CloudFormationClient } = {}) {
  const lines: string[] = [];
  const env = extra.env ?? {};
  return {
    lines,
    deps: {
      cfn: extra.client ?? new CloudFormationClient({ region: 'eu-west-1', credentials: creds }),
      run,
      env,
      args: parseCdkArgs(extra.argv ?? [], env, ['--keep-logs', '--keep-data', '--dry-run']),
      cdk: '/project/node_modules/.bin/cdk',
      print: (line: string) => lines.push(line),
      arch: 'x64',
    },
  };
}

describe('npm run deploy', () => {
  it('refuses without credentials before running anything, and names the fix', async () => {
    const { run, calls } = fakeRunner();
    const client = new CloudFormationClient({ region: 'eu-west-1', credentials: async () => Promise.reject(new Error('Could not load credentials from any providers')) });
    const err = await deployStack(deps(run, { client }).deps).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeployError);
    expect((err as DeployError).message).toMatch(/no AWS credentials found/);
    expect((err as DeployError).fix).toMatch(/aws configure.*aws sso login.*AWS_ACCESS_KEY_ID/);
    expect(calls).toEqual([]);
  });

  it('refuses without a region, naming AWS_REGION', async () => {
    const { run, calls } = fakeRunner();
    const client = new CloudFormationClient({ region: async (): Promise<string> => Promise.reject(new Error('Region is missing')), credentials: creds });
    const err = await deployStack(deps(run, { client }).deps).catch((e: unknown) => e);
    expect((err as DeployError).message).toBe('no AWS region is set');
    expect((err as DeployError).fix).toMatch(/export AWS_REGION=/);
    expect(calls).toEqual([]);
  });

  it('takes AWS_DEFAULT_REGION when the SDK finds no region, and hands it to cdk as AWS_REGION', async () => {
    const { run } = fakeRunner(DOCKER_OK);
    const envs: NodeJS.ProcessEnv[] = [];
    const recording: Run = (c, a, o) => (o?.env && envs.push(o.env), run(c, a, o));
    cfn.on(DescribeStacksCommand, { StackName: 'CDKToolkit' }).resolves({ Stacks: [{ StackName: 'CDKToolkit', StackStatus: 'UPDATE_COMPLETE', CreationTime: new Date() }] });
    cfn.on(DescribeStacksCommand, { StackName: 'xl' }).resolves({ Stacks: [{ StackName: 'xl', StackStatus: 'CREATE_COMPLETE', CreationTime: new Date(), Outputs: OUTPUTS }] });
    const client = new CloudFormationClient({ region: async (): Promise<string> => Promise.reject(new Error('Region is missing')), credentials: creds });
    const { deps: d, lines } = deps(recording, { client, env: { AWS_DEFAULT_REGION: 'ap-south-1' } });
    await deployStack(d);
    expect(lines[0]).toBe('Deploying stack xl to ap-south-1.');
    expect(envs.every((e) => e.AWS_REGION === 'ap-south-1')).toBe(true);
  });

  it('bootstraps the environment when it has no CDKToolkit stack, then deploys the synthesized assembly', async () => {
    const { run, commands, calls } = fakeRunner(DOCKER_OK);
    cfn.on(DescribeStacksCommand, { StackName: 'CDKToolkit' }).rejects(notFound('CDKToolkit'));
    cfn.on(DescribeStacksCommand, { StackName: 'xl' }).resolves({ Stacks: [{ StackName: 'xl', StackStatus: 'CREATE_COMPLETE', CreationTime: new Date(), Outputs: OUTPUTS }] });
    const { deps: d, lines } = deps(run, { argv: ['-c', 'alarmEmail=oncall@example.com', '--require-approval', 'never'] });
    await deployStack(d);
    expect(commands()).toEqual(['cdk synth --quiet', 'docker version --format', 'docker buildx version', 'docker buildx inspect', 'cdk bootstrap --app', 'cdk deploy --app']);
    const synth = calls[0]!;
    expect(synth).toEqual(expect.arrayContaining(['-c', 'alarmEmail=oncall@example.com', '-c', 'stackName=xl']));
    const deploy = calls.at(-1)!;
    expect(deploy.slice(0, 4)).toEqual(['cdk', 'deploy', '--app', synth[synth.indexOf('--output') + 1]]);
    expect(deploy).toEqual(expect.arrayContaining(['xl', '--require-approval', 'never']));
    expect(lines).toContain('Bootstrapping: this environment has no CDKToolkit stack.');
    expect(lines).toContain(`  XL_ENDPOINT=${API} npm run xl -- run examples/parallel.json --watch`);
    expect(lines.join('\n')).toMatch(/Alarms go to oncall@example.com once its owner confirms/);
  });

  it('skips the bootstrap when the toolkit stack is in place', async () => {
    const { run, commands } = fakeRunner(DOCKER_OK);
    cfn.on(DescribeStacksCommand, { StackName: 'CDKToolkit' }).resolves({
      Stacks: [{ StackName: 'CDKToolkit', StackStatus: 'UPDATE_COMPLETE', CreationTime: new Date(), Outputs: [{ OutputKey: 'BootstrapVersion', OutputValue: '29' }] }],
    });
    cfn.on(DescribeStacksCommand, { StackName: 'xl' }).resolves({ Stacks: [{ StackName: 'xl', StackStatus: 'UPDATE_COMPLETE', CreationTime: new Date(), Outputs: OUTPUTS }] });
    const { deps: d, lines } = deps(run);
    await deployStack(d);
    expect(commands()).not.toContain('cdk bootstrap --app');
    expect(lines).toContain('CDKToolkit is in place (version 29).');
  });

  it('stops before building when AWS refuses the credentials', async () => {
    const { run, calls } = fakeRunner(DOCKER_OK);
    cfn.on(DescribeStacksCommand).rejects(Object.assign(new Error('The security token included in the request is expired'), { name: 'ExpiredToken' }));
    const err = await deployStack(deps(run).deps).catch((e: unknown) => e);
    expect((err as DeployError).message).toMatch(/AWS refused the credentials \(ExpiredToken/);
    expect((err as DeployError).fix).toMatch(/aws sso login/);
    expect(calls).toEqual([]);
  });

  it('stops when cdk deploy fails, without reading outputs', async () => {
    const { run } = fakeRunner({ ...DOCKER_OK, 'cdk deploy': { code: 1 } });
    cfn.on(DescribeStacksCommand, { StackName: 'CDKToolkit' }).resolves({ Stacks: [{ StackName: 'CDKToolkit', StackStatus: 'CREATE_COMPLETE', CreationTime: new Date() }] });
    cfn.on(DescribeStacksCommand, { StackName: 'xl' }).rejects(notFound('xl'));
    await expect(deployStack(deps(run).deps)).rejects.toThrow('cdk deploy failed (exit 1)');
    // Only the look before deploying: no outputs are read.
    expect(cfn.commandCalls(DescribeStacksCommand, { StackName: 'xl' })).toHaveLength(1);
  });

  it('sends a stack whose first deploy rolled back to npm run destroy first', async () => {
    const { run, calls } = fakeRunner(DOCKER_OK);
    cfn.on(DescribeStacksCommand, { StackName: 'staging' }).resolves({ Stacks: [{ StackName: 'staging', StackStatus: 'ROLLBACK_COMPLETE', CreationTime: new Date() }] });
    const err = await deployStack(deps(run, { argv: ['-c', 'stackName=staging'] }).deps).catch((e: unknown) => e);
    expect((err as DeployError).message).toMatch(/stack staging is ROLLBACK_COMPLETE: its first deploy failed, and the rollback kept its retained tables/);
    expect((err as DeployError).fix).toBe('npm run destroy -- -c stackName=staging removes them and the stack; then npm run deploy again');
    expect(calls).toEqual([]);
  });
});

describe('the bootstrap decision', () => {
  const toolkit = (StackStatus: string, version?: string) => ({
    StackName: 'CDKToolkit',
    StackStatus,
    CreationTime: new Date(),
    Outputs: version ? [{ OutputKey: 'BootstrapVersion', OutputValue: version }] : [],
  }) as never;

  it('bootstraps a missing or outdated toolkit stack and skips a current one', () => {
    expect(bootstrapDecision(undefined, 'CDKToolkit')).toEqual({ action: 'bootstrap', why: 'this environment has no CDKToolkit stack' });
    expect(bootstrapDecision(toolkit('UPDATE_COMPLETE', '4'), 'CDKToolkit')).toMatchObject({ action: 'bootstrap', why: expect.stringContaining('version 4, older than 6') });
    expect(bootstrapDecision(toolkit('CREATE_COMPLETE', '29'), 'CDKToolkit')).toEqual({ action: 'skip', version: 29 });
  });

  it('refuses a toolkit stack that failed or is busy, saying how to clear it', () => {
    expect(() => bootstrapDecision(toolkit('ROLLBACK_COMPLETE'), 'CDKToolkit')).toThrow(/CDKToolkit stack is ROLLBACK_COMPLETE/);
    try {
      bootstrapDecision(toolkit('DELETE_FAILED'), 'MyToolkit');
    } catch (err) {
      expect((err as DeployError).fix).toMatch(/delete-stack --stack-name MyToolkit/);
    }
    expect(() => bootstrapDecision(toolkit('UPDATE_IN_PROGRESS'), 'CDKToolkit')).toThrow(/UPDATE_IN_PROGRESS/);
  });
});

describe('the image builder check', () => {
  it('asks for buildx when the plugin is missing', async () => {
    const { run } = fakeRunner({ 'docker version': { stdout: '28.2.2' }, 'docker buildx version': { code: 1, stderr: "docker: unknown command: docker buildx\n\nRun 'docker --help'" } });
    const err = await checkImageBuilder(run, ['linux/arm64'], { arch: 'x64' }).catch((e: unknown) => e);
    expect((err as DeployError).message).toMatch(/docker buildx is missing \(docker: unknown command: docker buildx\)/);
    expect((err as DeployError).fix).toMatch(/docker-buildx-plugin/);
  });

  it('asks for QEMU binfmt when an x86_64 builder cannot build arm64', async () => {
    const { run } = fakeRunner({ ...DOCKER_OK, 'docker buildx inspect': { stdout: 'Platforms: linux/amd64, linux/amd64/v2, linux/386\n' } });
    const err = await checkImageBuilder(run, ['linux/arm64'], { arch: 'x64' }).catch((e: unknown) => e);
    expect((err as DeployError).message).toBe('the docker builder cannot build linux/arm64 images on this linux/amd64 machine (it builds: linux/amd64, linux/amd64/v2, linux/386)');
    expect((err as DeployError).fix).toMatch(/docker run --privileged --rm tonistiigi\/binfmt --install arm64/);
  });

  it('needs no emulation on an arm64 machine, and names a missing or stopped docker', async () => {
    const native = fakeRunner(DOCKER_OK);
    await checkImageBuilder(native.run, ['linux/arm64'], { arch: 'arm64' });
    expect(native.commands()).toEqual(['docker version --format', 'docker buildx version']);
    await expect(checkImageBuilder(fakeRunner({ 'docker version': { code: 127 } }).run, ['linux/arm64'])).rejects.toThrow(/docker is not installed/);
    await expect(checkImageBuilder(fakeRunner({ 'docker version': { code: 1, stderr: 'Cannot connect to the Docker daemon' } }).run, ['linux/arm64'])).rejects.toThrow(
      'the Docker daemon does not answer (Cannot connect to the Docker daemon)',
    );
  });

  it("reads the builder's platforms, default markers included", () => {
    expect(builderPlatforms('Name: b\nPlatforms: linux/arm64*, linux/amd64\n')).toEqual(['linux/arm64', 'linux/amd64']);
  });
});

describe('the summary', () => {
  it('prints the API URL and the xl line with the profile that deployed', () => {
    const lines = deploySummary({ stackName: 'staging', region: 'eu-west-1', outputs: { ApiUrl: API, DashboardName: 'staging-dash' }, profile: 'my team' });
    expect(lines).toEqual([
      'Deployed stack staging to eu-west-1.',
      `  API:        ${API}`,
      '  Dashboard:  https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards/dashboard/staging-dash',
      '',
      'Run a plan on it (xl signs with your AWS credentials; the API is IAM-authorized):',
      `  XL_ENDPOINT=${API} AWS_PROFILE='my team' npm run xl -- run examples/parallel.json --watch`,
      `  XL_ENDPOINT=${API} AWS_PROFILE='my team' npm run xl -- health`,
      '',
      'Remove it all with: npm run destroy -- -c stackName=staging',
    ]);
  });

  it('names the stack when it lacks an ApiUrl output', () => {
    expect(() => deploySummary({ stackName: 'other', region: 'eu-west-1', outputs: {} })).toThrow('stack other has no ApiUrl output');
  });
});

describe('the arguments', () => {
  it('passes context and cdk options through and finds the stack name as infra/app.ts does', async () => {
    const a = parseCdkArgs(['-c', 'alarmEmail=a@b.c', '--context', 'stackName=prod', '--profile=ops', '--hotswap', '--keep-logs'], {}, ['--keep-logs']);
    expect(a.stackName).toBe('prod');
    expect(a.contextArgs).toEqual(['-c', 'alarmEmail=a@b.c', '-c', 'stackName=prod']);
    expect(a.profileArgs).toEqual(['--profile', 'ops']);
    expect(a.deployArgs).toEqual(['--hotswap']);
    expect([...a.flags]).toEqual(['--keep-logs']);
    expect(parseCdkArgs([], { XL_STACK_NAME: 'staging' }).contextArgs).toEqual(['-c', 'stackName=staging']);
    expect(() => parseCdkArgs(['-c', 'novalue'], {})).toThrow('-c takes key=value, got "novalue"');
    const { DEFAULT_STACK_NAME: infraDefault } = await import('../../infra/stack.ts');
    expect(parseCdkArgs([], {}).stackName).toBe(infraDefault);
    expect(DEFAULT_STACK_NAME).toBe(infraDefault);
  });
});

// The shape of the deployed template's parts that matter to destroy (infra/constructs/*.ts).
const TEMPLATE: Template = {
  Resources: {
    ExecutionsTable: { Type: 'AWS::DynamoDB::Table', DeletionPolicy: 'Retain' },
    PayloadBucket: { Type: 'AWS::S3::Bucket', DeletionPolicy: 'Retain' },
    ScratchBucket: { Type: 'AWS::S3::Bucket', DeletionPolicy: 'Delete' },
    ApiHandlerLogs: { Type: 'AWS::Logs::LogGroup', DeletionPolicy: 'Retain' },
    SequentialLogs: { Type: 'AWS::Logs::LogGroup', DeletionPolicy: 'Delete' },
    ApiFunction: { Type: 'AWS::Lambda::Function', Properties: { LoggingConfig: { LogGroup: { Ref: 'ApiHandlerLogs' } } } },
    CustomProviderHandler: { Type: 'AWS::Lambda::Function', Properties: {} },
    RestApi: { Type: 'AWS::ApiGateway::RestApi' },
    Stage: { Type: 'AWS::ApiGateway::Stage', Properties: { RestApiId: { Ref: 'RestApi' }, MethodSettings: [{ LoggingLevel: 'ERROR' }] } },
    Cluster: { Type: 'AWS::ECS::Cluster', Properties: { ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }] } },
    CloudWatchRole: { Type: 'AWS::IAM::Role', DeletionPolicy: 'Retain' },
  },
};
const RESOURCES = [
  ['ExecutionsTable', 'xl-ExecutionsTable-1'],
  ['PayloadBucket', 'xl-payloadbucket-1'],
  ['ScratchBucket', 'xl-scratch-1'],
  ['ApiHandlerLogs', 'xl-ApiHandlerLogs-1'],
  ['SequentialLogs', '/aws/vendedlogs/states/xl-SequentialExecution'],
  ['ApiFunction', 'xl-ApiFunction-1'],
  ['CustomProviderHandler', 'xl-CustomVpcRestrictDefaultSG-1'],
  ['RestApi', 'abc123defg'],
  ['Stage', 'v1'],
  ['Cluster', 'xl-Cluster-1'],
  ['CloudWatchRole', 'xl-ApiCloudWatchRole-1'],
].map(([logicalId, physicalId]) => ({ logicalId: logicalId!, physicalId: physicalId!, type: TEMPLATE.Resources[logicalId!]!.Type }));

describe('the destroy plan', () => {
  it('empties every bucket first and deletes what CloudFormation retains or never owned', () => {
    const plan = planCleanup(TEMPLATE, RESOURCES);
    expect(plan.emptyFirst).toEqual(['xl-payloadbucket-1', 'xl-scratch-1']);
    expect(plan.clusters).toEqual(['xl-Cluster-1']);
    expect(plan.deleteAfter.map((l) => `${l.kind} ${l.name}`)).toEqual([
      'table xl-ExecutionsTable-1',
      'bucket xl-payloadbucket-1',
      'log-group xl-ApiHandlerLogs-1',
      'log-group /aws/lambda/xl-CustomVpcRestrictDefaultSG-1',
      'log-group API-Gateway-Execution-Logs_abc123defg/v1',
      'log-group /aws/ecs/containerinsights/xl-Cluster-1/performance',
    ]);
    expect(plan.kept).toEqual([{ kind: 'other', name: 'xl-ApiCloudWatchRole-1 (AWS::IAM::Role)', why: expect.stringContaining('left on purpose') }]);
  });

  it('deletes retained queues and schedules retained keys for deletion, unless the data or logs they encrypt are kept', () => {
    const template: Template = {
      Resources: {
        Key: { Type: 'AWS::KMS::Key', DeletionPolicy: 'Retain' },
        Queue: { Type: 'AWS::SQS::Queue', DeletionPolicy: 'Retain' },
      },
    };
    const resources = [
      { logicalId: 'Key', physicalId: '1234abcd-12ab-34cd-56ef-1234567890ab', type: 'AWS::KMS::Key' },
      { logicalId: 'Queue', physicalId: 'https://sqs.eu-west-1.amazonaws.com/1/xl-coder-high', type: 'AWS::SQS::Queue' },
    ];
    expect(planCleanup(template, resources).deleteAfter.map((l) => `${l.kind} ${l.name}`)).toEqual([
      'key 1234abcd-12ab-34cd-56ef-1234567890ab',
      'queue https://sqs.eu-west-1.amazonaws.com/1/xl-coder-high',
    ]);
    expect(planCleanup(template, resources, { keepData: true }).kept).toEqual([{ kind: 'key', name: '1234abcd-12ab-34cd-56ef-1234567890ab', why: expect.stringContaining('kept with the data or logs it encrypts') }]);
  });

  it('keeps log groups with --keep-logs and the data with --keep-data', () => {
    const plan = planCleanup(TEMPLATE, RESOURCES, { keepLogs: true, keepData: true });
    expect(plan.emptyFirst).toEqual(['xl-scratch-1']);
    expect(plan.deleteAfter).toEqual([]);
    expect(plan.kept.map((l) => l.name)).toEqual(expect.arrayContaining(['xl-ExecutionsTable-1', 'xl-payloadbucket-1', '/aws/lambda/xl-CustomVpcRestrictDefaultSG-1']));
  });
});

describe('emptying a bucket', () => {
  const s3 = mockClient(S3Client);
  beforeEach(() => s3.reset());

  it('deletes every object of an unversioned bucket, page by page', async () => {
    s3.on(GetBucketVersioningCommand).resolves({});
    s3.on(ListObjectsV2Command)
      .resolvesOnce({ Contents: [{ Key: 'a' }, { Key: 'b' }], IsTruncated: true, NextContinuationToken: 't1' })
      .resolvesOnce({ Contents: [{ Key: 'c' }], IsTruncated: false });
    s3.on(DeleteObjectsCommand).resolves({});
    expect(await emptyBucket(new S3Client({ region: 'eu-west-1' }), 'bkt')).toBe(3);
    // The paginator reuses one input object, so only the last token can be read back.
    expect(s3.commandCalls(ListObjectsV2Command)).toHaveLength(2);
    expect(s3.commandCalls(ListObjectsV2Command)[1]!.args[0].input.ContinuationToken).toBe('t1');
    expect(s3.commandCalls(DeleteObjectsCommand).map((c) => c.args[0].input.Delete!.Objects!.map((o) => o.Key))).toEqual([['a', 'b'], ['c']]);
  });

  it('deletes every version and delete marker of a versioned bucket, 1000 at most a request', async () => {
    s3.on(GetBucketVersioningCommand).resolves({ Status: 'Enabled' });
    const versions = Array.from({ length: 1001 }, (_, i) => ({ Key: `k${i}`, VersionId: `v${i}` }));
    s3.on(ListObjectVersionsCommand)
      .resolvesOnce({ Versions: versions, DeleteMarkers: [{ Key: 'gone', VersionId: 'm1' }], IsTruncated: true, NextKeyMarker: 'k1000', NextVersionIdMarker: 'v1000' })
      .resolvesOnce({ Versions: [{ Key: 'last', VersionId: 'v9' }], IsTruncated: false });
    s3.on(DeleteObjectsCommand).resolves({});
    expect(await emptyBucket(new S3Client({ region: 'eu-west-1' }), 'bkt')).toBe(1003);
    expect(s3.commandCalls(ListObjectVersionsCommand).map((c) => [c.args[0].input.KeyMarker, c.args[0].input.VersionIdMarker])).toEqual([[undefined, undefined], ['k1000', 'v1000']]);
    const batches = s3.commandCalls(DeleteObjectsCommand).map((c) => c.args[0].input.Delete!.Objects!);
    expect(batches.map((b) => b.length)).toEqual([1000, 2, 1]);
    expect(batches[1]).toEqual([{ Key: 'k1000', VersionId: 'v1000' }, { Key: 'gone', VersionId: 'm1' }]);
  });

  it('fails naming an object that could not be deleted', async () => {
    s3.on(GetBucketVersioningCommand).resolves({});
    s3.on(ListObjectsV2Command).resolves({ Contents: [{ Key: 'locked' }] });
    s3.on(DeleteObjectsCommand).resolves({ Errors: [{ Key: 'locked', Code: 'AccessDenied', Message: 'Access Denied' }] });
    await expect(emptyBucket(new S3Client({ region: 'eu-west-1' }), 'bkt')).rejects.toThrow('bucket bkt: 1 object(s) could not be deleted, e.g. locked: AccessDenied Access Denied');
  });
});

describe('npm run destroy', () => {
  const s3 = mockClient(S3Client);
  const ddb = mockClient(DynamoDBClient);
  const ecs = mockClient(ECSClient);
  beforeEach(() => {
    for (const m of [s3, ddb, ecs]) m.reset();
    cfn.on(DescribeStacksCommand, { StackName: 'xl' }).resolves({ Stacks: [{ StackName: 'xl', StackStatus: 'UPDATE_COMPLETE', CreationTime: new Date() }] });
    cfn.on(GetTemplateCommand).resolves({ TemplateBody: JSON.stringify(TEMPLATE) });
    cfn.on(ListStackResourcesCommand)
      .resolvesOnce({ StackResourceSummaries: RESOURCES.slice(0, 6).map(summary), NextToken: 'n' })
      .resolvesOnce({ StackResourceSummaries: RESOURCES.slice(6).map(summary) });
    s3.on(GetBucketVersioningCommand).resolves({});
    s3.on(ListObjectsV2Command).resolves({ Contents: [{ Key: 'plan.json' }] });
    s3.on(DeleteObjectsCommand).resolves({});
    s3.on(DeleteBucketCommand).resolves({});
    ddb.on(DeleteTableCommand).resolves({});
    ecs.on(ListTasksCommand).resolves({ taskArns: ['arn:aws:ecs:eu-west-1:1:task/xl-Cluster-1/t1'] });
    ecs.on(StopTaskCommand).resolves({});
  });
  const summary = (r: { logicalId: string; physicalId: string; type: string }) => ({
    LogicalResourceId: r.logicalId,
    PhysicalResourceId: r.physicalId,
    ResourceType: r.type,
    ResourceStatus: 'CREATE_COMPLETE' as const,
    LastUpdatedTimestamp: new Date(),
  });
  function destroyDeps(run: Run, argv: string[] = []) {
    const deleted: string[] = [];
    const order: string[] = [];
    const { deps: d, lines } = deps(async (c, a, o) => (order.push(`run ${a[0]}`), run(c, a, o)), { argv });
    s3.on(DeleteObjectsCommand).callsFake(() => (order.push('empty'), {}));
    return {
      lines,
      deleted,
      order,
      deps: {
        ...d,
        s3: new S3Client({ region: 'eu-west-1' }),
        dynamodb: new DynamoDBClient({ region: 'eu-west-1' }),
        ecs: new ECSClient({ region: 'eu-west-1' }),
        sqs: new SQSClient({ region: 'eu-west-1' }),
        keys: () => ({ scheduleDeletion: async () => 'scheduled' as const }),
        logs: () => ({ delete: async (name: string) => (order.push('delete log group'), deleted.push(name), name.startsWith('/aws/ecs') ? ('absent' as const) : ('deleted' as const)) }),
      },
    };
  }

  it('stops agents and empties buckets before cdk destroy, then deletes the leftovers', async () => {
    const { run, calls } = fakeRunner();
    const t = destroyDeps(run);
    await destroyStack(t.deps);
    expect(calls).toEqual([['cdk', 'destroy', 'xl', '--force', '-c', 'stackName=xl']]);
    expect(ecs.commandCalls(StopTaskCommand)[0]!.args[0].input).toMatchObject({ cluster: 'xl-Cluster-1', task: expect.stringContaining('/t1') });
    expect(t.order.indexOf('run destroy')).toBeGreaterThan(t.order.lastIndexOf('empty'));
    expect(t.order.indexOf('delete log group')).toBeGreaterThan(t.order.indexOf('run destroy'));
    expect(ddb.commandCalls(DeleteTableCommand).map((c) => c.args[0].input.TableName)).toEqual(['xl-ExecutionsTable-1']);
    expect(s3.commandCalls(DeleteBucketCommand).map((c) => c.args[0].input.Bucket)).toEqual(['xl-payloadbucket-1']);
    expect(t.deleted).toEqual(['xl-ApiHandlerLogs-1', '/aws/lambda/xl-CustomVpcRestrictDefaultSG-1', 'API-Gateway-Execution-Logs_abc123defg/v1', '/aws/ecs/containerinsights/xl-Cluster-1/performance']);
    expect(t.lines).toContain('no log group /aws/ecs/containerinsights/xl-Cluster-1/performance (never written)');
    expect(t.lines.at(-1)).toBe('Stack xl is gone, with what is kept above.');
  });

  it('deletes nothing retained when cdk destroy fails', async () => {
    const { run } = fakeRunner({ 'cdk destroy': { code: 1 } });
    const t = destroyDeps(run);
    await expect(destroyStack(t.deps)).rejects.toThrow('cdk destroy failed (exit 1); its output above says why; nothing retained was deleted');
    expect(ddb.commandCalls(DeleteTableCommand)).toHaveLength(0);
    expect(t.deleted).toEqual([]);
  });

  it('reports a leftover it could not delete and goes on with the others', async () => {
    const { run } = fakeRunner();
    const t = destroyDeps(run);
    ddb.on(DeleteTableCommand).rejects(Object.assign(new Error('table is being created'), { name: 'ResourceInUseException' }));
    const err = await destroyStack(t.deps).catch((e: unknown) => e);
    expect((err as DeployError).message).toBe('1 leftover(s) could not be deleted (listed above)');
    expect((err as DeployError).fix).toMatch(/the stack is gone, so npm run destroy no longer lists them/);
    expect(t.lines).toContain('could not delete table xl-ExecutionsTable-1: table is being created');
    expect(t.deleted).toHaveLength(4);
  });

  it('only prints the plan with --dry-run', async () => {
    const { run, calls } = fakeRunner();
    const t = destroyDeps(run, ['--dry-run']);
    await destroyStack(t.deps);
    expect(calls).toEqual([]);
    expect(s3.commandCalls(DeleteObjectsCommand)).toHaveLength(0);
    expect(t.lines).toContain('  then delete table xl-ExecutionsTable-1 (retained by the template)');
    expect(t.lines.at(-1)).toBe('--dry-run: nothing was changed.');
  });

  it('says there is nothing to destroy when the stack does not exist', async () => {
    cfn.on(DescribeStacksCommand, { StackName: 'xl' }).rejects(notFound('xl'));
    const { run, calls } = fakeRunner();
    const t = destroyDeps(run);
    await destroyStack(t.deps);
    expect(calls).toEqual([]);
    expect(t.lines).toEqual(['Stack xl does not exist in eu-west-1: nothing to destroy.']);
  });
});

describe('the CloudWatch Logs and KMS calls of destroy', () => {
  it('sends signed requests through the SDK clients and tells a missing log group or key from a failure', async () => {
    const seen: { target: string; auth: string; body: string }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d));
      req.on('end', () => {
        seen.push({ target: String(req.headers['x-amz-target']), auth: String(req.headers.authorization), body });
        const input = JSON.parse(body) as { logGroupName?: string; KeyId?: string };
        const name = input.logGroupName ?? input.KeyId ?? '';
        res.setHeader('content-type', 'application/x-amz-json-1.1');
        if (name.startsWith('present')) return res.end('{}');
        res.statusCode = 400;
        res.end(JSON.stringify({ __type: name.startsWith('missing') ? 'com.amazonaws.logs#ResourceNotFoundException' : 'AccessDeniedException', message: 'no' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const logs = cloudWatchLogs('eu-west-1', async () => creds, endpoint);
      expect(await logs.delete('present-group')).toBe('deleted');
      expect(await logs.delete('missing-group')).toBe('absent');
      await expect(logs.delete('forbidden')).rejects.toThrow('DeleteLogGroup forbidden: 400 AccessDeniedException');
      expect(await kmsKeys('eu-west-1', async () => creds, endpoint).scheduleDeletion('present-key')).toBe('scheduled');
      expect(seen[0]).toMatchObject({ target: 'Logs_20140328.DeleteLogGroup', body: '{"logGroupName":"present-group"}', auth: expect.stringMatching(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/logs\/aws4_request/) });
      expect(seen.at(-1)).toMatchObject({ target: 'TrentService.ScheduleKeyDeletion', body: '{"KeyId":"present-key","PendingWindowInDays":7}', auth: expect.stringContaining('/eu-west-1/kms/aws4_request') });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
