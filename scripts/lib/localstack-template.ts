// The synthesized stack, adapted for LocalStack without ECS: the agents' ECS resources and image go
// (agents run as host processes there, as in the embedded local mode), and so do the pool manager's
// and health monitor's schedules, which would start and stop ECS tasks. Everything else deploys as
// it is. LocalStack's CloudFormation ignores unsupported types today but documents that it will fail
// on them in a future release, so they are removed rather than left to chance.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

interface Resource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
  DependsOn?: string | string[];
}
export interface CfnTemplate {
  Resources: Record<string, Resource>;
  Outputs?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Entries of functions that manage ECS agents (infra/constructs/pool.ts). */
const ECS_MANAGERS = ['functions/pool-manager.ts', 'functions/health-monitor.ts'];

/** A name for what was removed, shaped as an ARN since IAM statements and permissions hold it. */
export const removedArn = (logicalId: string) => `arn:aws:ecs:us-east-1:000000000000:removed-for-localstack/${logicalId}`;

const refsTo = (value: unknown): string[] => {
  const found: string[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (typeof o.Ref === 'string') found.push(o.Ref);
      const getAtt = o['Fn::GetAtt'];
      if (Array.isArray(getAtt) && typeof getAtt[0] === 'string') found.push(getAtt[0]);
      else if (typeof getAtt === 'string') found.push(getAtt.split('.')[0]!);
      Object.values(o).forEach(walk);
    }
  };
  walk(value);
  return found;
};

/** Replaces Ref / Fn::GetAtt of removed resources with their placeholder. */
function replaceRefs(value: unknown, removed: ReadonlySet<string>): unknown {
  if (Array.isArray(value)) return value.map((v) => replaceRefs(v, removed));
  if (!value || typeof value !== 'object') return value;
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && typeof o.Ref === 'string' && removed.has(o.Ref)) return removedArn(o.Ref);
  if (keys.length === 1 && Array.isArray(o['Fn::GetAtt']) && removed.has(String(o['Fn::GetAtt'][0]))) return removedArn(String(o['Fn::GetAtt'][0]));
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, replaceRefs(v, removed)]));
}

export interface Adapted {
  readonly template: CfnTemplate;
  /** Logical ids removed, by reason. */
  readonly removed: { ecs: string[]; schedules: string[]; permissions: string[] };
  /** The layer's functions given LocalStack's SQS and S3 endpoints. */
  readonly pointed: string[];
}

/** How code in LocalStack's Lambda containers reaches LocalStack (its networking documentation). */
export const LOCALSTACK_ENDPOINT_IN_LAMBDA = 'http://localhost.localstack.cloud:4566';

export function adaptForLocalStack(template: CfnTemplate, lambdaEndpoint = LOCALSTACK_ENDPOINT_IN_LAMBDA): Adapted {
  const resources = template.Resources;
  const ecs = Object.keys(resources).filter((id) => resources[id]!.Type.startsWith('AWS::ECS::'));
  const managers = new Set(Object.keys(resources).filter((id) => ECS_MANAGERS.includes(String(resources[id]!.Metadata?.['xl:entry'] ?? ''))));
  const schedules = Object.keys(resources).filter((id) => {
    const r = resources[id]!;
    return r.Type === 'AWS::Events::Rule' && r.Properties?.ScheduleExpression !== undefined && refsTo(r.Properties?.Targets).some((t) => managers.has(t));
  });
  // The permissions that let those rules invoke their functions go with them.
  const permissions = Object.keys(resources).filter((id) => resources[id]!.Type === 'AWS::Lambda::Permission' && refsTo(resources[id]!.Properties).some((t) => schedules.includes(t)));
  const removed = new Set([...ecs, ...schedules, ...permissions]);

  const kept: Record<string, Resource> = {};
  for (const [id, r] of Object.entries(resources)) {
    if (removed.has(id)) continue;
    const copy = replaceRefs(r, removed) as Resource;
    if (copy.DependsOn !== undefined) {
      const deps = (Array.isArray(copy.DependsOn) ? copy.DependsOn : [copy.DependsOn]).filter((d) => !removed.has(d));
      if (deps.length) copy.DependsOn = deps;
      else delete copy.DependsOn;
    }
    kept[id] = copy;
  }
  // LocalStack gives its Lambda containers AWS_ENDPOINT_URL, but the queue URLs name AWS's host
  // (built from pseudo parameters) and the SQS client sends to that host unless AWS_ENDPOINT_URL_SQS
  // is set (core/aws/clients.ts); AWS_ENDPOINT_URL_S3 makes S3 path-style, as with every emulator.
  const pointed: string[] = [];
  for (const [id, r] of Object.entries(kept)) {
    if (r.Type !== 'AWS::Lambda::Function' || !r.Metadata?.['xl:entry']) continue;
    const props = (r.Properties ??= {});
    const environment = (props.Environment ??= {}) as { Variables?: Record<string, unknown> };
    environment.Variables = { ...environment.Variables, AWS_ENDPOINT_URL_SQS: lambdaEndpoint, AWS_ENDPOINT_URL_S3: lambdaEndpoint };
    pointed.push(id);
  }
  return {
    template: { ...template, Resources: kept, ...(template.Outputs ? { Outputs: replaceRefs(template.Outputs, removed) as Record<string, unknown> } : {}) },
    removed: { ecs, schedules, permissions },
    pointed,
  };
}

/**
 * Adapts a synthesized assembly in place: the stack's template, and its asset manifest without the
 * Docker images (LocalStack without ECR has nowhere to push them, and nothing runs them).
 */
export async function adaptAssembly(dir: string, stackName: string): Promise<Adapted> {
  const templateFile = join(dir, `${stackName}.template.json`);
  const adapted = adaptForLocalStack(JSON.parse(await readFile(templateFile, 'utf8')) as CfnTemplate);
  await writeFile(templateFile, JSON.stringify(adapted.template, null, 1));
  const assetsFile = join(dir, `${stackName}.assets.json`);
  const assets = JSON.parse(await readFile(assetsFile, 'utf8')) as { dockerImages?: unknown };
  delete assets.dockerImages;
  await writeFile(assetsFile, JSON.stringify(assets, null, 1));
  return adapted;
}
