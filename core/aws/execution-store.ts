// Executions and their task records in DynamoDB (item layout: docs/design.md, "Table items").
// Every state change is one conditional write on one item, so concurrent agents, steps and API
// calls can never move a task backwards or complete it twice.
import {
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  paginateQuery,
} from '@aws-sdk/lib-dynamodb';
import type { AgentType } from '../agent-types.ts';
import { type ErrorType, type TaskError, ValidationError } from '../errors.ts';
import { conditional, conditionalResult, strip } from './ddb.ts';
import { type CachedResult, isFresh } from '../result-cache.ts';
import type { AttemptLogEntry, DeadLetterMark, ExecutionRecord, ExecutionStatus, TaskCheckpoint, TaskProgress, TaskRecord, TaskStatus } from '../records.ts';

const execPk = (id: string) => `X#${id}`;
const taskSk = (index: number) => `T#${String(index).padStart(6, '0')}`;
const namePk = (name: string) => `N#${name}`;
/** Result-cache entries share the table (core/result-cache.ts): `C#<key>`/`RESULT`, expiring by TTL. */
const cachePk = (key: string) => `C#${key}`;
const CACHE_SK = 'RESULT';

/** Appends `:entry` to the task's attempt log (a list that may not exist yet). */
const LOG_APPEND = ', attemptLog = list_append(if_not_exists(attemptLog, :emptyLog), :entry)';
const logValues = (entry: AttemptLogEntry | undefined) => (entry ? { ':emptyLog': [], ':entry': [entry] } : {});

interface TaskUpdate {
  set: string;
  condition: string;
  names?: Record<string, string>;
  values: Record<string, unknown>;
}


/** What the resource report reads of a task record. */
export type ReportTaskFields = Pick<TaskRecord, 'agentType' | 'status' | 'agentId' | 'dispatchedAt' | 'startedAt' | 'finishedAt' | 'durationMs'>;

export type ClaimResult =
  | { claimed: true; task: TaskRecord }
  | { claimed: false; reason: 'unknown' | 'stale' | 'held' | 'finished'; task?: TaskRecord };

/** GET /executions: a page, newest first; filtered by status and by a part of the name (or id) when asked. */
export interface ExecutionListOptions {
  limit: number;
  nextToken?: string;
  statuses?: ExecutionStatus[];
  /** Case-sensitive, as DynamoDB's contains(). */
  nameContains?: string;
}

/** How many index items one filtered list request reads at most. */
export const FILTERED_READ_ITEMS = 200;

export class ExecutionStore {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  // ---- executions -------------------------------------------------------------------------

  /** Makes `name` an idempotency key. When it is taken, says by which execution and plan. */
  async reserveName(
    name: string,
    executionId: string,
    planHash: string,
  ): Promise<{ reserved: true } | { reserved: false; executionId: string; planHash: string }> {
    const ok = await conditional(() =>
      this.ddb.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: namePk(name), sk: 'NAME', executionId, planHash },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
    if (ok) return { reserved: true };
    const res = await this.ddb.send(
      new GetCommand({ TableName: this.table, Key: { pk: namePk(name), sk: 'NAME' }, ConsistentRead: true }),
    );
    return { reserved: false, executionId: res.Item!.executionId, planHash: res.Item!.planHash };
  }

