// Agent records and pool bounds in the agents table (pk/sk strings; GSI byType).
import { BatchGetCommand, type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand, paginateQuery, paginateScan } from '@aws-sdk/lib-dynamodb';
import { AGENT_TYPES, type AgentType, defaultPoolBounds } from '../agent-types.ts';
import type { AgentRecord, AgentStatus, ArrivalEstimate, PoolBounds } from '../records.ts';
import { conditional, conditionalResult, strip } from './ddb.ts';

const agentKey = (agentId: string) => ({ pk: `A#${agentId}`, sk: 'AGENT' });
const poolKey = (type: AgentType) => ({ pk: `P#${type}`, sk: 'POOL' });
const estimateKey = (type: AgentType) => ({ pk: `P#${type}`, sk: 'ESTIMATE' });


export class AgentStore {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async put(agent: AgentRecord): Promise<void> {
    await this.ddb.send(
      new PutCommand({
        TableName: this.table,
        Item: { ...agentKey(agent.agentId), gsi1pk: `T#${agent.agentType}`, gsi1sk: agent.agentId, ...agent },
      }),
    );
  }

  async get(agentId: string): Promise<AgentRecord | undefined> {
    const res = await this.ddb.send(new GetCommand({ TableName: this.table, Key: agentKey(agentId), ConsistentRead: true }));
    return res.Item ? strip<AgentRecord>(res.Item) : undefined;
  }

