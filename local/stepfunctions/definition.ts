// Compiles an ASL definition for aws-local-stepfunctions: finds every Task state (nested Map and
// Parallel included), checks that its resource is one this service integrates, and patches the
// copy the library runs where the library departs from AWS.
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import type { LocalStateMachine } from './types.ts';

export type Integration = 'lambda-function' | 'lambda:invoke' | 'sqs:sendMessage' | 'states:startExecution';
export type Pattern = 'request-response' | 'callback' | 'sync' | 'sync:2';

export interface TaskStateDef {
  Type: 'Task';
  Resource: string;
  Parameters?: unknown;
  TimeoutSeconds?: number;
  TimeoutSecondsPath?: string;
  HeartbeatSeconds?: number;
  HeartbeatSecondsPath?: string;
  Retry?: Array<{ ErrorEquals: string[] }>;
  Catch?: Array<{ ErrorEquals: string[] }>;
}

export interface TaskSpec {
  name: string;
  state: TaskStateDef;
  integration: Integration;
  pattern: Pattern;
  /** As AWS names them in history events (taskScheduledEventDetails.resourceType/resource). */
  resourceType: 'lambda' | 'sqs' | 'states';
  resource: string;
}

export interface MapSpec {
  InputPath?: string | null;
  ItemsPath?: string;
}

export interface CompiledMachine {
  arn: string;
  name: string;
  definition: object;
  runner: StateMachine;
  tasks: Map<string, TaskSpec>;
  maps: Map<string, MapSpec>;
  /** states:startExecution Tasks with a fixed StateMachineArn, checked once all machines are known. */
  childMachineArns: Array<{ state: string; arn: string }>;
}

/**
 * The longest timer Node keeps (2^31 - 1 ms); longer setTimeout delays fire after 1 ms. AWS
 * allows up to 99999999 s for a Task and a year for an execution: locally they are capped here.
 */
export const MAX_TIMER_SECONDS = Math.floor(0x7fffffff / 1000);

const LAMBDA_ARN = /^arn:aws[\w-]*:lambda:[^:]+:[^:]+:function:([^:]+)(?::[^:]+)?$/;
const SERVICE_ARN = /^arn:aws[\w-]*:states:[^:]*:[^:]*:(\w+):(\w+)(\.waitForTaskToken|\.sync(?::2)?)?$/;

const SUPPORTED: Record<string, { integration: Integration; patterns: Pattern[] }> = {
  'lambda:invoke': { integration: 'lambda:invoke', patterns: ['request-response', 'callback'] },
  'sqs:sendMessage': { integration: 'sqs:sendMessage', patterns: ['request-response', 'callback'] },
  'states:startExecution': {
    integration: 'states:startExecution',
    patterns: ['request-response', 'sync', 'sync:2'],
  },
};

/** The function name in a Lambda function ARN, partial ARN or plain name (qualifier dropped). */
export function lambdaFunctionName(arnOrName: string): string {
  const full = LAMBDA_ARN.exec(arnOrName);
  if (full) return full[1]!;
  const partial = /^(?:\d{12}:)?function:([^:]+)/.exec(arnOrName) ?? /^([^:]+)/.exec(arnOrName);
  return partial ? partial[1]! : arnOrName;
}

export class DefinitionError extends Error {
  override name = 'InvalidDefinition';
}

export function compileMachine(sm: LocalStateMachine, hasLambda: (fn: string) => boolean): CompiledMachine {
  const fail = (msg: string): never => {
    throw new DefinitionError(`state machine ${sm.name}: ${msg}`);
  };
  const patched = structuredClone(sm.definition) as Record<string, unknown>;
  const tasks = new Map<string, TaskSpec>();
  const maps = new Map<string, MapSpec>();
  const seen = new Map<string, string>();
  const childMachineArns: CompiledMachine['childMachineArns'] = [];

  if (patched.QueryLanguage === 'JSONata') fail('JSONata is not supported locally (use JSONPath)');
  if (typeof patched.TimeoutSeconds === 'number') patched.TimeoutSeconds = Math.min(patched.TimeoutSeconds, MAX_TIMER_SECONDS);

  const walk = (machine: Record<string, unknown>): void => {
    const states = machine.States as Record<string, Record<string, unknown>> | undefined;
    if (!states || typeof states !== 'object') fail('a States object is missing');
    for (const [name, state] of Object.entries(states!)) {
      if (state.QueryLanguage === 'JSONata') fail(`state ${name}: JSONata is not supported locally`);
      // Overrides are keyed by state name across nested machines, so a name must mean one state.
      const text = JSON.stringify(state);
      const previous = seen.get(name);
      if (previous !== undefined && previous !== text && state.Type === 'Task') {
        fail(`two different Task states are named ${name}; names must be unique locally`);
      }
      seen.set(name, text);
      switch (state.Type) {
        case 'Task':
          tasks.set(name, compileTask(name, state as unknown as TaskStateDef, hasLambda, fail, childMachineArns));
          break;
        case 'Map': {
          const processor = (state.ItemProcessor ?? state.Iterator) as Record<string, unknown> | undefined;
          const config = processor?.ProcessorConfig as { Mode?: string } | undefined;
          if (config?.Mode === 'DISTRIBUTED') fail(`state ${name}: Distributed Map is not supported locally`);
          if (state.ItemReader || state.ItemBatcher || state.ResultWriter) fail(`state ${name}: Distributed Map fields are not supported locally`);
          if (!maps.has(name)) maps.set(name, { InputPath: state.InputPath as string | null | undefined, ItemsPath: state.ItemsPath as string | undefined });
          if (processor) walk(processor);
          break;
        }
        case 'Parallel':
          for (const branch of (state.Branches as Array<Record<string, unknown>> | undefined) ?? []) walk(branch);
          break;
        case 'Wait':
          if (typeof state.Seconds === 'number') state.Seconds = Math.min(state.Seconds, MAX_TIMER_SECONDS);
          break;
      }
    }
  };
  walk(patched);

  let runner: StateMachine;
  try {
    runner = new StateMachine(patched as unknown as StateMachineDefinition, {
      validationOptions: { checkPaths: true, checkArn: true },
    });
  } catch (err) {
    return fail((err as Error).message);
  }
  return { arn: sm.arn, name: sm.name, definition: sm.definition, runner, tasks, maps, childMachineArns };
}

