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

const app = new App();
const stackName: string = app.node.tryGetContext('stackName') ?? process.env.XL_STACK_NAME ?? DEFAULT_STACK_NAME;
// Model credentials: `-c anthropicApiKeySecret=<secret name>` (else Bedrock through the task role);
// `-c credentialsSecretPrefix=<prefix>` for the secrets tasks may name (default `xl/`).
const stack = new ExecutionLayerStack(app, stackName, {
  stackName,
  anthropicApiKeySecretName: app.node.tryGetContext('anthropicApiKeySecret'),
  credentialsSecretPrefix: app.node.tryGetContext('credentialsSecretPrefix'),
  // `-c maxConcurrentTasks=tester=2,monitor=4`, `-c poolIdleSeconds=300`.
  maxConcurrentTasks: app.node.tryGetContext('maxConcurrentTasks'),
  poolIdleSeconds: app.node.tryGetContext('poolIdleSeconds') === undefined ? undefined : Number(app.node.tryGetContext('poolIdleSeconds')),
  // `-c breakerPolicy='{"*":{"failureThreshold":3}}'` (JSON, as XL_BREAKER_POLICY).
  breakerPolicy: breakerPolicyContext(app.node.tryGetContext('breakerPolicy')),
  // `-c alarmEmail=oncall@example.com` (an email subscription to the alarm topic) is read by the stack.
});
applyNag(app, stack);
app.synth();
