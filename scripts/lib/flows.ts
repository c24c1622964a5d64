// The steps of `npm run deploy` and `npm run destroy`, with their clients and child processes handed
// in (tests give mocked clients and a fake runner; scripts/deploy.ts and scripts/destroy.ts the real ones).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { CloudFormationClient, GetTemplateCommand, paginateListStackResources } from '@aws-sdk/client-cloudformation';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { ECSClient } from '@aws-sdk/client-ecs';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { CdkArgs } from './cdk-args.ts';
import { type StackResource, type Template, deleteLeftovers, describePlan, emptyBucket, planCleanup, stopClusterTasks } from './cleanup.ts';
import { checkImageBuilder, imagePlatforms } from './docker.ts';
import type { Keys, LogGroups } from './logs.ts';
import { bootstrapDecision, credentialError, describeStack, requireCredentials, resolveRegion, stackOutputs } from './preflight.ts';
import { DeployError, type Run } from './run.ts';
import { deploySummary } from './summary.ts';

export interface FlowDeps {
  readonly cfn: CloudFormationClient;
  readonly run: Run;
  readonly env: NodeJS.ProcessEnv;
  readonly args: CdkArgs;
  /** The cdk CLI (node_modules/.bin/cdk). */
  readonly cdk: string;
  readonly print: (line: string) => void;
  /** Node's arch, for the image builder check (tests pin it). */
  readonly arch?: string;
}

/** Checks credentials and region; returns the region and the environment every cdk command gets. */
async function preflight(deps: FlowDeps): Promise<{ region: string; childEnv: NodeJS.ProcessEnv }> {
  const region = await resolveRegion(deps.cfn, deps.env);
  await requireCredentials(deps.cfn, deps.env);
  // The cdk CLI and the SDK then agree on the region whichever variable named it.
  return { region, childEnv: { ...deps.env, AWS_REGION: region } };
}

async function cdk(deps: FlowDeps, childEnv: NodeJS.ProcessEnv, args: string[], what: string): Promise<void> {
  const res = await deps.run(deps.cdk, args, { env: childEnv });
  if (res.code !== 0) throw new DeployError(`cdk ${what} failed (exit ${res.code}); its output above says why`);
}

export async function deployStack(deps: FlowDeps & { assemblyDir?: string }): Promise<void> {
  const { args, print } = deps;
  const { region, childEnv } = await preflight(deps);
  print(`Deploying stack ${args.stackName} to ${region}.`);

  const existing = await describeStack(deps.cfn, args.stackName);
  if (existing?.StackStatus === 'ROLLBACK_COMPLETE') {
    // cdk would delete and re-create it, and the rollback kept the retained tables, buckets and log groups.
    throw new DeployError(
      `stack ${args.stackName} is ROLLBACK_COMPLETE: its first deploy failed, and the rollback kept its retained tables, buckets and log groups`,
      `npm run destroy${args.stackName === 'xl' ? '' : ` -- -c stackName=${args.stackName}`} removes them and the stack; then npm run deploy again`,
    );
  }
  const toolkit = await describeStack(deps.cfn, args.toolkitStackName);
  const decision = bootstrapDecision(toolkit, args.toolkitStackName);

  // One synth: its assembly tells which images to build (and for which platform), and is what deploys.
  const out = deps.assemblyDir ?? (await mkdtemp(join(tmpdir(), 'xl-deploy-')));
  try {
    await cdk(deps, childEnv, ['synth', '--quiet', '--output', out, ...args.contextArgs, ...args.profileArgs], 'synth');
    const platforms = await imagePlatforms(out, args.stackName);
    for (const line of await checkImageBuilder(deps.run, platforms, { arch: deps.arch, docker: deps.env.CDK_DOCKER })) print(line);

    if (decision.action === 'bootstrap') {
      print(`Bootstrapping: ${decision.why}.`);
      await cdk(deps, childEnv, ['bootstrap', '--app', out, '--toolkit-stack-name', args.toolkitStackName, ...args.profileArgs], 'bootstrap');
    } else print(`${args.toolkitStackName} is in place${decision.version ? ` (version ${decision.version})` : ''}.`);

    await cdk(deps, childEnv, ['deploy', '--app', out, args.stackName, '--toolkit-stack-name', args.toolkitStackName, ...args.profileArgs, ...args.deployArgs], 'deploy');
  } finally {
    if (!deps.assemblyDir) await rm(out, { recursive: true, force: true });
  }

  const stack = await describeStack(deps.cfn, args.stackName);
  if (!stack) throw new DeployError(`cdk deploy ended but stack ${args.stackName} is not in ${region}`);
  print('');
  const alarmEmail = args.context.findLast(([k]) => k === 'alarmEmail')?.[1];
  for (const line of deploySummary({ stackName: args.stackName, region, outputs: stackOutputs(stack), profile: deps.env.AWS_PROFILE, alarmEmail })) print(line);
}

