// The three DynamoDB tables of docs/design.md: executions (and their task records), agents, breakers.
import { CfnResource, RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { AgentType } from '../../core/agent-types.ts';
import { agentBreakerKey } from '../../core/breakers.ts';

/** The dependencies' breaker keys (`dependency:git:<host>`, `dependency:model-api`: core/breakers.ts). */
export const DEPENDENCY_BREAKER_KEYS = 'dependency:*';

const S = dynamodb.AttributeType.STRING;

function table(
  scope: Construct,
  logicalId: string,
  gsi?: { indexName: string },
  timeToLiveAttribute?: string,
): dynamodb.Table {
  const t = new dynamodb.Table(scope, logicalId, {
    partitionKey: { name: 'pk', type: S },
    sortKey: gsi ? { name: 'sk', type: S } : undefined,
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    encryption: dynamodb.TableEncryption.AWS_MANAGED,
    removalPolicy: RemovalPolicy.RETAIN,
    deletionProtection: false,
    ...(timeToLiveAttribute ? { timeToLiveAttribute } : {}),
  });
  if (gsi) {
    t.addGlobalSecondaryIndex({
      indexName: gsi.indexName,
      partitionKey: { name: 'gsi1pk', type: S },
      sortKey: { name: 'gsi1sk', type: S },
      projectionType: dynamodb.ProjectionType.ALL,
    });
  }
  // The names of docs/design.md ("AWS" column) are the template's logical ids, so the local layer
  // and readers of the template find them without a lookup table.
  (t.node.defaultChild as CfnResource).overrideLogicalId(logicalId);
  return t;
}

export class Tables extends Construct {
  /** `X#<executionId>`/`META`, `X#<executionId>`/`T#<index>`, `N#<name>`/`NAME`, `C#<cache key>`/`RESULT`; GSI `byStart`. */
  readonly executions: dynamodb.Table;
  /** Agent state, heartbeat and health; GSI `byType`. */
  readonly agents: dynamodb.Table;
  /** Circuit breakers, one item per key. */
  readonly breakers: dynamodb.Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    // `expiresAt` (epoch seconds) is set on result-cache entries only (core/result-cache.ts): DynamoDB
    // deletes them some time after, and every read checks expiry itself.
    this.executions = table(this, 'ExecutionsTable', { indexName: 'byStart' }, 'expiresAt');
    this.agents = table(this, 'AgentsTable', { indexName: 'byType' });
    this.breakers = table(this, 'BreakersTable');
  }

  /** The environment variables that name the tables (docs/design.md, "Names"). */
  get environment(): Record<string, string> {
    return {
      XL_TABLE_EXECUTIONS: this.executions.tableName,
      XL_TABLE_AGENTS: this.agents.tableName,
      XL_TABLE_BREAKERS: this.breakers.tableName,
    };
  }

  /** Read/write on all three tables and their indexes. */
  grantReadWriteAll(grantee: iam.IGrantable): void {
    for (const t of [this.executions, this.agents, this.breakers]) t.grantReadWriteData(grantee);
  }

  /**
   * What an agent's worker does to the tables (agent/worker.ts through core/aws/*-store.ts), and no
   * more: on the executions table it reads and updates execution and task items (`X#<executionId>`,
   * never the name reservations `N#...`), on the agents table it writes its own record (`A#<agentId>`,
   * never the pool records `P#<type>`), on the breakers table it reads and writes its own type's
   * breaker and the dependencies' (`agent:<type>`, `dependency:...`). dynamodb:LeadingKeys holds the
   * item's partition key; ForAllValues is vacuously true for requests without one (Scan, and the
   * batch and index calls this grant leaves out), so only single-item calls and base-table Query are
   * granted. The agent id is the ECS task id, which does not name the type: `A#*` is as narrow as the
   * key allows. (DynamoDB Developer Guide, "Using IAM policy conditions for fine-grained access control".)
   */
  grantAgentAccess(grantee: iam.IGrantable, agentType: AgentType): void {
    const grant = (sid: string, table: dynamodb.Table, actions: string[], leadingKeys: string[]) =>
      grantee.grantPrincipal.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid,
          actions,
          resources: [table.tableArn],
          conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': leadingKeys } },
        }),
      );
    grant('ExecutionAndTaskItems', this.executions, ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'], ['X#*']);
    // The result cache (core/result-cache.ts): an agent looks entries up and writes its completed runs'.
    grant('ResultCacheEntries', this.executions, ['dynamodb:GetItem', 'dynamodb:PutItem'], ['C#*']);
    grant('OwnAgentItem', this.agents, ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], ['A#*']);
    grant('OwnBreakers', this.breakers, ['dynamodb:GetItem', 'dynamodb:PutItem'], [agentBreakerKey(agentType), DEPENDENCY_BREAKER_KEYS]);
  }
}