  /** Writes the tasks first, then the execution: an execution that exists always has its tasks. */
  async createExecution(record: ExecutionRecord, tasks: TaskRecord[]): Promise<void> {
    const pk = execPk(record.executionId);
    const requests = tasks.map((t) => ({ PutRequest: { Item: { pk, sk: taskSk(t.index), ...t } } }));
    const batches: (typeof requests)[] = [];
    for (let i = 0; i < requests.length; i += 25) batches.push(requests.slice(i, i + 25));
    // A few batches in flight at once: large plans write thousands of items.
    for (let i = 0; i < batches.length; i += 8) {
      await Promise.all(batches.slice(i, i + 8).map((batch) => this.batchWrite(batch)));
    }
    await this.ddb.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          pk,
          sk: 'META',
          gsi1pk: 'EXEC',
          gsi1sk: `${record.startedAt}#${record.executionId}`,
          ...record,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  private async batchWrite(requests: Record<string, unknown>[]): Promise<void> {
    let pending: Record<string, unknown>[] | undefined = requests;
    for (let attempt = 0; pending && pending.length > 0; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
      const res = await this.ddb.send(
        new BatchWriteCommand({ RequestItems: { [this.table]: pending as never } }),
      );
      pending = res.UnprocessedItems?.[this.table] as Record<string, unknown>[] | undefined;
      if (attempt > 10 && pending?.length) throw new Error(`could not write ${pending.length} task records`);
    }
  }

  async getExecution(executionId: string): Promise<ExecutionRecord | undefined> {
    const res = await this.ddb.send(
      new GetCommand({ TableName: this.table, Key: { pk: execPk(executionId), sk: 'META' }, ConsistentRead: true }),
    );
    return res.Item && strip<ExecutionRecord>(res.Item);
  }

  async listExecutions(opts: ExecutionListOptions): Promise<{ items: ExecutionRecord[]; nextToken?: string }> {
    const start = opts.nextToken === undefined ? undefined : decodePageToken(opts.nextToken);
    const encode = (key: Record<string, unknown> | undefined) => (key ? Buffer.from(JSON.stringify(key)).toString('base64url') : undefined);
    const query = {
      TableName: this.table,
      IndexName: 'byStart',
      KeyConditionExpression: 'gsi1pk = :p',
      ExpressionAttributeValues: { ':p': 'EXEC' } as Record<string, unknown>,
      ScanIndexForward: false,
    };
    if (!opts.statuses?.length && !opts.nameContains) {
      const res = await this.ddb.send(new QueryCommand({ ...query, Limit: opts.limit, ExclusiveStartKey: start }));
      return { items: (res.Items ?? []).map((i) => strip<ExecutionRecord>(i)), nextToken: encode(res.LastEvaluatedKey) };
    }
    // Filtered: DynamoDB applies a filter after it reads, and counts Limit before it. A request reads
    // at most FILTERED_READ_ITEMS items of the index, so a rare match costs no more than an
    // unfiltered page; the page may then hold fewer than `limit` items and a nextToken to go on.
    const conditions: string[] = [];
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':p': 'EXEC' };
    if (opts.statuses?.length) {
      names['#s'] = 'status';
      conditions.push(`(${opts.statuses.map((st, i) => ((values[`:s${i}`] = st), `#s = :s${i}`)).join(' OR ')})`);
    }
    if (opts.nameContains) {
      names['#n'] = 'name';
      values[':q'] = opts.nameContains;
      conditions.push('(contains(#n, :q) OR contains(executionId, :q))');
    }
    const items: ExecutionRecord[] = [];
    let key = start;
    let read = 0;
    while (read < FILTERED_READ_ITEMS) {
      const limit = Math.min(FILTERED_READ_ITEMS - read, 100);
      const res = await this.ddb.send(
        new QueryCommand({
          ...query,
          FilterExpression: conditions.join(' AND '),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          Limit: limit,
          ExclusiveStartKey: key,
        }),
      );
      read += res.ScannedCount ?? limit;
      const found = res.Items ?? [];
      for (const [i, item] of found.entries()) {
        items.push(strip<ExecutionRecord>(item));
        if (items.length < opts.limit) continue;
        // Full: the next page starts after this item (any item's keys make a start key).
        const last = i === found.length - 1 && !res.LastEvaluatedKey;
        return { items, nextToken: last ? undefined : encode({ pk: item.pk, sk: item.sk, gsi1pk: item.gsi1pk, gsi1sk: item.gsi1sk }) };
      }
      key = res.LastEvaluatedKey;
      if (!key) break;
    }
    return { items, nextToken: encode(key) };
  }

  /** Executions in one of the given statuses (used at start-up and by the health monitor). */
  async listByStatus(statuses: ExecutionStatus[]): Promise<ExecutionRecord[]> {
    const out: ExecutionRecord[] = [];
    const pages = paginateQuery(
      { client: this.ddb },
      {
        TableName: this.table,
        IndexName: 'byStart',
        KeyConditionExpression: 'gsi1pk = :p',
        FilterExpression: statuses.map((_, i) => `#s = :s${i}`).join(' OR '),
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: Object.fromEntries([[':p', 'EXEC'], ...statuses.map((s, i) => [`:s${i}`, s])]),
      },
    );
    for await (const page of pages) out.push(...(page.Items ?? []).map((i) => strip<ExecutionRecord>(i)));
    return out;
  }

  /**
   * The demand hints (core/demand.ts) of executions started since `sinceIso` and still running: a
   * key-condition read of the few newest items of the byStart index, not a scan.
   */
  async recentDemands(sinceIso: string): Promise<Partial<Record<AgentType, number>>[]> {
    const out: Partial<Record<AgentType, number>>[] = [];
    const pages = paginateQuery(
      { client: this.ddb },
      {
        TableName: this.table,
        IndexName: 'byStart',
        KeyConditionExpression: 'gsi1pk = :p AND gsi1sk >= :since',
        FilterExpression: '#s IN (:pending, :running) AND attribute_exists(demand)',
        ProjectionExpression: 'demand',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':p': 'EXEC', ':since': sinceIso, ':pending': 'PENDING', ':running': 'RUNNING' },
      },
    );
    for await (const page of pages) out.push(...(page.Items ?? []).map((i) => i.demand as Partial<Record<AgentType, number>>));
    return out;
  }

