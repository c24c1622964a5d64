// The LocalStack path (scripts/lib/localstack*.ts, scripts/test-localstack.ts) as far as it runs
// without LocalStack: the endpoint rewriting, the worker environment, the health probe against
// loopback stand-ins, the template adaptation, and the skip of test:localstack.
import { spawn } from 'node:child_process';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cdklocalEnv } from '../../scripts/lib/localstack-deploy.ts';
import { type CfnTemplate, adaptForLocalStack, removedArn } from '../../scripts/lib/localstack-template.ts';
import { LOCALSTACK_SERVICES, localstackApiUrl, localstackEndpoint, probeLocalStack, skipLine, workerEnvironment } from '../../scripts/lib/localstack.ts';

const ROOT = join(import.meta.dirname, '../..');
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function listen(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An address where nothing listens: a port just released. */
async function closedEndpoint(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return `http://127.0.0.1:${port}`;
}

describe('LocalStack endpoints', () => {
  it('rewrites the stack ApiUrl to LocalStack path-based invoke URL', () => {
    expect(localstackApiUrl('https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/v1/', 'http://localhost:4566')).toBe('http://localhost:4566/restapis/a1b2c3d4e5/v1/_user_request_');
    expect(localstackApiUrl('https://a1b2c3d4e5.execute-api.localhost.localstack.cloud:4566/prod', 'http://ls:4566')).toBe('http://ls:4566/restapis/a1b2c3d4e5/prod/_user_request_');
    expect(() => localstackApiUrl('http://127.0.0.1:7700', 'http://localhost:4566')).toThrow('ApiUrl "http://127.0.0.1:7700" is not an API Gateway stage URL');
  });

  it('takes LOCALSTACK_ENDPOINT, else localhost:4566, without a trailing slash', () => {
    expect(localstackEndpoint({})).toBe('http://localhost:4566');
    expect(localstackEndpoint({ LOCALSTACK_ENDPOINT: 'http://ls.internal:4566/' })).toBe('http://ls.internal:4566');
  });

  it("gives host workers the stack's names and every AWS client LocalStack's endpoint", () => {
    const env = workerEnvironment(
      {
        ExecutionsTableName: 'xl-ExecutionsTable-1',
        AgentsTableName: 'xl-AgentsTable-1',
        BreakersTableName: 'xl-BreakersTable-1',
        PayloadBucketName: 'xl-payloadbucket-1',
        QueueUrlPrefix: 'https://sqs.us-east-1.amazonaws.com/000000000000/xl-',
      },
      'http://localhost:4566',
    );
    expect(env).toMatchObject({
      XL_TABLE_EXECUTIONS: 'xl-ExecutionsTable-1',
      XL_TABLE_AGENTS: 'xl-AgentsTable-1',
      XL_TABLE_BREAKERS: 'xl-BreakersTable-1',
      XL_BUCKET: 'xl-payloadbucket-1',
      XL_QUEUE_URL_PREFIX: 'https://sqs.us-east-1.amazonaws.com/000000000000/xl-',
      AWS_ENDPOINT_URL: 'http://localhost:4566',
      AWS_ENDPOINT_URL_SQS: 'http://localhost:4566',
      AWS_ENDPOINT_URL_S3: 'http://localhost:4566',
      AWS_REGION: 'us-east-1',
    });
    expect(() => workerEnvironment({ ExecutionsTableName: 't' }, 'http://localhost:4566')).toThrow(/lack AgentsTableName, BreakersTableName, PayloadBucketName, QueueUrlPrefix: deploy it with npm run deploy:localstack/);
  });
});

describe("cdklocal's environment", () => {
  const aws = (env: NodeJS.ProcessEnv) => Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('AWS_')));

  it("uses LocalStack's localhost.localstack.cloud names for a local endpoint, as cdklocal needs S3 subdomains", () => {
    expect(aws(cdklocalEnv({ PATH: '/bin', AWS_PROFILE: 'prod', AWS_SESSION_TOKEN: 'x', AWS_ENDPOINT_URL: 'https://elsewhere' }, 'http://localhost:4566'))).toEqual({
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_ENVAR_ALLOWLIST: 'AWS_REGION,AWS_DEFAULT_REGION',
      AWS_ENDPOINT_URL: 'http://localhost.localstack.cloud:4566',
      AWS_ENDPOINT_URL_S3: 'http://s3.localhost.localstack.cloud:4566',
    });
  });

  it('keeps the region (cdklocal drops AWS_* variables not allowlisted) and takes another endpoint as it is', () => {
    const env = cdklocalEnv({ AWS_REGION: 'eu-west-1', AWS_ENVAR_ALLOWLIST: 'AWS_CA_BUNDLE' }, 'https://ls.example.internal:4566');
    expect(env).toMatchObject({ AWS_REGION: 'eu-west-1', AWS_ENVAR_ALLOWLIST: 'AWS_CA_BUNDLE,AWS_REGION,AWS_DEFAULT_REGION', AWS_ENDPOINT_URL: 'https://ls.example.internal:4566', AWS_ENDPOINT_URL_S3: 'https://ls.example.internal:4566' });
  });
});

