// The code generation engine's agent part: after a coder's run, the files it wrote and the
// language's verification check run in the workspace (as the task's user, through the command
// driver). A check that fails fails the task as validation: the run completed, its code does not
// build. A toolchain this agent lacks is reported as skipped, not passed.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { existsSync, readdirSync } from 'node:fs';
import {
  type CheckResult,
  type CodegenResult,
  type CodegenSpec,
  LANGUAGE_EXTENSIONS,
  describeCheckFailures,
} from '../../core/engines/codegen.ts';
import type { Task } from '../../core/plan.ts';
import type { DriverResult } from '../drivers/types.ts';
import { type EngineContext, changedFiles, findTool, runScript, secondsLeft, shq } from './context.ts';

/** Scratch space of the checks (build caches, class files), removed after them. */
const CHECK_DIR = '.xl-check';

interface Check {
  tool: string;
  /** Executables looked up before running; the first missing one skips the check. */
  needs: { name: string; node?: boolean }[];
  /** Given the tools' paths (in `needs` order), the script. */
  script(tools: string[]): string;
  /** Why it does not apply (no build file...). */
  skip?: string;
}

const sorted = (xs: string[]) => xs.map(shq).join(' ');

/** The checks of a language for the files a run wrote. */
export function checksFor(language: CodegenSpec['language'], workspace: string, files: string[]): Check[] {
  const has = (f: string) => existsSync(join(workspace, f));
  const mine = files.filter((f) => LANGUAGE_EXTENSIONS[language].some((ext) => f.endsWith(ext)));
  const none = `no ${language} files (${LANGUAGE_EXTENSIONS[language].join(', ')}) were written`;
  switch (language) {
    case 'javascript':
      return [{ tool: 'node --check', needs: [{ name: 'node' }], script: ([node]) => `rc=0; for f in ${sorted(mine)}; do ${shq(node!)} --check "$f" || rc=1; done; exit $rc`, ...(mine.length ? {} : { skip: none }) }];
    case 'typescript':
      if (has('tsconfig.json')) return [{ tool: 'tsc --noEmit -p .', needs: [{ name: 'tsc', node: true }], script: ([tsc]) => `${shq(tsc!)} --noEmit -p .` }];
      return [
        {
          tool: 'tsc --noEmit --strict (no tsconfig.json)',
          needs: [{ name: 'tsc', node: true }],
          script: ([tsc]) => `${shq(tsc!)} --noEmit --strict --target es2022 --module esnext --moduleResolution bundler --allowImportingTsExtensions --skipLibCheck --jsx preserve ${sorted(mine)}`,
          ...(mine.length ? {} : { skip: none }),
        },
      ];
    case 'python':
      // compile() is py_compile without writing .pyc files into the workspace.
      return [
        {
          tool: 'python3 -m py_compile (no .pyc written)',
          needs: [{ name: 'python3' }],
          script: ([py]) => `${shq(py!)} -c 'import sys
for f in sys.argv[1:]:
    compile(open(f, "rb").read(), f, "exec")' ${sorted(mine)}`,
          ...(mine.length ? {} : { skip: none }),
        },
      ];
    case 'go': {
      const env = `export GOCACHE="$PWD/${CHECK_DIR}/go-build"; ${has('go.mod') ? '' : `export GO111MODULE=off GOPATH="$PWD/${CHECK_DIR}/gopath:/usr/share/gocode"; `}`;
      return [
        { tool: 'gofmt -l', needs: [{ name: 'gofmt' }], script: ([gofmt]) => `out=$(${shq(gofmt!)} -l ${sorted(mine)}) || exit 1; if [ -n "$out" ]; then echo "not gofmt-formatted: $out"; exit 1; fi`, ...(mine.length ? {} : { skip: none }) },
        { tool: 'go vet ./...', needs: [{ name: 'go' }], script: ([go]) => `${env}${shq(go!)} vet ./...`, ...(mine.length ? {} : { skip: none }) },
      ];
    }
    case 'rust':
      return [{ tool: 'cargo check --offline', needs: [{ name: 'cargo' }], script: ([cargo]) => `CARGO_TARGET_DIR="$PWD/${CHECK_DIR}/target" ${shq(cargo!)} check --offline --quiet`, ...(has('Cargo.toml') ? {} : { skip: 'no Cargo.toml in the workspace' }) }];
    case 'java':
      if (has('pom.xml')) return [{ tool: 'mvn -q compile', needs: [{ name: 'mvn' }], script: ([mvn]) => `${shq(mvn!)} -q -B -Dmaven.repo.local="$PWD/${CHECK_DIR}/m2" compile` }];
      if (has('gradlew')) return [{ tool: './gradlew compileJava', needs: [{ name: 'sh' }], script: () => `GRADLE_USER_HOME="$PWD/${CHECK_DIR}/gradle" sh ./gradlew -q compileJava` }];
      return [{ tool: 'javac', needs: [{ name: 'javac' }], script: ([javac]) => `${shq(javac!)} -d ${CHECK_DIR}/classes ${sorted(mine)}`, ...(mine.length ? {} : { skip: none }) }];
    case 'csharp': {
      const project = readdirSync(workspace).some((f) => /\.(csproj|sln)$/.test(f));
      return [{ tool: 'dotnet build', needs: [{ name: 'dotnet' }], script: ([dotnet]) => `DOTNET_CLI_HOME="$PWD/${CHECK_DIR}" ${shq(dotnet!)} build --nologo -v q`, ...(project ? {} : { skip: 'no .csproj or .sln at the root of the workspace' }) }];
    }
  }
}