  /**
   * Moves the execution to `status` if it is in one of `from` (and, given `run`, only while that
   * workflow run is the current one: a superseded run's end must not end the execution).
   */
  async setStatus(
    executionId: string,
    status: ExecutionStatus,
    opts: { from: ExecutionStatus[]; stoppedAt?: string; message?: string; result?: ExecutionRecord['result']; run?: number },
  ): Promise<boolean> {
    const names: Record<string, string> = { '#s': 'status' };
    const values: Record<string, unknown> = { ':s': status };
    const sets = ['#s = :s'];
    for (const field of ['stoppedAt', 'message', 'result'] as const) {
      if (opts[field] !== undefined) {
        sets.push(`#${field} = :${field}`);
        names[`#${field}`] = field;
        values[`:${field}`] = opts[field];
      }
    }
    opts.from.forEach((s, i) => (values[`:f${i}`] = s));
    let condition = `#s IN (${opts.from.map((_, i) => `:f${i}`).join(', ')})`;
    if (opts.run !== undefined) {
      values[':run'] = opts.run;
      condition += ` AND ${currentRunCondition(opts.run)}`;
    }
    return this.updateExecution(executionId, 'SET ' + sets.join(', '), condition, values, names);
  }

  /**
   * Makes workflow run `from + 1` the execution's current one, if `from` still is and the execution
   * is in one of `statuses`: of two concurrent resumes or redrives exactly one wins. A redrive
   * (`redrivenAt`) also sets the execution PENDING (it shows as RUNNING; Prepare of the new run makes
   * it RUNNING) and clears what its end left: `stopping`, `stoppedAt`, `message`, `result`.
   */
  async advanceWorkflowRun(executionId: string, from: number, opts: { statuses: ExecutionStatus[]; redrivenAt?: string }): Promise<boolean> {
    const values: Record<string, unknown> = { ':run': from, ':next': from + 1, ':now': opts.redrivenAt ?? new Date().toISOString() };
    opts.statuses.forEach((s, i) => (values[`:f${i}`] = s));
    const condition = `#s IN (${opts.statuses.map((_, i) => `:f${i}`).join(', ')}) AND ${currentRunCondition(from)}`;
    if (opts.redrivenAt) {
      values[':pending'] = 'PENDING';
      const update = 'SET workflowRun = :next, #s = :pending, redrivenAt = :now REMOVE stopping, stoppedAt, #message, #result';
      return this.updateExecution(executionId, update, condition, values, { '#s': 'status', '#message': 'message', '#result': 'result' });
    }
    return this.updateExecution(executionId, 'SET workflowRun = :next, resumedAt = :now', condition, values, { '#s': 'status' });
  }

  /** Adds a run's spend to its execution (the plan's budget is checked against the sum before each dispatch). */
  async addSpend(executionId: string, usd: number): Promise<void> {
    await this.updateExecution(executionId, 'ADD spentUsd :usd', undefined, { ':usd': usd });
  }

  /** Records that the execution's budget is spent; true only for the first call (its event goes out once). */
  async markBudgetSpent(executionId: string, at = new Date().toISOString()): Promise<boolean> {
    return this.updateExecution(executionId, 'SET budgetSpentAt = :at', 'attribute_not_exists(budgetSpentAt)', { ':at': at });
  }

  /** Records the first "stop" failure; later ones keep the first. */
  async markStopping(executionId: string, stopping: NonNullable<ExecutionRecord['stopping']>): Promise<void> {
    await this.updateExecution(executionId, 'SET stopping = :v', 'attribute_not_exists(stopping)', { ':v': stopping });
  }

