// 50 concurrent callers at half-open, of which exactly one probes: against the shared layer's own
// breakers table (its DynamoDB from endpoint.json), 50 CircuitBreaker instances, each with its own
// client as each Lambda and agent has, admit one key at once after its cooldown. Exactly one must be
// admitted, as the probe, and the record must name it; GET /breakers shows the key half-open, and
// POST /breakers/{key}/reset closes it for the next trial. The instances share a fake clock (time is
// the subject): the cooldown is over when the case says so, with no wait.
//   lost:    a trial in which nobody took the probe (the breaker would stay half-open, refusing all);
//   doubled: a trial in which more than one caller was admitted (the probe is no longer one).
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoBreakerStore } from '#core/aws/breaker-store.ts';
import { CircuitBreaker, agentBreakerKey } from '#core/breakers.ts';
import type { LayerEvent } from '#core/events.ts';
import { LOCAL_REGION } from '../../../local/template.ts';
import type { Layer } from '../../e2e/harness.ts';
import { emptyTally } from '../account.ts';
import { type ReliabilityCase, eachTrial } from '../suite.ts';

const TYPE = 'notification';
const KEY = agentBreakerKey(TYPE);
const CALLERS = 50;
const POLICY = { failureThreshold: 1, cooldownSeconds: 30, maxCooldownSeconds: 30, probeTimeoutSeconds: 900 };

/**
 * The breakers table of `layer`. Its name is the template's logical id (the stack sets no TableName:
 * local/template.ts localNames), so it is found by listing the layer's tables.
 */
async function breakersTable(client: DynamoDBClient): Promise<string> {
  const names = (await client.send(new ListTablesCommand({}))).TableNames ?? [];
  const found = names.filter((n) => /breaker/i.test(n));
  if (found.length !== 1) throw new Error(`expected one breakers table on the layer's DynamoDB, found [${found.join(', ')}] among [${names.join(', ')}]`);
  return found[0]!;
}

function client(layer: Layer): DynamoDBClient {
  const endpoint = layer.endpoint.services?.dynamodb;
  if (!endpoint) throw new Error('endpoint.json lists no dynamodb endpoint');
  return new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
}

async function viewOf(layer: Layer): Promise<any> {
  const res = await layer.request('GET', '/breakers');
  if (res.status !== 200) throw new Error(`GET /breakers: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.items.find((b: any) => b.key === KEY);
}

export const halfOpenRace: ReliabilityCase = {
  name: 'half-open-race',
  cheap: true,
  // The key is this type's; no task of it runs.
  agentType: TYPE,
  trials: (mode) => (mode === 'full' ? 200 : 20),
  async run(ctx) {
    const table = await breakersTable(client(ctx.layer));
    let now = Date.now();
    const events: LayerEvent[] = [];
    const member = () =>
      new CircuitBreaker(new DynamoBreakerStore(DynamoDBDocumentClient.from(client(ctx.layer)), table), {
        policy: POLICY,
        clock: () => now,
        closedCacheMs: 0,
        events: { emit: async (e) => void events.push(e) },
      });
    const opener = member();
    const checker = new DynamoBreakerStore(DynamoDBDocumentClient.from(client(ctx.layer)), table);
    const fleet = Array.from({ length: CALLERS }, member);
    let contended = 0;
    const total = await eachTrial(ctx, async (trial) => {
      const tally = { ...emptyTally(), tasks: 1 };
      const where = `trial ${trial}`;
      now = Date.now();
      await opener.recordFailure(KEY);
      const opened = await viewOf(ctx.layer);
      if (opened?.state !== 'open') throw new Error(`${where}: ${KEY} is ${JSON.stringify(opened)} after a failure at threshold 1, expected open`);

      now += POLICY.cooldownSeconds * 1000;
      const before = events.length;
      const admissions = await Promise.all(fleet.map((b, i) => b.admit(KEY, `t${trial}-caller${i}`)));
      const admitted = admissions.flatMap((a, i) => (a.allowed ? [i] : []));
      const probes = admissions.flatMap((a, i) => (a.allowed && a.probe ? [i] : []));
      contended += admissions.filter((a) => !a.allowed && a.reason.includes('contended')).length;
      if (probes.length === 0) {
        tally.lost++;
        tally.failures.push(`${where}: none of ${CALLERS} callers took the probe (${admitted.length} admitted)`);
      }
      if (admitted.length > 1) {
        tally.doubled++;
        tally.failures.push(`${where}: ${admitted.length} callers admitted at half-open (${probes.length} as the probe), expected exactly one`);
      }
      const stored = await checker.get(KEY);
      if (probes.length === 1 && stored?.probeId !== `t${trial}-caller${probes[0]}`) tally.failures.push(`${where}: the record's probe is ${stored?.probeId}, the admitted caller was t${trial}-caller${probes[0]}`);
      const halfOpenEvents = events.slice(before).filter((e) => e.kind === 'breaker.half-open').length;
      if (halfOpenEvents !== 1) tally.failures.push(`${where}: ${halfOpenEvents} breaker.half-open events, expected one`);
      // What a user sees: the layer's own answer.
      const seen = await viewOf(ctx.layer);
      if (seen?.state !== 'half-open') tally.failures.push(`${where}: GET /breakers shows ${KEY} as ${JSON.stringify(seen)}, expected half-open`);

      const reset = await ctx.layer.request('POST', `/breakers/${KEY}/reset`);
      if (reset.status !== 200) throw new Error(`POST /breakers/${KEY}/reset: ${reset.status} ${JSON.stringify(reset.body)}`);
      const after = await viewOf(ctx.layer);
      if (after?.state !== 'closed') tally.failures.push(`${where}: after the reset GET /breakers shows ${JSON.stringify(after)}, expected closed`);
      return tally;
    });
    return { ...total, notes: `${CALLERS} callers, own clients, on the layer's table ${table}; ${contended} refusals after losing 5 write races in a row` };
  },
};
