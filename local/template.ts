// Reads the synthesized CloudFormation template the way CloudFormation would, for the local layer:
// which tables, queues, buckets, functions, state machines, rules and agent task definitions it
// declares, and what their Ref / Fn::GetAtt tokens resolve to on this machine.

export const LOCAL_REGION = 'us-east-1';
export const LOCAL_ACCOUNT = '000000000000';

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
  DependsOn?: string | string[];
}
export interface CfnTemplate {
  Resources: Record<string, CfnResource>;
  Outputs?: Record<string, { Value: unknown }>;
}

/** Physical names and attributes of the local resources, by logical id. */
export interface LocalNames {
  stackName: string;
  ref: Map<string, string>;
  attrs: Map<string, Record<string, string>>;
}

export function resourcesOfType(template: CfnTemplate, type: string): [string, CfnResource][] {
  return Object.entries(template.Resources).filter(([, r]) => r.Type === type);
}

const PSEUDO: Record<string, (names: LocalNames) => string> = {
  'AWS::Region': () => LOCAL_REGION,
  'AWS::AccountId': () => LOCAL_ACCOUNT,
  'AWS::Partition': () => 'aws',
  'AWS::URLSuffix': () => 'amazonaws.com',
  'AWS::StackName': (n) => n.stackName,
  'AWS::StackId': (n) => `arn:aws:cloudformation:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stack/${n.stackName}/local`,
  'AWS::NoValue': () => '',
};

/** Resolves intrinsic functions in a template value against local names. */
export function resolveValue(value: unknown, names: LocalNames): unknown {
  if (Array.isArray(value)) return value.map((v) => resolveValue(v, names));
  if (!value || typeof value !== 'object') return value;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length === 1) {
    const [fn] = keys as [string];
    const arg = obj[fn];
    switch (fn) {
      case 'Ref': {
        const id = arg as string;
        if (PSEUDO[id]) return PSEUDO[id](names);
        const ref = names.ref.get(id);
        if (ref === undefined) throw new Error(`local layer cannot resolve Ref ${id}`);
        return ref;
      }
      case 'Fn::GetAtt': {
        const [id, attr] = (typeof arg === 'string' ? arg.split('.') : arg) as [string, string];
        const found = names.attrs.get(id)?.[attr];
        if (found === undefined) throw new Error(`local layer cannot resolve Fn::GetAtt ${id}.${attr}`);
        return found;
      }
      case 'Fn::Join': {
        const [sep, parts] = arg as [string, unknown[]];
        return (resolveValue(parts, names) as unknown[]).join(sep);
      }
      case 'Fn::Select': {
        const [index, list] = arg as [number, unknown];
        return (resolveValue(list, names) as unknown[])[Number(index)];
      }
      case 'Fn::Split': {
        const [sep, source] = arg as [string, unknown];
        return String(resolveValue(source, names)).split(sep);
      }
      case 'Fn::Sub': {
        const [text, vars] = (typeof arg === 'string' ? [arg, {}] : arg) as [string, Record<string, unknown>];
        return text.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
          if (name in vars) return String(resolveValue(vars[name], names));
          const [id, attr] = name.split('.') as [string, string | undefined];
          return String(resolveValue(attr ? { 'Fn::GetAtt': [id, attr] } : { Ref: id }, names));
        });
      }
      case 'Fn::GetAZs':
        return [`${LOCAL_REGION}a`, `${LOCAL_REGION}b`];
      case 'Fn::ImportValue':
        throw new Error('local layer cannot resolve Fn::ImportValue');
    }
  }
  return Object.fromEntries(keys.map((k) => [k, resolveValue(obj[k], names)]));
}

/** Local physical names for what the layer emulates; everything else gets a placeholder ARN. */
export function localNames(template: CfnTemplate, stackName: string, sqsEndpointUrl: string): LocalNames {
  const names: LocalNames = { stackName, ref: new Map(), attrs: new Map() };
  const arn = (service: string, rest: string) => `arn:aws:${service}:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${rest}`;
  // Queue names may be Fn::Join of the stack name: resolve those first (pseudo parameters only).
  for (const [id, r] of Object.entries(template.Resources)) {
    const p = r.Properties ?? {};
    switch (r.Type) {
      case 'AWS::DynamoDB::Table': {
        const name = (p.TableName ? resolveValue(p.TableName, names) : id) as string;
        names.ref.set(id, name);
        names.attrs.set(id, { Arn: arn('dynamodb', `table/${name}`), StreamArn: arn('dynamodb', `table/${name}/stream/local`) });
        break;
      }
      case 'AWS::SQS::Queue': {
        const name = (p.QueueName ? resolveValue(p.QueueName, names) : `${stackName}-${id}`) as string;
        const url = `${sqsEndpointUrl.replace(/\/$/, '')}/${LOCAL_ACCOUNT}/${name}`;
        names.ref.set(id, url);
        names.attrs.set(id, { Arn: arn('sqs', name), QueueName: name, QueueUrl: url });
        break;
      }
      case 'AWS::S3::Bucket': {
        const name = (p.BucketName ? resolveValue(p.BucketName, names) : `${stackName}-${id}`.toLowerCase().slice(0, 63)) as string;
        names.ref.set(id, name);
        names.attrs.set(id, { Arn: `arn:aws:s3:::${name}`, DomainName: `${name}.s3.amazonaws.com`, RegionalDomainName: `${name}.s3.${LOCAL_REGION}.amazonaws.com` });
        break;
      }
      case 'AWS::Lambda::Function': {
        names.ref.set(id, id);
        names.attrs.set(id, { Arn: arn('lambda', `function:${id}`) });
        break;
      }
      case 'AWS::StepFunctions::StateMachine': {
        const name = (p.StateMachineName ? resolveValue(p.StateMachineName, names) : id) as string;
        names.ref.set(id, arn('states', `stateMachine:${name}`));
        names.attrs.set(id, { Name: name, Arn: arn('states', `stateMachine:${name}`) });
        break;
      }
      default: {
        // Roles, log groups, clusters...: the local layer doesn't run them, but tokens that point at
        // them (say, a role ARN in an environment variable) still need a value.
        const service = r.Type.split('::')[1]?.toLowerCase() ?? 'local';
        names.ref.set(id, id);
        names.attrs.set(
          id,
          new Proxy({} as Record<string, string>, {
            get: (_, attr) => (attr === 'Arn' ? arn(service, id) : `${id}.${String(attr)}`),
          }),
        );
      }
    }
  }
  return names;
}
