// `cdk synth` / `cdk deploy` entry (cdk.json: `npx tsx infra/app.ts`). The stack name comes from the
// context (`-c stackName=...`) or XL_STACK_NAME, default `xl`. No account or region: the stack stays
// environment-agnostic, so synth needs no credentials.
import { App } from 'aws-cdk-lib';
import { applyNag } from './nag.ts';
import { DEFAULT_STACK_NAME, ExecutionLayerStack } from './stack.ts';

/** The context value: JSON text from the command line, or an object from cdk.json. */
function breakerPolicyContext(value: unknown): Record<string, never> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') return value as Record<string, never>;
  try {
    return JSON.parse(value) as Record<string, never>;
  } catch (err) {
    throw new Error(`-c breakerPolicy is not JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** `-c key=true|false` (a string from the command line, a boolean from cdk.json). */
function booleanContext(app: App, key: string): boolean | undefined {
  const value: unknown = app.node.tryGetContext(key);
  if (value === undefined || typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  throw new Error(`-c ${key} must be true or false, got "${String(value)}"`);
}

/** `-c key=<number>`; the stack checks the range. */
function numberContext(app: App, key: string): number | undefined {
  const value: unknown = app.node.tryGetContext(key);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value === '' || !Number.isFinite(n)) throw new Error(`-c ${key} must be a number, got "${String(value)}"`);
  return n;
}

const app = new App();
const stackName: string = app.node.tryGetContext('stackName') ?? process.env.XL_STACK_NAME ?? DEFAULT_STACK_NAME;
// Model credentials: `-c anthropicApiKeySecretArn=<complete secret ARN>` (or `-c anthropicApiKeySecret=<name>`,
// refused for a name ending in a hyphen and six characters), else Bedrock through the task role;
// `-c credentialsSecretPrefix=<prefix>` for the secrets tasks may name (default `xl/`).
const stack = new ExecutionLayerStack(app, stackName, {
  stackName,
  anthropicApiKeySecretArn: app.node.tryGetContext('anthropicApiKeySecretArn'),
  anthropicApiKeySecretName: app.node.tryGetContext('anthropicApiKeySecret'),
  credentialsSecretPrefix: app.node.tryGetContext('credentialsSecretPrefix'),
  // `-c maxConcurrentTasks=tester=2,monitor=4`, `-c poolIdleSeconds=300`.
  maxConcurrentTasks: app.node.tryGetContext('maxConcurrentTasks'),
  poolIdleSeconds: numberContext(app, 'poolIdleSeconds'),
  // `-c breakerPolicy='{"*":{"failureThreshold":3}}'` (JSON, as XL_BREAKER_POLICY).
  breakerPolicy: breakerPolicyContext(app.node.tryGetContext('breakerPolicy')),
  // Security and availability options (README "Threat model" and "Deploy to AWS"): `-c kms=true`, `-c natGateways=2`,
  // `-c interfaceEndpoints=true`, `-c stepsReservedConcurrency=50`.
  kms: booleanContext(app, 'kms'),
  natGateways: numberContext(app, 'natGateways'),
  interfaceEndpoints: booleanContext(app, 'interfaceEndpoints'),
  stepsReservedConcurrency: numberContext(app, 'stepsReservedConcurrency'),
  // `-c alarmEmail=oncall@example.com` (an email subscription to the alarm topic) is read by the stack.
});
applyNag(app, stack);
app.synth();
