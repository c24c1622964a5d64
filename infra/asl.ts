// Reads the state machine definitions out of a synthesized template. CDK renders each
// DefinitionString as `Fn::Join('', [json text, token, json text, ...])` where the tokens are ARNs
// and URLs ({ Ref }, { Fn::GetAtt }, pseudo parameters). Substituting those tokens, and nothing else,
// gives the ASL that AWS runs: the local layer and the parity tests use exactly that.

/** A CloudFormation intrinsic inside a definition: `{ Ref: id }`, `{ 'Fn::GetAtt': [id, attr] }`, ... */
export type AslToken = { Ref: string } | { 'Fn::GetAtt': [string, string] | string } | Record<string, unknown>;
/** A piece of a definition: JSON text, or a token that resolves to a string. */
export type AslPart = string | AslToken;

export interface TemplateLike {
  Resources?: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

/** A state as the ASL writes it; only the fields the walkers look at are typed. */
export interface AslState {
  Type: string;
  Resource?: string;
  TimeoutSeconds?: number;
  TimeoutSecondsPath?: string;
  ItemProcessor?: AslMachine;
  Iterator?: AslMachine;
  Branches?: AslMachine[];
  [field: string]: unknown;
}
export interface AslMachine {
  StartAt: string;
  States: Record<string, AslState>;
  [field: string]: unknown;
}

const STATE_MACHINE = 'AWS::StepFunctions::StateMachine';

/** Flattens a DefinitionString into parts; nested Fn::Join with '' separators are flattened too. */
function definitionParts(definition: unknown, logicalId: string): AslPart[] {
  if (typeof definition === 'string') return [definition];
  if (definition && typeof definition === 'object' && 'Fn::Join' in definition) {
    const [separator, parts] = (definition as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
    const out: AslPart[] = [];
    parts.forEach((part, i) => {
      if (i > 0 && separator) out.push(separator);
      if (part && typeof part === 'object' && 'Fn::Join' in part) out.push(...definitionParts(part, logicalId));
      else out.push(part as AslPart);
    });
    return out;
  }
  throw new Error(`state machine ${logicalId}: DefinitionString is neither a string nor Fn::Join`);
}

/** Per state machine logical id, the DefinitionString's parts (JSON text and tokens). */
export function stateMachineDefinitions(template: TemplateLike): Record<string, AslPart[]> {
  const out: Record<string, AslPart[]> = {};
  for (const [id, resource] of Object.entries(template.Resources ?? {})) {
    if (resource.Type !== STATE_MACHINE) continue;
    const props = resource.Properties ?? {};
    if (props.DefinitionSubstitutions) {
      throw new Error(`state machine ${id}: DefinitionSubstitutions are not supported`);
    }
    if (props.DefinitionString === undefined) {
      throw new Error(`state machine ${id}: no DefinitionString (Definition / DefinitionS3Location are not supported)`);
    }
    out[id] = definitionParts(props.DefinitionString, id);
  }
  return out;
}

/**
 * The ASL of one state machine, with every token replaced by `resolve(token)`. A token sits inside a
 * JSON string (an ARN, a URL), so its value is escaped as JSON string content.
 */
export function resolveDefinition(
  template: TemplateLike,
  logicalId: string,
  resolve: (token: AslToken) => string,
): AslMachine {
  const parts = stateMachineDefinitions(template)[logicalId];
  if (!parts) throw new Error(`no state machine ${logicalId} in the template`);
  const text = parts
    .map((part) => (typeof part === 'string' ? part : JSON.stringify(String(resolve(part))).slice(1, -1)))
    .join('');
  return JSON.parse(text) as AslMachine;
}

/**
 * Calls `visit` for every state, nested Map (ItemProcessor / Iterator) and Parallel branches included,
 * with the names of the enclosing states.
 */
export function forEachState(
  machine: AslMachine,
  visit: (name: string, state: AslState, parents: string[]) => void,
  parents: string[] = [],
): void {
  for (const [name, state] of Object.entries(machine.States)) {
    visit(name, state, parents);
    const nested = [state.ItemProcessor, state.Iterator, ...(state.Branches ?? [])].filter(
      (m): m is AslMachine => m !== undefined,
    );
    for (const m of nested) forEachState(m, visit, [...parents, name]);
  }
}

const EXAMPLE_PSEUDO: Record<string, string> = {
  'AWS::Partition': 'aws',
  'AWS::Region': 'us-east-1',
  'AWS::AccountId': '123456789012',
  'AWS::URLSuffix': 'amazonaws.com',
};

/**
 * A resolver for tests and tools: pseudo parameters get example values (partition `aws`), resources
 * `${LogicalId}` / `${LogicalId.Attr}` placeholders.
 */
export function placeholderResolver(token: AslToken): string {
  const t = token as Record<string, unknown>;
  if (typeof t.Ref === 'string') return EXAMPLE_PSEUDO[t.Ref] ?? `\${${t.Ref}}`;
  const getAtt = t['Fn::GetAtt'];
  if (getAtt !== undefined) {
    const [id, attr] = typeof getAtt === 'string' ? getAtt.split('.') : (getAtt as string[]);
    return `\${${id}.${attr}}`;
  }
  throw new Error(`unexpected token in a definition: ${JSON.stringify(token)}`);
}

/** ARN services and resource kinds of the resource types a definition refers to. */
const EXAMPLE_ARN: Record<string, (id: string) => string> = {
  'AWS::Lambda::Function': (id) => `arn:aws:lambda:us-east-1:123456789012:function:${id}`,
  'AWS::StepFunctions::StateMachine': (id) => `arn:aws:states:us-east-1:123456789012:stateMachine:${id}`,
  'AWS::SQS::Queue': (id) => `arn:aws:sqs:us-east-1:123456789012:${id}`,
};

/**
 * A resolver that gives every token a value of the shape AWS would (an ARN of the right service, a
 * function name, a queue URL), for validators that check ARNs: `Ref` and `Fn::GetAtt [id, 'Arn']`
 * of a function, a state machine (whose Ref is its ARN) or a queue; pseudo parameters as
 * placeholderResolver. Anything else throws, naming the token.
 */
export function exampleArnResolver(template: TemplateLike): (token: AslToken) => string {
  const typeOf = (id: string) => {
    const type = template.Resources?.[id]?.Type;
    if (!type) throw new Error(`a definition refers to ${id}, which is not in the template`);
    return type;
  };
  return (token) => {
    const t = token as Record<string, unknown>;
    if (typeof t.Ref === 'string') {
      if (t.Ref in EXAMPLE_PSEUDO) return EXAMPLE_PSEUDO[t.Ref]!;
      const type = typeOf(t.Ref);
      if (type === 'AWS::StepFunctions::StateMachine') return EXAMPLE_ARN[type]!(t.Ref);
      if (type === 'AWS::Lambda::Function') return t.Ref;
      if (type === 'AWS::SQS::Queue') return `https://sqs.us-east-1.amazonaws.com/123456789012/${t.Ref}`;
    }
    const getAtt = t['Fn::GetAtt'];
    if (getAtt !== undefined) {
      const [id, attr] = typeof getAtt === 'string' ? getAtt.split('.') : (getAtt as string[]);
      const example = EXAMPLE_ARN[typeOf(id!)];
      if (attr === 'Arn' && example) return example(id!);
    }
    throw new Error(`no example value for the token ${JSON.stringify(token)}`);
  };
}
