// LocalStack: where it answers, whether it is up, and how the deployed stack's outputs translate to
// its endpoints. From LocalStack's documentation: one edge port (4566) for every service, the
// `/_localstack/health` internal endpoint listing each service's state, and REST APIs reachable at
// `<endpoint>/restapis/<apiId>/<stageName>/_user_request_/<path>` (path-based; the host-based
// `<apiId>.execute-api.localhost.localstack.cloud` form needs DNS for that name).

export const DEFAULT_LOCALSTACK_ENDPOINT = 'http://localhost:4566';
/** LocalStack accepts any credentials; its default account is 000000000000. */
export const LOCALSTACK_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' } as const;
export const LOCALSTACK_DEFAULT_REGION = 'us-east-1';

/**
 * The services the stack uses on LocalStack (docker-compose.localstack.yml starts these). ECS, ECR
 * are left out: agents run as host processes, and the LocalStack stack has no ECS parts (localstack-template.ts).
 */
export const LOCALSTACK_SERVICES = [
  'sqs', 'dynamodb', 'stepfunctions', 'lambda', 's3', 'iam', 'sts', 'cloudformation', 'logs', 'ssm',
  'secretsmanager', 'apigateway', 'events', 'cloudwatch', 'sns', 'kms', 'ec2',
] as const;

/** LOCALSTACK_ENDPOINT, else http://localhost:4566; without a trailing slash. */
export function localstackEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return (env.LOCALSTACK_ENDPOINT || DEFAULT_LOCALSTACK_ENDPOINT).replace(/\/+$/, '');
}

export type Probe = { up: true; version?: string; missing: string[] } | { up: false; reason: string };

/**
 * Asks LocalStack's health endpoint, with a short timeout: a machine without LocalStack answers
 * quickly (connection refused) or never (a firewall), and neither may hold a test run up.
 */
export async function probeLocalStack(endpoint: string, opts: { timeoutMs?: number; services?: readonly string[] } = {}): Promise<Probe> {
  const url = `${endpoint}/_localstack/health`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 1500) });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${opts.timeoutMs ?? 1500} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
    return { up: false, reason: why };
  }
  if (!res.ok) return { up: false, reason: `${url} answered ${res.status}` };
  let body: { services?: Record<string, string>; version?: string };
  try {
    body = (await res.json()) as typeof body;
  } catch {
    return { up: false, reason: `${url} did not answer JSON: not LocalStack?` };
  }
  const services = body.services ?? {};
  const missing = (opts.services ?? LOCALSTACK_SERVICES).filter((s) => !['available', 'running', 'initialized'].includes(services[s] ?? ''));
  return { up: true, version: body.version, missing };
}

/** The one line test:localstack prints when it cannot run. */
export function skipLine(endpoint: string, reason: string): string {
  return `test:localstack skipped: LocalStack is not reachable at ${endpoint} (${reason}); start it with \`docker compose -f docker-compose.localstack.yml up -d\` or set LOCALSTACK_ENDPOINT`;
}

/**
 * The stack's ApiUrl (`https://<apiId>.execute-api.<region>.<suffix>/<stage>/`, as CloudFormation
 * on LocalStack reports it too) as LocalStack's path-based invoke URL, without a trailing slash.
 */
export function localstackApiUrl(apiUrl: string, endpoint: string): string {
  const m = /^https?:\/\/([A-Za-z0-9]+)\.execute-api\.[^/]+\/([^/]+)\/?$/.exec(apiUrl);
  if (!m) throw new Error(`ApiUrl "${apiUrl}" is not an API Gateway stage URL (https://<apiId>.execute-api.<region>.<suffix>/<stage>/)`);
  return `${endpoint}/restapis/${m[1]}/${m[2]}/_user_request_`;
}

/** The outputs a host worker needs (infra/stack.ts). */
const WORKER_OUTPUTS = ['ExecutionsTableName', 'AgentsTableName', 'BreakersTableName', 'PayloadBucketName', 'QueueUrlPrefix'] as const;

/**
 * The environment of a host worker process (agent/main.ts) against the stack on LocalStack: what the
 * ECS task definition would give it (core/config.ts names), with every AWS client pointed at LocalStack.
 */
export function workerEnvironment(outputs: Readonly<Record<string, string>>, endpoint: string, region = LOCALSTACK_DEFAULT_REGION): Record<string, string> {
  const absent = WORKER_OUTPUTS.filter((k) => !outputs[k]);
  if (absent.length) throw new Error(`the stack's outputs lack ${absent.join(', ')}: deploy it with npm run deploy:localstack`);
  return {
    XL_TABLE_EXECUTIONS: outputs.ExecutionsTableName!,
    XL_TABLE_AGENTS: outputs.AgentsTableName!,
    XL_TABLE_BREAKERS: outputs.BreakersTableName!,
    XL_BUCKET: outputs.PayloadBucketName!,
    // `https://sqs.<region>.amazonaws.com/000000000000/<stack>-`: with AWS_ENDPOINT_URL_SQS set the
    // SQS client sends to LocalStack and LocalStack finds the queue by account and name (core/aws/clients.ts).
    XL_QUEUE_URL_PREFIX: outputs.QueueUrlPrefix!,
    AWS_REGION: region,
    ...LOCALSTACK_CREDENTIALS,
    AWS_ENDPOINT_URL: endpoint,
    // core/aws/clients.ts reads these two: path-style S3 and queue URLs that name AWS's host.
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_ENDPOINT_URL_SQS: endpoint,
    POWERTOOLS_METRICS_DISABLED: 'true',
  };
}
