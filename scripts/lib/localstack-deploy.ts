// Deploying the stack to LocalStack with cdklocal (aws-cdk-local: the cdk CLI pointed at
// AWS_ENDPOINT_URL): synthesize, adapt the assembly (no ECS, no image), bootstrap, deploy, and write
// the outputs where test:localstack and the README's xl line find them.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import type { CdkArgs } from './cdk-args.ts';
import { adaptAssembly } from './localstack-template.ts';
import { LOCALSTACK_CREDENTIALS, LOCALSTACK_DEFAULT_REGION, localstackApiUrl } from './localstack.ts';
import { describeStack, stackOutputs } from './preflight.ts';
import { DeployError, type Run } from './run.ts';

export interface LocalStackDeployDeps {
  readonly run: Run;
  readonly env: NodeJS.ProcessEnv;
  readonly args: CdkArgs;
  readonly endpoint: string;
  /** node_modules/.bin/cdklocal */
  readonly cdklocal: string;
  /** Where the assembly and outputs.json go (.local/localstack). */
  readonly workDir: string;
  readonly print: (line: string) => void;
}

export interface LocalStackDeployment {
  readonly outputs: Record<string, string>;
  /** The API's path-based invoke URL on LocalStack. */
  readonly apiUrl: string;
  readonly region: string;
  readonly outputsFile: string;
}

/**
 * The environment of cdklocal. cdklocal 3.0.4 refuses AWS_ENDPOINT_URL without AWS_ENDPOINT_URL_S3,
 * keeps AWS_* variables only when AWS_ENVAR_ALLOWLIST names them (else the region falls back to
 * us-east-1), and uploads assets with virtual-hosted S3 addresses, for which LocalStack's
 * `*.localhost.localstack.cloud` names resolve to 127.0.0.1 (its defaults, used for a local endpoint).
 */
export function cdklocalEnv(env: NodeJS.ProcessEnv, endpoint: string): NodeJS.ProcessEnv {
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || LOCALSTACK_DEFAULT_REGION;
  const url = new URL(endpoint);
  const local = ['localhost', '127.0.0.1', 'localhost.localstack.cloud'].includes(url.hostname);
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const out: NodeJS.ProcessEnv = { ...env };
  // The user's AWS identity and endpoints must not leak into a LocalStack deploy.
  for (const name of Object.keys(out)) if (/^AWS_(PROFILE|SESSION_TOKEN|ENDPOINT_URL)/.test(name)) delete out[name];
  const allow = new Set([...(env.AWS_ENVAR_ALLOWLIST ?? '').split(',').map((s) => s.trim()).filter(Boolean), 'AWS_REGION', 'AWS_DEFAULT_REGION']);
  return {
    ...out,
    ...LOCALSTACK_CREDENTIALS,
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    AWS_ENVAR_ALLOWLIST: [...allow].join(','),
    AWS_ENDPOINT_URL: local ? `${url.protocol}//localhost.localstack.cloud:${port}` : endpoint,
    AWS_ENDPOINT_URL_S3: local ? `${url.protocol}//s3.localhost.localstack.cloud:${port}` : endpoint,
  };
}

export async function deployToLocalStack(deps: LocalStackDeployDeps): Promise<LocalStackDeployment> {
  const { args, print } = deps;
  const childEnv = cdklocalEnv(deps.env, deps.endpoint);
  const region = childEnv.AWS_REGION!;
  const out = join(deps.workDir, 'cdk.out');
  await rm(out, { recursive: true, force: true });
  await mkdir(deps.workDir, { recursive: true });
  const cdklocal = async (cmd: string[], what: string) => {
    const res = await deps.run(deps.cdklocal, cmd, { env: childEnv });
    if (res.code !== 0) throw new DeployError(`cdklocal ${what} failed (exit ${res.code}); its output above says why`, `check LocalStack's log (docker compose -f docker-compose.localstack.yml logs localstack)`);
  };

  print(`Deploying stack ${args.stackName} to LocalStack at ${deps.endpoint} (${region}).`);
  await cdklocal(['synth', '--quiet', '--output', out, ...args.contextArgs], 'synth');
  const { removed, pointed } = await adaptAssembly(out, args.stackName);
  print(`Left out for LocalStack: ${removed.ecs.length} ECS resources and the agent image (agents run as host processes), ${removed.schedules.length} pool schedules; ${pointed.length} functions pointed at LocalStack's SQS and S3.`);
  await cdklocal(['bootstrap', '--app', out], 'bootstrap');
  await cdklocal(['deploy', '--app', out, args.stackName, '--require-approval', 'never', ...args.deployArgs], 'deploy');

  const cfn = new CloudFormationClient({ endpoint: deps.endpoint, region, credentials: { accessKeyId: LOCALSTACK_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: LOCALSTACK_CREDENTIALS.AWS_SECRET_ACCESS_KEY } });
  const stack = await describeStack(cfn, args.stackName);
  if (!stack) throw new DeployError(`cdklocal deploy ended but LocalStack has no stack ${args.stackName}`);
  const outputs = stackOutputs(stack);
  const apiUrl = localstackApiUrl(outputs.ApiUrl ?? '', deps.endpoint);
  const outputsFile = join(deps.workDir, 'outputs.json');
  await writeFile(outputsFile, JSON.stringify({ stackName: args.stackName, endpoint: deps.endpoint, region, apiUrl, outputs }, null, 2) + '\n');
  print(`  API on LocalStack: ${apiUrl}`);
  print(`  outputs: ${outputsFile}`);
  print(`  XL_ENDPOINT=${apiUrl} npm run xl -- health`);
  print('Agents are not started on LocalStack (no ECS): npm run test:localstack starts host worker processes for its runs.');
  return { outputs, apiUrl, region, outputsFile };
}