  /** A conditional update of an execution's item (it must exist); false when the condition failed. */
  private updateExecution(
    executionId: string,
    update: string,
    condition: string | undefined,
    values: Record<string, unknown>,
    names?: Record<string, string>,
  ): Promise<boolean> {
    return conditional(() =>
      this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: execPk(executionId), sk: 'META' },
          UpdateExpression: update,
          ConditionExpression: condition ? `attribute_exists(pk) AND ${condition}` : 'attribute_exists(pk)',
          ...(names ? { ExpressionAttributeNames: names } : {}),
          ExpressionAttributeValues: values,
        }),
      ),
    );
  }

  // ---- tasks --------------------------------------------------------------------------------

  async getTask(executionId: string, index: number): Promise<TaskRecord | undefined> {
    const res = await this.ddb.send(
      new GetCommand({ TableName: this.table, Key: { pk: execPk(executionId), sk: taskSk(index) }, ConsistentRead: true }),
    );
    return res.Item && strip<TaskRecord>(res.Item);
  }

  async listTasks(executionId: string): Promise<TaskRecord[]> {
    const out: TaskRecord[] = [];
    const pages = paginateQuery(
      { client: this.ddb },
      {
        TableName: this.table,
        KeyConditionExpression: 'pk = :p AND begins_with(sk, :t)',
        ExpressionAttributeValues: { ':p': execPk(executionId), ':t': 'T#' },
        ConsistentRead: true,
      },
    );
    for await (const page of pages) out.push(...(page.Items ?? []).map((i) => strip<TaskRecord>(i)));
    return out;
  }

  /**
   * The resource report's reading (core/pool-report.ts): the task records of executions started
   * since `startedSinceIso` that were still running at `activeSinceIso`, only the fields the report
   * uses. Executions by a key-condition read of the byStart index; tasks by one Query each,
   * eventually consistent (a report needs no more), a few executions at once. On AWS a Query is
   * billed by the bytes it reads (0.5 RRU per 4 KB, eventually consistent), not by the items it
   * returns, so a report over 10,000 task items of about 1 KB costs about 1,250 RRU.
   */
  async recentTasks(startedSinceIso: string, activeSinceIso: string): Promise<ReportTaskFields[]> {
    const ids: string[] = [];
    const executions = paginateQuery(
      { client: this.ddb },
      {
        TableName: this.table,
        IndexName: 'byStart',
        KeyConditionExpression: 'gsi1pk = :p AND gsi1sk >= :since',
        FilterExpression: 'attribute_not_exists(stoppedAt) OR stoppedAt >= :active',
        ProjectionExpression: 'executionId',
        ExpressionAttributeValues: { ':p': 'EXEC', ':since': startedSinceIso, ':active': activeSinceIso },
      },
    );
    for await (const page of executions) ids.push(...(page.Items ?? []).map((i) => i.executionId as string));
    const out: ReportTaskFields[] = [];
    const read = async (executionId: string) => {
      const pages = paginateQuery(
        { client: this.ddb },
        {
          TableName: this.table,
          KeyConditionExpression: 'pk = :p AND begins_with(sk, :t)',
          ProjectionExpression: 'agentType, agentId, #s, dispatchedAt, startedAt, finishedAt, durationMs',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':p': execPk(executionId), ':t': 'T#' },
        },
      );
      for await (const page of pages) out.push(...((page.Items ?? []) as ReportTaskFields[]));
    };
    for (let i = 0; i < ids.length; i += 8) await Promise.all(ids.slice(i, i + 8).map(read));
    return out;
  }

  /** A conditional update of a task's item (it must exist); false when the condition failed. */
  private async updateTask(executionId: string, index: number, update: TaskUpdate): Promise<boolean> {
    return (await this.updateTaskReturning(executionId, index, update, 'NONE')) !== undefined;
  }

  /** The same, answering the updated record (undefined when the condition failed). */
  private async updateTaskReturning(
    executionId: string,
    index: number,
    update: TaskUpdate,
    returnValues: 'ALL_NEW' | 'NONE' = 'ALL_NEW',
  ): Promise<TaskRecord | undefined> {
    const res = await conditionalResult(() =>
      this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: execPk(executionId), sk: taskSk(index) },
          UpdateExpression: update.set,
          ConditionExpression: `attribute_exists(pk) AND (${update.condition})`,
          ExpressionAttributeNames: { '#s': 'status', ...update.names },
          ExpressionAttributeValues: update.values,
          ReturnValues: returnValues,
        }),
      ),
    );
    return res && strip<TaskRecord>(res.Attributes ?? {});
  }

  /**
   * A new dispatch of the task: a fresh dispatchSeq makes every older message stale. Dispatched are
   * pending tasks (new, put back by Recover for a retry, or by a resume or a redrive), queued ones
   * (a dispatch that timed out unclaimed) and failed ones whose failure was not final (an agent
   * reported it but no Recover decided on it: the workflow run that would have was superseded).
   * A final failure (failTask, a cancel) is never dispatched again: only a redrive reopens it.
   */
  async prepareDispatch(executionId: string, index: number): Promise<TaskRecord | undefined> {
    return this.updateTaskReturning(
      executionId,
      index,
      {
        set: 'SET #s = :queued, dispatchSeq = dispatchSeq + :one REMOVE claimId, leaseExpiresAt',
        condition: '#s IN (:pending, :queued) OR (#s = :failed AND attribute_not_exists(finalFailure))',
        values: { ':queued': 'queued', ':one': 1, ':pending': 'pending', ':failed': 'failed' },
      },
    );
  }

  // ---- the result cache ----------------------------------------------------------------------

  /** The entry under `key` if it has not expired at `nowMs` (DynamoDB's TTL deletes days late). */
  async getCachedResult(key: string, nowMs: number = Date.now()): Promise<CachedResult | undefined> {
    const res = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { pk: cachePk(key), sk: CACHE_SK } }));
    if (!res.Item) return undefined;
    const entry = strip<CachedResult>(res.Item);
    return isFresh(entry, nowMs) ? entry : undefined;
  }

  /** The latest completed run of a key wins: an entry is a pointer to immutable output, so last-writer-wins is safe. */
  async putCachedResult(entry: CachedResult): Promise<void> {
    await this.ddb.send(new PutCommand({ TableName: this.table, Item: { pk: cachePk(entry.key), sk: CACHE_SK, ...entry } }));
  }

  /**
   * Completes a task no agent has claimed from a cached run (Gate's hit): its output and artifacts,
   * no attempt, no cost. False when the task moved on meanwhile (a cancel skipped it).
   */
  async completeFromCache(executionId: string, index: number, entry: CachedResult): Promise<boolean> {
    const now = new Date().toISOString();
    const values: Record<string, unknown> = {
      ':completed': 'completed',
      ':from': { executionId: entry.executionId, taskId: entry.taskId },
      ':now': now,
      ':zero': 0,
      ':queued': 'queued',
    };
    let set = 'SET #s = :completed, cachedFrom = :from, finishedAt = :now, durationMs = :zero';
    if (entry.output) {
      set += ', #output = :output';
      values[':output'] = entry.output;
    }
    if (entry.artifacts?.length) {
      set += ', artifacts = :artifacts';
      values[':artifacts'] = entry.artifacts;
    }
    return this.updateTask(executionId, index, {
      set: set + ' REMOVE #err',
      condition: '#s = :queued',
      names: { '#err': 'error', ...(entry.output ? { '#output': 'output' } : {}) },
      values,
    });
  }

  /** Skips a task no agent has claimed. */
  async skipTask(executionId: string, index: number, reason: string): Promise<boolean> {
    const done = await this.updateTask(executionId, index, {
      set: 'SET #s = :skipped, finishedAt = :now, skipReason = :r',
      condition: '#s IN (:pending, :queued)',
      values: { ':skipped': 'skipped', ':now': new Date().toISOString(), ':r': reason, ':pending': 'pending', ':queued': 'queued' },
    });
    return done;
  }

  /** Skips every task of the execution that no agent has claimed (pending or queued). */
  async skipWaitingTasks(executionId: string, reason: string): Promise<number> {
    let skipped = 0;
    for (const t of await this.listTasks(executionId)) {
      if ((t.status === 'pending' || t.status === 'queued') && (await this.skipTask(executionId, t.index, reason))) skipped++;
    }
    return skipped;
  }

  /**
   * Claims (execution, task, dispatch) for an agent with a lease. A claim succeeds on a queued task
   * of the same dispatch, or on a running one whose lease ran out (its agent died).
   */
  async claimTask(opts: {
    executionId: string;
    index: number;
    dispatchSeq: number;
    agentId: string;
    claimId: string;
    leaseMs: number;
    now?: number;
    /** When the dispatch message was sent (SQS SentTimestamp), if known. */
    dispatchedAt?: number;
  }): Promise<ClaimResult> {
    const now = opts.now ?? Date.now();
    const task = await this.updateTaskReturning(
      opts.executionId,
      opts.index,
      {
        set:
          'SET #s = :running, attempts = attempts + :one, agentId = :agent, claimId = :claim, leaseExpiresAt = :lease, startedAt = :started' +
          (opts.dispatchedAt ? ', dispatchedAt = :dispatched' : ''),
        condition: 'dispatchSeq = :seq AND (#s = :queued OR (#s = :running AND leaseExpiresAt < :now))',
        values: {
          ':running': 'running',
          ':queued': 'queued',
          ':one': 1,
          ':agent': opts.agentId,
          ':claim': opts.claimId,
          ':lease': now + opts.leaseMs,
          ':started': new Date(now).toISOString(),
          ':seq': opts.dispatchSeq,
          ':now': now,
          ...(opts.dispatchedAt ? { ':dispatched': opts.dispatchedAt } : {}),
        },
      },
    );
    if (task) return { claimed: true, task };
    const current = await this.getTask(opts.executionId, opts.index);
    if (!current) return { claimed: false, reason: 'unknown' };
    if (current.dispatchSeq !== opts.dispatchSeq) return { claimed: false, reason: 'stale', task: current };
    if (current.status === 'running') return { claimed: false, reason: 'held', task: current };
    return { claimed: false, reason: 'finished', task: current };
  }

  /** Extends the lease while the claim is still ours; false means the claim is lost. */
  /** Extends the lease while the claim is still ours (with the run's progress, when it has some); false means the claim is lost. */
  async renewLease(executionId: string, index: number, claimId: string, leaseExpiresAt: number, progress?: TaskProgress): Promise<boolean> {
    const done = await this.updateTask(executionId, index, {
      set: 'SET leaseExpiresAt = :lease' + (progress ? ', progress = :progress' : ''),
      condition: 'claimId = :claim AND #s = :running',
      values: { ':lease': leaseExpiresAt, ':claim': claimId, ':running': 'running', ...(progress ? { ':progress': progress } : {}) },
    });
    return done;
  }

  /**
   * An agent hands its claimed run back (it is stopping): the lease ends now, so the next delivery
   * of the message can claim the task, and the run's checkpoint (when it saved one) goes with it.
   */
  async handBack(executionId: string, index: number, claimId: string, checkpoint?: TaskCheckpoint, entry?: AttemptLogEntry): Promise<boolean> {
    const done = await this.updateTask(executionId, index, {
      set: 'SET leaseExpiresAt = :zero' + (checkpoint ? ', checkpoint = :cp' : '') + (entry ? LOG_APPEND : ''),
      condition: 'claimId = :claim AND #s = :running',
      values: { ':zero': 0, ':claim': claimId, ':running': 'running', ...(checkpoint ? { ':cp': checkpoint } : {}), ...logValues(entry) },
    });
    return done;
  }

  /** Records an agent's end of a claimed run: completed, failed (maybe retried later) or skipped. */
  async finishClaim(
    executionId: string,
    index: number,
    claimId: string,
    result: Pick<TaskRecord, 'output' | 'error' | 'cost' | 'artifacts' | 'finishedAt' | 'durationMs' | 'cachedFrom'> & {
      status: Extract<TaskStatus, 'completed' | 'failed' | 'skipped'>;
    },
  ): Promise<boolean> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':claim': claimId, ':running': 'running', ':st': result.status };
    const sets = ['#s = :st'];
    for (const [field, value] of Object.entries(result)) {
      if (field === 'status' || value === undefined) continue;
      sets.push(`#${field} = :${field}`);
      names[`#${field}`] = field;
      values[`:${field}`] = value;
    }
    // A run that ended (rather than being handed back) has no use for a checkpoint any more.
    const removes = result.status === 'completed' ? ' REMOVE #err, leaseExpiresAt, checkpoint, progress' : ' REMOVE leaseExpiresAt, checkpoint, progress';
    if (result.status === 'completed') names['#err'] = 'error';
    const done = await this.updateTask(executionId, index, {
      set: 'SET ' + sets.join(', ') + removes,
      condition: 'claimId = :claim AND #s = :running',
      names,
      values,
    });
    return done;
  }

  /** Counts a retry of the given error type and puts the task back to pending (its attempt logged). */
  async recordRetry(
    executionId: string,
    index: number,
    errorType: ErrorType,
    error: TaskRecord['error'],
    opts: {
      entry?: AttemptLogEntry;
      /** A failure of the layer's Gate step, which may come before the task left `pending`. */
      fromPending?: boolean;
    } = {},
  ): Promise<boolean> {
    const { entry } = opts;
    const done = await this.updateTask(executionId, index, {
      set: 'SET #s = :pending, retries.#t = if_not_exists(retries.#t, :zero) + :one, #err = :e' + (entry ? LOG_APPEND : ''),
      // A final failure stays final (a Recover that runs twice for one failure must not reopen it).
      condition: (opts.fromPending ? '#s IN (:queued, :running, :pending)' : '#s IN (:queued, :running)') + ' OR (#s = :failed AND attribute_not_exists(finalFailure))',
      names: { '#t': errorType, '#err': 'error' },
      values: { ':pending': 'pending', ':zero': 0, ':one': 1, ':e': error, ':queued': 'queued', ':failed': 'failed', ':running': 'running', ...logValues(entry) },
    });
    return done;
  }

  /** The task's final failure, when no retry is left (its attempt logged): `finalFailure` keeps every later run from dispatching it. */
  async failTask(executionId: string, index: number, error: NonNullable<TaskRecord['error']>, entry?: AttemptLogEntry): Promise<boolean> {
    const done = await this.updateTask(executionId, index, {
      set: 'SET #s = :failed, #err = :e, finishedAt = if_not_exists(finishedAt, :now), finalFailure = :true' + (entry ? LOG_APPEND : '') + ' REMOVE claimId, leaseExpiresAt',
      condition: '#s IN (:queued, :failed, :running, :pending)',
      names: { '#err': 'error' },
      values: { ':failed': 'failed', ':e': error, ':now': new Date().toISOString(), ':true': true, ':queued': 'queued', ':running': 'running', ':pending': 'pending', ...logValues(entry) },
    });
    return done;
  }

  /**
   * The recovery's fallback agent type takes the task: it goes back to pending on that type (Gate
   * dispatches it to that type's queue), once; `fallbackFrom` keeps the type of the plan.
   */
  async reassign(executionId: string, index: number, agentType: AgentType, error: TaskError, entry?: AttemptLogEntry): Promise<boolean> {
    return this.updateTask(executionId, index, {
      set: 'SET #s = :pending, fallbackFrom = agentType, agentType = :t, #err = :e' + (entry ? LOG_APPEND : '') + ' REMOVE claimId, leaseExpiresAt, checkpoint',
      condition: '(#s IN (:queued, :running) OR (#s = :failed AND attribute_not_exists(finalFailure))) AND attribute_not_exists(fallbackFrom)',
      names: { '#err': 'error' },
      values: { ':pending': 'pending', ':t': agentType, ':e': error, ':queued': 'queued', ':failed': 'failed', ':running': 'running', ...logValues(entry) },
    });
  }

  /**
   * The recovery's fallback ends the task without a further run: completed with its default output,
   * or skipped with a reason. `recoveredBy` keeps the failure it stands in for.
   */
  async settleByFallback(
    executionId: string,
    index: number,
    fallback: { action: 'default-output'; output: Record<string, unknown> } | { action: 'skip'; reason: string },
    error: TaskError,
    entry?: AttemptLogEntry,
  ): Promise<boolean> {
    const completed = fallback.action === 'default-output';
    return this.updateTask(executionId, index, {
      set:
        'SET #s = :st, recoveredBy = :by, finishedAt = :now' +
        (completed ? ', #out = :out' : ', skipReason = :reason') +
        (entry ? LOG_APPEND : '') +
        ' REMOVE claimId, leaseExpiresAt, checkpoint, progress' +
        (completed ? ', #err' : ''),
      condition: '#s IN (:queued, :failed, :running, :pending)',
      names: completed ? { '#out': 'output', '#err': 'error' } : {},
      values: {
        ':st': completed ? 'completed' : 'skipped',
        ':by': { action: fallback.action, error },
        ':now': new Date().toISOString(),
        ...(completed ? { ':out': { inline: fallback.output } } : { ':reason': fallback.reason }),
        ':queued': 'queued',
        ':failed': 'failed',
        ':running': 'running',
        ':pending': 'pending',
        ...logValues(entry),
      },
    });
  }

  /** An open breaker refused the task and its recovery waits for the probe: back to pending, counted. */
  async recordBreakerWait(executionId: string, index: number): Promise<boolean> {
    return this.updateTask(executionId, index, {
      set: 'SET #s = :pending, breakerWaits = if_not_exists(breakerWaits, :zero) + :one',
      condition: '#s = :queued',
      values: { ':pending': 'pending', ':queued': 'queued', ':zero': 0, ':one': 1 },
    });
  }

  /**
   * Puts back to pending a task whose workflow run or agent is gone (a resume after the layer
   * stopped): a running one loses its claim (its checkpoint, if its agent handed it back with one,
   * stays for the next attempt), a queued one gets a new dispatchSeq so that the old run's message
   * is stale. Conditional on what was read, so a task that moved on meanwhile is left alone.
   */
  async releaseTask(task: Pick<TaskRecord, 'executionId' | 'index' | 'status' | 'claimId' | 'dispatchSeq'>): Promise<boolean> {
    if (task.status === 'running') {
      return this.updateTask(task.executionId, task.index, {
        set: 'SET #s = :pending REMOVE claimId, leaseExpiresAt, progress',
        condition: task.claimId ? '#s = :running AND claimId = :claim' : '#s = :running AND attribute_not_exists(claimId)',
        values: { ':pending': 'pending', ':running': 'running', ...(task.claimId ? { ':claim': task.claimId } : {}) },
      });
    }
    if (task.status === 'queued') {
      return this.updateTask(task.executionId, task.index, {
        set: 'SET #s = :pending, dispatchSeq = dispatchSeq + :one',
        condition: '#s = :queued AND dispatchSeq = :seq',
        values: { ':pending': 'pending', ':queued': 'queued', ':one': 1, ':seq': task.dispatchSeq },
      });
    }
    return false;
  }

  /**
   * A redrive reopens a failed or skipped task: pending again with a fresh retry budget. `attempts`
   * keeps counting runs; the old error, end and skip reason go. Only a task that ended before the
   * redrive (`endedBefore`, its redrivenAt): one the redriven run has already ended again is its.
   */
  async reopenTask(executionId: string, index: number, endedBefore: string): Promise<boolean> {
    return this.updateTask(executionId, index, {
      // A task its recovery moved to a fallback agent type goes back to the plan's, with its fallback ahead again.
      set: 'SET #s = :pending, retries = :none, agentType = if_not_exists(fallbackFrom, agentType) REMOVE #err, finalFailure, finishedAt, durationMs, skipReason, claimId, leaseExpiresAt, checkpoint, progress, fallbackFrom, recoveredBy, breakerWaits, deadLetter',
      condition: '#s IN (:failed, :skipped) AND (attribute_not_exists(finishedAt) OR finishedAt < :since)',
      names: { '#err': 'error' },
      values: { ':pending': 'pending', ':none': {}, ':failed': 'failed', ':skipped': 'skipped', ':since': endedBefore },
    });
  }

  /**
   * Ends the unfinished tasks of an execution that ended otherwise (aborted, failed by its workflow):
   * waiting ones are skipped, running ones fail as cancelled. Either way their agents lose the claim
   * at the next lease renewal and kill the command.
   */
  async cancelTasks(executionId: string, reason = 'execution aborted'): Promise<number> {
    const now = new Date().toISOString();
    let cancelled = 0;
    for (const t of await this.listTasks(executionId)) {
      if (t.status === 'pending' || t.status === 'queued') {
        if (await this.skipTask(executionId, t.index, reason)) cancelled++;
      } else if (t.status === 'running') {
        const done = await this.updateTask(executionId, t.index, {
          set: 'SET #s = :failed, #err = :e, finishedAt = :now, finalFailure = :true REMOVE claimId, leaseExpiresAt',
          condition: '#s = :running',
          names: { '#err': 'error' },
          values: { ':failed': 'failed', ':e': { type: 'permanent', message: `cancelled: ${reason}` }, ':now': now, ':true': true, ':running': 'running' },
        });
        if (done) cancelled++;
      }
    }
    return cancelled;
  }

  /**
   * The dead-letter sweep's right to fail a dispatch (core/dead-letters.ts): the task still waits for
   * that dispatch (same dispatchSeq; queued, or running under a lease that ran out) and no sweep has
   * marked it for that dispatch yet. Of two sweeps that race, one wins.
   */
  async markDeadLettered(executionId: string, index: number, mark: DeadLetterMark, now: number): Promise<boolean> {
    return this.updateTask(executionId, index, {
      set: 'SET deadLetter = :mark',
      condition:
        'dispatchSeq = :seq AND (#s = :queued OR (#s = :running AND (attribute_not_exists(leaseExpiresAt) OR leaseExpiresAt < :now))) ' +
        'AND (attribute_not_exists(deadLetter) OR deadLetter.dispatchSeq <> :seq)',
      values: { ':mark': mark, ':seq': mark.dispatchSeq, ':queued': 'queued', ':running': 'running', ':now': now },
    });
  }

  /** Takes a mark back (its report did not reach Step Functions), so that the next sweep retries. */
  async unmarkDeadLettered(executionId: string, index: number, mark: DeadLetterMark): Promise<boolean> {
    return this.updateTask(executionId, index, {
      set: 'REMOVE deadLetter',
      condition: 'attribute_exists(#s) AND deadLetter.dispatchSeq = :seq AND deadLetter.#at = :at',
      names: { '#at': 'at' },
      values: { ':seq': mark.dispatchSeq, ':at': mark.at },
    });
  }
}

const PAGE_KEYS = ['pk', 'sk', 'gsi1pk', 'gsi1sk'];

/**
 * The start key a list page's nextToken holds. Anything else is refused: read as "from the start",
 * a corrupted token would send a client that follows nextToken round the first pages for ever.
 */
function decodePageToken(token: string): Record<string, string> {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    key = undefined;
  }
  const entries = key && typeof key === 'object' && !Array.isArray(key) ? Object.entries(key) : [];
  const valid = entries.length > 0 && entries.every(([k, v]) => PAGE_KEYS.includes(k) && typeof v === 'string') && (key as Record<string, string>).gsi1pk === 'EXEC';
  if (!valid) throw new ValidationError('nextToken is not one this API gave: pass a page\'s nextToken unchanged', [{ path: '/nextToken', message: 'not a page token' }]);
  return key as Record<string, string>;
}

/** The condition that workflow run `run` is the execution's current one (no `workflowRun` is run 0). */
function currentRunCondition(run: number): string {
  return run === 0 ? '(attribute_not_exists(workflowRun) OR workflowRun = :run)' : 'workflowRun = :run';
}
