// The arguments of `npm run deploy|destroy|deploy:localstack -- ...`: the scripts' own flags, and
// what goes through to the cdk CLI (`-c key=value` context, `--profile`, other cdk options).
// infra/stack.ts's DEFAULT_STACK_NAME (importing it would load all of aws-cdk-lib; a test keeps them equal).
export const DEFAULT_STACK_NAME = 'xl';

export interface CdkArgs {
  /** `-c stackName=...`, else XL_STACK_NAME, else `xl` (as infra/app.ts reads it). */
  readonly stackName: string;
  /** Context pairs, in order, as given. */
  readonly context: ReadonlyArray<readonly [string, string]>;
  /** `-c k=v` for every context pair: what `cdk synth` needs to build the same stack. */
  readonly contextArgs: string[];
  /** `--profile <name>`, when given: every cdk command needs it. */
  readonly profileArgs: string[];
  /** `--toolkit-stack-name`, default CDKToolkit. */
  readonly toolkitStackName: string;
  /** Everything else, for `cdk deploy` (e.g. `--require-approval never`). */
  readonly deployArgs: string[];
  /** The scripts' own flags that were given (`--keep-logs`, `--dry-run`, ...). */
  readonly flags: ReadonlySet<string>;
}

export class UsageError extends Error {}

/** Splits argv; `ownFlags` are the script's boolean flags, the rest goes to cdk. */
export function parseCdkArgs(argv: readonly string[], env: NodeJS.ProcessEnv, ownFlags: readonly string[] = []): CdkArgs {
  const context: [string, string][] = [];
  const profileArgs: string[] = [];
  const deployArgs: string[] = [];
  const flags = new Set<string>();
  let toolkitStackName = 'CDKToolkit';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (name: string): string => {
      const inline = arg.includes('=') && arg.startsWith('--') ? arg.slice(arg.indexOf('=') + 1) : undefined;
      if (inline !== undefined) return inline;
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`${name} needs a value`);
      return next;
    };
    if (arg === '--') continue; // npm passes it on when typed twice
    if (ownFlags.includes(arg)) flags.add(arg);
    else if (arg === '-c' || arg === '--context' || arg.startsWith('--context=')) {
      const pair = value(arg.startsWith('--context') ? '--context' : '-c');
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new UsageError(`-c takes key=value, got "${pair}"`);
      context.push([pair.slice(0, eq), pair.slice(eq + 1)]);
    } else if (arg === '--profile' || arg.startsWith('--profile=')) profileArgs.push('--profile', value('--profile'));
    else if (arg === '--toolkit-stack-name' || arg.startsWith('--toolkit-stack-name=')) toolkitStackName = value('--toolkit-stack-name');
    else deployArgs.push(arg);
  }
  const stackName = context.findLast(([k]) => k === 'stackName')?.[1] ?? env.XL_STACK_NAME ?? DEFAULT_STACK_NAME;
  // infra/app.ts reads XL_STACK_NAME too; naming it in the context keeps every cdk command on one stack.
  if (!context.some(([k]) => k === 'stackName')) context.push(['stackName', stackName]);
  return {
    stackName,
    context,
    contextArgs: context.flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    profileArgs,
    toolkitStackName,
    deployArgs,
    flags,
  };
}
