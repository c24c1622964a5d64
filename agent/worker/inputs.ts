// What a task reads besides its definition: its execution's fixed parts and the plan's input (for a
// pipeline stage after the first, the input merged with earlier stages' outputs), kept in memory.
import type { ExecutionRecord, TaskRecord } from '../../core/records.ts';
import { mergeOutputs } from '../../core/patterns.ts';
import type { WorkerDeps } from './context.ts';

/** Inputs (and pipeline `data` per stage) and execution records kept in memory. */
const CACHE_SIZE = 64;

export class TaskInputs {
  private readonly inputs = new Lru<Record<string, unknown>>(CACHE_SIZE);
  private readonly metas = new Lru<ExecutionRecord>(CACHE_SIZE);

  constructor(private readonly deps: Pick<WorkerDeps, 'executions' | 'payloads'>) {}

  /**
   * Only the execution's fixed parts are read through this (its input, pattern, stages), so they
   * are cached. A stop or a cancel needs no check: it skips unclaimed tasks itself, so a claim made
   * after it fails (core/steps.ts Recover, ExecutionService.cancel).
   */
  async execution(executionId: string): Promise<ExecutionRecord | undefined> {
    let meta = this.metas.get(executionId);
    if (!meta) {
      meta = await this.deps.executions.getExecution(executionId);
      if (meta) this.metas.set(executionId, meta);
    }
    return meta;
  }

  /** The plan's input; for a pipeline stage after the first, `data`: input + earlier stages' outputs. */
  async inputFor(execution: ExecutionRecord, task: TaskRecord): Promise<Record<string, unknown>> {
    let input = this.inputs.get(execution.executionId);
    if (!input) {
      input = await this.deps.payloads.load(execution.input);
      this.inputs.set(execution.executionId, input);
    }
    if (execution.pattern !== 'pipeline' || task.stage === 0) return input;
    // Earlier stages have ended before a later stage is dispatched, so their data is fixed.
    const key = `${execution.executionId}#${task.stage}`;
    let data = this.inputs.get(key);
    if (!data) {
      const earlier = (await this.deps.executions.listTasks(execution.executionId))
        .filter((t) => t.stage < task.stage && t.status === 'completed')
        .sort((a, b) => a.index - b.index);
      const outputs = await Promise.all(earlier.map((t) => (t.output ? this.deps.payloads.load(t.output) : undefined)));
      data = mergeOutputs(input, outputs);
      this.inputs.set(key, data);
    }
    return data;
  }
}

/** A tiny LRU: a Map iterates in insertion order, so the first key is the least recent. */
class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
}