/** Runs the checks in order; a check that cannot run for time or an abort ends the run as that failure. */
async function runChecks(task: Task, workspace: string, checks: Check[], ctx: EngineContext): Promise<CheckResult[] | DriverResult> {
  const results: CheckResult[] = [];
  try {
    for (const c of checks) {
      if (c.skip) {
        results.push({ tool: c.tool, skipped: c.skip });
        continue;
      }
      if (!ctx.commands) {
        results.push({ tool: c.tool, skipped: 'this agent has no command driver to run checks with' });
        continue;
      }
      const tools: string[] = [];
      for (const need of c.needs) {
        const found = await findTool(need.name, { workspace: need.node ? workspace : undefined, path: ctx.path });
        if (!found) break;
        tools.push(found);
      }
      if (tools.length < c.needs.length) {
        results.push({ tool: c.tool, skipped: 'tool not installed' });
        continue;
      }
      const timeoutSeconds = secondsLeft(task, ctx);
      if (timeoutSeconds < 1) return { status: 'failed', error: { type: 'timeout', message: `timed out after ${task.timeoutSeconds} s (before the check ${c.tool})` } };
      // Everything the tool prints goes to stderr: the command driver keeps its tail as the message.
      const r = await runScript(task, workspace, `exec 1>&2\nmkdir -p ${CHECK_DIR} || exit 1\n${c.script(tools)}`, { ctx, commands: ctx.commands, env: {}, timeoutSeconds });
      if (r.status === 'completed') results.push({ tool: c.tool, passed: true });
      else if (r.error.type === 'permanent') results.push({ tool: c.tool, passed: false, output: r.error.message });
      else return { status: 'failed', error: { type: r.error.type, message: `the check ${c.tool} did not finish: ${r.error.message}` } };
    }
  } finally {
    await rm(join(workspace, CHECK_DIR), { recursive: true, force: true });
  }
  return results;
}

/**
 * The code generation step of a completed run with `codegen`: the output gets `codegen` (files,
 * the model's summary, the checks). No file written, or a failed check: validation failure.
 */
export async function applyCodegen(task: Task, spec: CodegenSpec, workspace: string, result: DriverResult, ctx: EngineContext): Promise<DriverResult> {
  if (result.status !== 'completed') return result;
  const cost = result.cost ? { cost: result.cost } : {};
  const files = await changedFiles(workspace, ctx.startedAt);
  if (files.length === 0) return { status: 'failed', error: { type: 'validation', message: `code generation wrote no files in the workspace (${spec.language})` }, ...cost };
  const checks = await runChecks(task, workspace, checksFor(spec.language, workspace, files), ctx);
  if (!Array.isArray(checks)) return { ...checks, ...cost } as DriverResult;
  if (checks.some((c) => c.passed === false)) return { status: 'failed', error: { type: 'validation', message: describeCheckFailures(checks) }, ...cost };
  const summary = typeof result.output.summary === 'string' ? result.output.summary : undefined;
  const codegen: CodegenResult = { language: spec.language, ...(spec.framework ? { framework: spec.framework } : {}), files, ...(summary ? { summary } : {}), checks };
  return { ...result, output: { ...result.output, codegen } };
}