  /** A heartbeat: status, current task and metrics. Never revives a terminated agent. */
  async heartbeat(
    agentId: string,
    fields: Partial<Pick<AgentRecord, 'status' | 'currentTaskId' | 'health' | 'tasksCompleted' | 'tasksFailed' | 'idleSince' | 'preemptible' | 'running'>>,
  ): Promise<AgentRecord | undefined> {
    const names: Record<string, string> = { '#s': 'status' };
    // A working agent's idle/busy must not undo what the layer decided (unhealthy: to be replaced;
    // draining: to stop): then the write fails and the agent reads its record instead.
    const working = fields.status === 'idle' || fields.status === 'busy';
    const values: Record<string, unknown> = {
      ':now': new Date().toISOString(),
      ':terminated': 'terminated',
      ...(working ? { ':unhealthy': 'unhealthy', ':draining': 'draining' } : {}),
    };
    const sets = ['lastHeartbeatAt = :now'];
    const removes: string[] = [];
    for (const [k, v] of Object.entries(fields)) {
      names[`#${k}`] = k;
      if (v === undefined) removes.push(`#${k}`);
      else {
        sets.push(`#${k} = :${k}`);
        values[`:${k}`] = v;
      }
    }
    if (!('currentTaskId' in fields)) delete names['#currentTaskId'];
    const res = await conditionalResult(() =>
      this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: agentKey(agentId),
          UpdateExpression: 'SET ' + sets.join(', ') + (removes.length ? ' REMOVE ' + removes.join(', ') : ''),
          ConditionExpression: working ? 'attribute_exists(pk) AND NOT (#s IN (:terminated, :unhealthy, :draining))' : 'attribute_exists(pk) AND #s <> :terminated',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          // The record comes back: it carries the layer's requests to the agent (yieldRequestedAt).
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    return res?.Attributes && strip<AgentRecord>(res.Attributes);
  }

  /** Asks a busy agent to yield its low-priority runs; false when it is not busy any more. */
  async requestYield(agentId: string, at: string): Promise<boolean> {
    return this.updateAgent(agentId, 'SET yieldRequestedAt = :at', '#s = :busy', { ':at': at, ':busy': 'busy' });
  }

  /** The affinity keys of the agent's last runs (core/affinity.ts), and how many tasks it runs now. */
  async setRecentKeys(agentId: string, recentKeys: string[], running: number): Promise<boolean> {
    return this.updateAgent(agentId, 'SET recentKeys = :k, running = :r', '#s <> :terminated', { ':k': recentKeys, ':r': running, ':terminated': 'terminated' });
  }

  /** The agent has yielded (or had nothing to yield). */
  async clearYield(agentId: string): Promise<boolean> {
    return this.updateAgent(agentId, 'REMOVE yieldRequestedAt', 'attribute_exists(yieldRequestedAt)', {});
  }

  /** A conditional update of an agent's item (it must exist); false when the condition failed. */
  private updateAgent(agentId: string, update: string, condition: string | undefined, values: Record<string, unknown>): Promise<boolean> {
    const usesStatus = update.includes('#s') || condition?.includes('#s');
    return conditional(() =>
      this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: agentKey(agentId),
          UpdateExpression: update,
          ConditionExpression: condition ? `attribute_exists(pk) AND ${condition}` : 'attribute_exists(pk)',
          ...(usesStatus ? { ExpressionAttributeNames: { '#s': 'status' } } : {}),
          ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
        }),
      ),
    );
  }

  /** Sets the status (only from `from`, when given), with why when the layer decided it. */
  async setStatus(agentId: string, status: AgentStatus, opts: { from?: AgentStatus[]; reason?: string } = {}): Promise<boolean> {
    const values: Record<string, unknown> = { ':s': status, ...(opts.reason ? { ':r': opts.reason } : {}) };
    opts.from?.forEach((s, i) => (values[`:f${i}`] = s));
    const update = opts.reason ? 'SET #s = :s, statusReason = :r' : 'SET #s = :s';
    return this.updateAgent(agentId, update, opts.from && `#s IN (${opts.from.map((_, i) => `:f${i}`).join(', ')})`, values);
  }

  /** Health checks in a row that found the agent unhealthy (0 resets); false once the agent is gone. */
  async setHealthStrikes(agentId: string, strikes: number): Promise<boolean> {
    return this.updateAgent(agentId, 'SET healthStrikes = :n', '#s <> :terminated', { ':n': strikes, ':terminated': 'terminated' });
  }

  async list(type?: AgentType): Promise<AgentRecord[]> {
    const out: AgentRecord[] = [];
    if (type) {
      const pages = paginateQuery(
        { client: this.ddb },
        { TableName: this.table, IndexName: 'byType', KeyConditionExpression: 'gsi1pk = :t', ExpressionAttributeValues: { ':t': `T#${type}` } },
      );
      for await (const page of pages) out.push(...(page.Items ?? []).map((i) => strip<AgentRecord>(i)));
    } else {
      const pages = paginateScan(
        { client: this.ddb },
        { TableName: this.table, FilterExpression: 'sk = :a', ExpressionAttributeValues: { ':a': 'AGENT' } },
      );
      for await (const page of pages) out.push(...(page.Items ?? []).map((i) => strip<AgentRecord>(i)));
    }
    return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  }

  /** Pool bounds per type: stored rows over the defaults given (XL_POOL locally, env on AWS). */
  async poolBounds(defaults: Partial<Record<AgentType, { min: number; max: number }>> = {}): Promise<PoolBounds[]> {
    const stored = new Map<string, PoolBounds>();
    const pages = paginateScan(
      { client: this.ddb },
      { TableName: this.table, FilterExpression: 'sk = :p', ExpressionAttributeValues: { ':p': 'POOL' } },
    );
    for await (const page of pages) for (const i of page.Items ?? []) stored.set(i.agentType, strip<PoolBounds>(i));
    return AGENT_TYPES.map(
      (agentType) => stored.get(agentType) ?? { agentType, ...(defaults[agentType] ?? defaultPoolBounds(agentType)) },
    );
  }

  async setPoolBounds(bounds: PoolBounds): Promise<void> {
    await this.ddb.send(new PutCommand({ TableName: this.table, Item: { ...poolKey(bounds.agentType), ...bounds } }));
  }

  /** The pool manager's arrival estimates, one item per type beside its bounds (one BatchGetItem). */
  async poolEstimates(): Promise<Partial<Record<AgentType, ArrivalEstimate>>> {
    const res = await this.ddb.send(new BatchGetCommand({ RequestItems: { [this.table]: { Keys: AGENT_TYPES.map(estimateKey) } } }));
    // BatchGetItem may leave keys unprocessed under load: those types start again from no estimate.
    const out: Partial<Record<AgentType, ArrivalEstimate>> = {};
    for (const item of res.Responses?.[this.table] ?? []) {
      const { at, seen, ratePerSecond, finished, inFlight, busySeconds, completions } = item;
      // The counts behind the mean task duration: only when the pool weighs starts (startSeconds).
      const work = Object.fromEntries(Object.entries({ finished, inFlight, busySeconds, completions }).filter(([, v]) => typeof v === 'number'));
      out[item.agentType as AgentType] = { at, seen, ratePerSecond, ...work };
    }
    return out;
  }

  /** Written by the pool manager each round; only it writes these, so no condition. */
  async putPoolEstimate(agentType: AgentType, estimate: ArrivalEstimate): Promise<void> {
    await this.ddb.send(new PutCommand({ TableName: this.table, Item: { ...estimateKey(agentType), agentType, ...estimate } }));
  }
}