describe('the LocalStack probe', () => {
  const health = (services: Record<string, string>) => (_req: unknown, res: import('node:http').ServerResponse) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ services, edition: 'community', version: '4.9.0' }));
  };

  it('finds LocalStack up with every service the stack needs', async () => {
    const endpoint = await listen(health(Object.fromEntries(LOCALSTACK_SERVICES.map((s) => [s, 'available']))));
    expect(await probeLocalStack(endpoint)).toEqual({ up: true, version: '4.9.0', missing: [] });
  });

  it('names the services LocalStack does not offer', async () => {
    const endpoint = await listen(health({ ...Object.fromEntries(LOCALSTACK_SERVICES.map((s) => [s, 'running'])), stepfunctions: 'disabled', lambda: 'error' }));
    expect(await probeLocalStack(endpoint)).toMatchObject({ up: true, missing: ['stepfunctions', 'lambda'] });
  });

  it('reports a refused connection and a silent endpoint as not reachable, within its timeout', async () => {
    expect(await probeLocalStack(await closedEndpoint())).toEqual({ up: false, reason: 'ECONNREFUSED' });
    const silent = await listen(() => undefined);
    const began = Date.now();
    expect(await probeLocalStack(silent, { timeoutMs: 200 })).toEqual({ up: false, reason: 'no answer within 200 ms' });
    expect(Date.now() - began).toBeLessThan(5000); // it gave up, not hung (generous for a loaded machine)
    const other = await listen((_req, res) => res.end('<html>not localstack</html>'));
    expect(await probeLocalStack(other)).toMatchObject({ up: false, reason: expect.stringContaining('did not answer JSON') });
  });
});

describe('npm run test:localstack without LocalStack', () => {
  it('prints exactly one line saying it skipped and why, and exits 0', async () => {
    const endpoint = await closedEndpoint();
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/test-localstack.ts')], {
      cwd: ROOT,
      env: { ...process.env, LOCALSTACK_ENDPOINT: endpoint, NODE_NO_WARNINGS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const code = await new Promise<number | null>((r) => child.once('close', r));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toBe(skipLine(endpoint, 'ECONNREFUSED') + '\n');
    expect(stdout).toMatch(/^test:localstack skipped: LocalStack is not reachable at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\); start it with `docker compose -f docker-compose.localstack.yml up -d`/);
  });
});

