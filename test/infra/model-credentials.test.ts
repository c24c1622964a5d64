// Model credentials and the agents' network in the template: Bedrock through the task role by
// default, or an Anthropic API key secret injected as an ECS secret; repository credentials under
// a prefix; HTTPS-only egress. With cdk-nag, both configurations leave no open finding.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { testApp } from '../support/cdk-app.ts';
import { AGENT_TYPES } from '../../core/agent-types.ts';
import { acknowledgeNagFindings } from '../../infra/nag.ts';
import { ExecutionLayerStack, type ExecutionLayerStackProps } from '../../infra/stack.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const { context } = JSON.parse(readFileSync(`${ROOT}cdk.json`, 'utf8'));

// Template JSON is read loosely; the assertions check its shape.
type Loose = any;

interface Synth {
  template: Loose;
  openFindings: string[];
}

function synth(props: ExecutionLayerStackProps = {}): Synth {
  const app = testApp({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  const stack = new ExecutionLayerStack(app, 'xl', props);
  acknowledgeNagFindings(stack);
  const template = Template.fromStack(stack).toJSON();
  const report = new AwsSolutionsChecks(app).validateScope(app);
  const openFindings = report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${(r as { constructPath?: string }).constructPath}`));
  return { template, openFindings };
}

const resourcesOf = (t: Loose, type: string): [string, Loose][] => Object.entries(t.Resources).filter(([, r]: [string, Loose]) => r.Type === type) as [string, Loose][];
const containers = (t: Loose) => resourcesOf(t, 'AWS::ECS::TaskDefinition').map(([, td]) => td.Properties.ContainerDefinitions[0]);
const envOf = (c: Loose): Record<string, unknown> => Object.fromEntries((c.Environment ?? []).map((e: Loose) => [e.Name, e.Value]));
/** The statements of the policies attached to a role (by logical id). */
function statementsOf(t: Loose, roleId: string): Loose[] {
  return resourcesOf(t, 'AWS::IAM::Policy')
    .filter(([, p]) => p.Properties.Roles.some((r: Loose) => r.Ref === roleId))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
}
const withAction = (statements: Loose[], action: string) => statements.filter((s) => [s.Action].flat().includes(action));
const taskRoleIds = (t: Loose) => resourcesOf(t, 'AWS::ECS::TaskDefinition').map(([, td]) => td.Properties.TaskRoleArn['Fn::GetAtt'][0] as string);
const executionRoleId = (t: Loose) => resourcesOf(t, 'AWS::ECS::TaskDefinition')[0]![1].Properties.ExecutionRoleArn['Fn::GetAtt'][0] as string;
const text = (v: unknown) => JSON.stringify(v);

let bedrock: Synth;
let apiKey: Synth;
beforeAll(() => {
  bedrock = synth();
  apiKey = synth({ anthropicApiKeySecretName: 'xl/anthropic-api-key', credentialsSecretPrefix: 'team-a/' });
});

describe('without an API key secret: Bedrock through the task role', () => {
  it('switches every worker to Bedrock and injects no secret', () => {
    expect(containers(bedrock.template)).toHaveLength(AGENT_TYPES.length);
    for (const c of containers(bedrock.template)) {
      expect(envOf(c).XL_MODEL_ACCESS).toBe('bedrock');
      expect(c.Secrets).toBeUndefined();
      expect(Object.keys(envOf(c)).filter((k) => /KEY|SECRET|TOKEN/.test(k))).toEqual([]);
    }
  });

  it('lets each task role invoke Anthropic models on Bedrock and count their tokens, and nothing else of Bedrock', () => {
    for (const role of taskRoleIds(bedrock.template)) {
      const statements = statementsOf(bedrock.template, role);
      const invoke = withAction(statements, 'bedrock:InvokeModelWithResponseStream');
      expect(invoke).toHaveLength(1);
      expect([invoke[0].Action].flat().sort()).toEqual(['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream']);
      const resources = [invoke[0].Resource].flat().map(text).sort();
      expect(resources).toHaveLength(2);
      expect(resources.filter((r) => r.includes(':bedrock:*::foundation-model/anthropic.*'))).toHaveLength(1);
      expect(resources.filter((r) => r.includes(':inference-profile/*anthropic.*'))).toHaveLength(1);
      // The model proxy forwards the CLI's count-tokens requests; CountTokens takes a foundation model.
      const count = withAction(statements, 'bedrock:CountTokens');
      expect(count).toHaveLength(1);
      expect([count[0].Action].flat()).toEqual(['bedrock:CountTokens']);
      expect(text(count[0].Resource)).toContain(':bedrock:*::foundation-model/anthropic.*');
      expect(text(count[0].Resource)).not.toContain('inference-profile');
      expect(statements.flatMap((s) => [s.Action].flat()).filter((a: string) => a.startsWith('bedrock:'))).toHaveLength(3);
    }
  });

  it('leaves no open cdk-nag finding', () => {
    expect(bedrock.openFindings).toEqual([]);
  });
});

describe('with an API key secret', () => {
  it('injects the key into the worker container as an ECS secret, never as plain environment', () => {
    for (const c of containers(apiKey.template)) {
      expect(c.Secrets).toHaveLength(1);
      expect(c.Secrets[0].Name).toBe('ANTHROPIC_API_KEY');
      expect(text(c.Secrets[0].ValueFrom)).toContain(':secret:xl/anthropic-api-key');
      expect(envOf(c).ANTHROPIC_API_KEY).toBeUndefined();
      expect(envOf(c).XL_MODEL_ACCESS).toBe('api-key');
    }
  });

  it('lets the execution role (which injects it) read that secret, and the task roles no Bedrock', () => {
    const reads = withAction(statementsOf(apiKey.template, executionRoleId(apiKey.template)), 'secretsmanager:GetSecretValue');
    expect(reads).toHaveLength(1);
    expect(text(reads[0].Resource)).toContain(':secret:xl/anthropic-api-key-??????');
    for (const role of taskRoleIds(apiKey.template)) {
      expect(text(statementsOf(apiKey.template, role))).not.toContain('bedrock:');
    }
  });

  it('leaves no open cdk-nag finding', () => {
    expect(apiKey.openFindings).toEqual([]);
  });
});

describe('repository credentials and egress', () => {
  it('lets each task role read only the secrets under the configured prefix (default xl/)', () => {
    for (const [synthed, prefix] of [[bedrock, 'xl/'], [apiKey, 'team-a/']] as const) {
      for (const role of taskRoleIds(synthed.template)) {
        const reads = withAction(statementsOf(synthed.template, role), 'secretsmanager:GetSecretValue');
        expect(reads).toHaveLength(1);
        expect([reads[0].Action].flat()).toEqual(['secretsmanager:GetSecretValue']);
        expect(text(reads[0].Resource)).toMatch(new RegExp(`:secretsmanager:.*:secret:${prefix}\\*"`));
      }
    }
  });

  it('lets agents out on HTTPS (443) only, and nothing in', () => {
    for (const synthed of [bedrock, apiKey]) {
      const groups = resourcesOf(synthed.template, 'AWS::EC2::SecurityGroup').filter(([id]) => id.includes('AgentSecurityGroup'));
      expect(groups).toHaveLength(1);
      expect(groups[0]![1].Properties.SecurityGroupEgress).toEqual([
        { CidrIp: '0.0.0.0/0', Description: 'HTTPS', FromPort: 443, IpProtocol: 'tcp', ToPort: 443 },
      ]);
      expect(groups[0]![1].Properties.SecurityGroupIngress).toBeUndefined();
      expect(resourcesOf(synthed.template, 'AWS::EC2::SecurityGroupEgress')).toEqual([]);
      expect(resourcesOf(synthed.template, 'AWS::EC2::SecurityGroupIngress')).toEqual([]);
    }
  });
});