function compileTask(
  name: string,
  state: TaskStateDef,
  hasLambda: (fn: string) => boolean,
  fail: (msg: string) => never,
  childMachineArns: CompiledMachine['childMachineArns'],
): TaskSpec {
  const resource = state.Resource;
  let spec: TaskSpec;
  const lambda = typeof resource === 'string' ? LAMBDA_ARN.exec(resource) : null;
  if (lambda) {
    if (!hasLambda(resource)) fail(`state ${name}: no local handler for Lambda function ${resource}`);
    spec = { name, state, integration: 'lambda-function', pattern: 'request-response', resourceType: 'lambda', resource };
  } else {
    const m = typeof resource === 'string' ? SERVICE_ARN.exec(resource) : null;
    const pattern: Pattern = !m?.[3] ? 'request-response' : m[3] === '.waitForTaskToken' ? 'callback' : (m[3].slice(1) as Pattern);
    const supported = m ? SUPPORTED[`${m[1]}:${m[2]}`] : undefined;
    if (!m || !supported || !supported.patterns.includes(pattern)) {
      return fail(`state ${name}: States.Runtime: the resource ${String(resource)} is not supported locally`);
    }
    spec = {
      name,
      state,
      integration: supported.integration,
      pattern,
      resourceType: m[1] as TaskSpec['resourceType'],
      resource: `${m[2]}${m[3] ?? ''}`,
    };
    const params = (state.Parameters ?? {}) as Record<string, unknown>;
    if (spec.integration === 'lambda:invoke' && typeof params.FunctionName === 'string' && !hasLambda(params.FunctionName)) {
      fail(`state ${name}: no local handler for Lambda function ${params.FunctionName}`);
    }
    if (spec.integration === 'states:startExecution' && typeof params.StateMachineArn === 'string') {
      childMachineArns.push({ state: name, arn: params.StateMachineArn });
    }
  }

  for (const path of [state.TimeoutSecondsPath, state.HeartbeatSecondsPath]) {
    if (path === undefined) continue;
    try {
      readReferencePath(path, {}, {});
    } catch {
      fail(`state ${name}: ${path} is not a reference path`);
    }
  }
  if (state.HeartbeatSeconds !== undefined && state.TimeoutSeconds !== undefined && state.HeartbeatSeconds >= state.TimeoutSeconds) {
    fail(`state ${name}: HeartbeatSeconds must be smaller than TimeoutSeconds`);
  }
  // The library gives a Task without TimeoutSeconds(Path) 60 s; AWS gives it no limit (99999999 s).
  if (state.TimeoutSeconds === undefined && state.TimeoutSecondsPath === undefined) {
    state.TimeoutSeconds = MAX_TIMER_SECONDS;
  } else if (state.TimeoutSeconds !== undefined) {
    state.TimeoutSeconds = Math.min(state.TimeoutSeconds, MAX_TIMER_SECONDS);
  }
  // On AWS, States.Timeout in ErrorEquals also matches a heartbeat timeout; the library matches
  // names exactly, so the patched copy lists States.HeartbeatTimeout beside it.
  if (state.HeartbeatSeconds !== undefined || state.HeartbeatSecondsPath !== undefined) {
    for (const rule of [...(state.Retry ?? []), ...(state.Catch ?? [])]) {
      if (rule.ErrorEquals.includes('States.Timeout') && !rule.ErrorEquals.includes('States.HeartbeatTimeout')) {
        rule.ErrorEquals.push('States.HeartbeatTimeout');
      }
    }
  }
  return spec;
}

const SEGMENT = /^(?:\.([^.[\]]+)|\[(?:'([^']*)'|"([^"]*)"|(\d+))\])/;

/**
 * Evaluates an ASL reference path ($.a.b, $['a'][0], $$.Execution.Id) as jsonpath-plus does for
 * the library: undefined when nothing is there. Throws on anything that is not a reference path.
 */
export function readReferencePath(path: string, input: unknown, context: unknown): unknown {
  let value: unknown;
  let rest: string;
  if (path.startsWith('$$')) {
    value = context;
    rest = path.slice(2);
  } else if (path.startsWith('$')) {
    value = input;
    rest = path.slice(1);
  } else {
    throw new Error(`not a reference path: ${path}`);
  }
  while (rest.length > 0) {
    const m = SEGMENT.exec(rest);
    if (!m) throw new Error(`not a reference path: ${path}`);
    const key = m[1] ?? m[2] ?? m[3] ?? m[4]!;
    value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
    rest = rest.slice(m[0].length);
  }
  return value;
}
