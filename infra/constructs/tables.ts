// The three DynamoDB tables of docs/design.md: executions (and their task records), agents, breakers.
import { CfnResource, RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

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
}