describe('the stack adapted for LocalStack', () => {
  const template: CfnTemplate = {
    Resources: {
      Cluster: { Type: 'AWS::ECS::Cluster' },
      CoderTaskDefinition: { Type: 'AWS::ECS::TaskDefinition' },
      CoderService: { Type: 'AWS::ECS::Service', DependsOn: ['Cluster'] },
      PoolManagerFunction: {
        Type: 'AWS::Lambda::Function',
        Metadata: { 'xl:entry': 'functions/pool-manager.ts' },
        Properties: { Environment: { Variables: { XL_CLUSTER: { Ref: 'Cluster' }, XL_TASK_DEFINITIONS: { 'Fn::Join': ['', ['{"coder":"', { Ref: 'CoderTaskDefinition' }, '"}']] } } } },
        DependsOn: ['Role', 'CoderService'],
      },
      ExecutionEventsFunction: { Type: 'AWS::Lambda::Function', Metadata: { 'xl:entry': 'functions/execution-events.ts' } },
      PoolSchedule: { Type: 'AWS::Events::Rule', Properties: { ScheduleExpression: 'rate(1 minute)', Targets: [{ Arn: { 'Fn::GetAtt': ['PoolManagerFunction', 'Arn'] } }] } },
      PoolSchedulePermission: { Type: 'AWS::Lambda::Permission', Properties: { SourceArn: { 'Fn::GetAtt': ['PoolSchedule', 'Arn'] } } },
      ReconcileSchedule: { Type: 'AWS::Events::Rule', Properties: { ScheduleExpression: 'rate(5 minutes)', Targets: [{ Arn: { 'Fn::GetAtt': ['ExecutionEventsFunction', 'Arn'] } }] } },
      Policy: { Type: 'AWS::IAM::Policy', Properties: { PolicyDocument: { Statement: [{ Action: 'ecs:RunTask', Resource: { Ref: 'CoderTaskDefinition' } }] } } },
      Role: { Type: 'AWS::IAM::Role' },
    },
    Outputs: { ClusterName: { Value: { Ref: 'Cluster' } } },
  };

  it('leaves out ECS and the schedules that would start ECS tasks, and nothing else', () => {
    const { template: t, removed } = adaptForLocalStack(template);
    expect(removed).toEqual({ ecs: ['Cluster', 'CoderTaskDefinition', 'CoderService'], schedules: ['PoolSchedule'], permissions: ['PoolSchedulePermission'] });
    expect(Object.keys(t.Resources)).toEqual(['PoolManagerFunction', 'ExecutionEventsFunction', 'ReconcileSchedule', 'Policy', 'Role']);
  });

  it("points the layer's functions' SQS and S3 clients at LocalStack, whose queue URLs name AWS's host", () => {
    const { pointed, template: t } = adaptForLocalStack(template);
    expect(pointed).toEqual(['PoolManagerFunction', 'ExecutionEventsFunction']);
    expect((t.Resources.ExecutionEventsFunction!.Properties as any).Environment.Variables).toEqual({
      AWS_ENDPOINT_URL_SQS: 'http://localhost.localstack.cloud:4566',
      AWS_ENDPOINT_URL_S3: 'http://localhost.localstack.cloud:4566',
    });
  });

  it('replaces references to what was left out with ARN-shaped placeholders and drops such dependencies', () => {
    const { template: t } = adaptForLocalStack(template);
    const fn = t.Resources.PoolManagerFunction!;
    expect(fn.DependsOn).toEqual(['Role']);
    expect((fn.Properties as any).Environment.Variables).toEqual({
      XL_CLUSTER: removedArn('Cluster'),
      XL_TASK_DEFINITIONS: { 'Fn::Join': ['', ['{"coder":"', removedArn('CoderTaskDefinition'), '"}']] },
      AWS_ENDPOINT_URL_SQS: 'http://localhost.localstack.cloud:4566',
      AWS_ENDPOINT_URL_S3: 'http://localhost.localstack.cloud:4566',
    });
    expect((t.Resources.Policy!.Properties as any).PolicyDocument.Statement[0].Resource).toBe('arn:aws:ecs:us-east-1:000000000000:removed-for-localstack/CoderTaskDefinition');
    expect(t.Outputs).toEqual({ ClusterName: { Value: removedArn('Cluster') } });
    expect(template.Resources.Cluster).toBeDefined(); // the input is not changed
  });
});