export interface DestroyDeps extends FlowDeps {
  readonly s3: S3Client;
  readonly dynamodb: DynamoDBClient;
  readonly ecs: ECSClient;
  readonly sqs: SQSClient;
  readonly logs: (region: string) => LogGroups;
  readonly keys: (region: string) => Keys;
}

/** Every resource of the deployed stack (ListStackResources pages). */
async function stackResources(cfn: CloudFormationClient, stackName: string): Promise<StackResource[]> {
  const resources: StackResource[] = [];
  for await (const page of paginateListStackResources({ client: cfn }, { StackName: stackName })) {
    for (const r of page.StackResourceSummaries ?? []) {
      if (r.ResourceStatus === 'DELETE_COMPLETE') continue;
      resources.push({ logicalId: r.LogicalResourceId!, physicalId: r.PhysicalResourceId ?? '', type: r.ResourceType! });
    }
  }
  return resources;
}

export async function destroyStack(deps: DestroyDeps): Promise<void> {
  const { args, print } = deps;
  const { region, childEnv } = await preflight(deps);
  const stack = await describeStack(deps.cfn, args.stackName);
  if (!stack) {
    print(`Stack ${args.stackName} does not exist in ${region}: nothing to destroy.`);
    return;
  }
  let template: Template;
  try {
    const res = await deps.cfn.send(new GetTemplateCommand({ StackName: args.stackName, TemplateStage: 'Original' }));
    template = JSON.parse(res.TemplateBody ?? '{}') as Template;
  } catch (err) {
    throw credentialError(err);
  }
  const plan = planCleanup(template, await stackResources(deps.cfn, args.stackName), {
    keepLogs: args.flags.has('--keep-logs'),
    keepData: args.flags.has('--keep-data'),
  });
  print(`Destroying stack ${args.stackName} in ${region}:`);
  for (const line of describePlan(plan)) print(`  ${line}`);
  if (args.flags.has('--dry-run')) {
    print('--dry-run: nothing was changed.');
    return;
  }

  for (const cluster of plan.clusters) {
    const n = await stopClusterTasks(deps.ecs, cluster);
    if (n) print(`stopped ${n} agent task(s) of ${cluster}`);
  }
  for (const bucket of plan.emptyFirst) print(`emptied bucket ${bucket}: ${await emptyBucket(deps.s3, bucket)} object(s)`);

  // The pool manager may start agents until CloudFormation deletes it; a running task keeps the
  // cluster (and the VPC) from going, so the cluster is swept until cdk is done.
  const done = new AbortController();
  const sweep = (async () => {
    while (plan.clusters.length) {
      try {
        await sleep(15_000, undefined, { signal: done.signal });
      } catch {
        return; // cdk is done
      }
      for (const cluster of plan.clusters) await stopClusterTasks(deps.ecs, cluster).catch(() => 0);
    }
  })();
  try {
    await cdk(deps, childEnv, ['destroy', args.stackName, '--force', ...args.contextArgs, ...args.profileArgs], 'destroy');
  } catch (err) {
    throw new DeployError(`${(err as Error).message}; nothing retained was deleted`, 'fix what the output names, then run npm run destroy again (it starts over from the stack as it is)');
  } finally {
    done.abort();
    await sweep;
  }

  const { lines, failed } = await deleteLeftovers(plan.deleteAfter, { s3: deps.s3, dynamodb: deps.dynamodb, sqs: deps.sqs, logs: deps.logs(region), keys: deps.keys(region) });
  for (const line of lines) print(line);
  for (const k of plan.kept) print(`kept ${k.name}: ${k.why}`);
  if (failed) {
    // The stack is gone now, so a second npm run destroy would not find them: say so.
    throw new DeployError(`${failed} leftover(s) could not be deleted (listed above)`, 'delete them by hand (aws s3 rb --force, aws dynamodb delete-table, aws logs delete-log-group): the stack is gone, so npm run destroy no longer lists them');
  }
  print(`Stack ${args.stackName} is gone${plan.kept.length ? ', with what is kept above' : ''}.`);
}
