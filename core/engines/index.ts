// Which engines a task runs, and the prompt section they add to a language-model task's system
// prompt. The agent applies them after the driver (agent/engines/index.ts).
import { type CodegenSpec, codegenPrompt } from './codegen.ts';
import { reviewPrompt } from './review.ts';
import { type TestSpec, type TestsField, testSpec, testgenPrompt } from './testgen.ts';

/** The task fields the engines read (a subset of core/plan.ts's Task). */
export interface EngineTask {
  agentType: string;
  capability?: string;
  instructions?: string;
  command?: string;
  codegen?: CodegenSpec;
  tests?: TestsField;
  review?: { criteria?: string[]; qualityGates?: Record<string, unknown>[] };
}

export interface Engines {
  /** Code generation: a language-model task with `codegen`. */
  codegen?: CodegenSpec;
  /** Test generation and run: a task with `tests` (a command task too: the engine runs its tests after it). */
  tests?: TestSpec;
  /** Review: a reviewer's language-model task with `review`. */
  review?: NonNullable<EngineTask['review']>;
}

export function enginesFor(task: EngineTask): Engines {
  const llm = task.instructions !== undefined;
  const tests = testSpec(task);
  return {
    ...(llm && task.codegen ? { codegen: task.codegen } : {}),
    ...(tests ? { tests } : {}),
    ...(llm && task.agentType === 'reviewer' && task.review ? { review: task.review } : {}),
  };
}

/** The engines' part of a language-model task's system prompt: '' or text starting with a blank line. */
export function enginePrompt(task: EngineTask): string {
  if (task.instructions === undefined) return '';
  const e = enginesFor(task);
  const parts = [e.codegen && codegenPrompt(e.codegen), e.tests && testgenPrompt(e.tests), e.review && reviewPrompt(e.review)].filter(Boolean);
  return parts.length ? `\n\n${parts.join('\n\n')}` : '';
}
