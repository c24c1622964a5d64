// cdk-nag AwsSolutions: every finding on the stack is fixed or acknowledged, with a reason, on the
// construct that owns it; and every acknowledgment still answers a real finding.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { testApp } from '../support/cdk-app.ts';
import { type NagAcknowledgment, acknowledgeNagFindings, addNagChecks } from '../../infra/nag.ts';
import { ExecutionLayerStack } from '../../infra/stack.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const { context } = JSON.parse(readFileSync(`${ROOT}cdk.json`, 'utf8'));

interface Finding {
  rule: string;
  severity: string;
  path: string;
}

function findings(app: App): Finding[] {
  const report = new AwsSolutionsChecks(app).validateScope(app);
  return report.violations.flatMap((v) =>
    v.violatingResources.map((r) => ({ rule: v.ruleName, severity: v.severity ?? '', path: (r as { constructPath?: string }).constructPath ?? '' })),
  );
}

let stack: ExecutionLayerStack;
let acknowledged: NagAcknowledgment[];
let synthError: unknown;
let open: Finding[];
let raw: Finding[];

beforeAll(() => {
  // As `cdk synth` runs it: the pack is a validation plugin, acknowledgments on the constructs.
  const app = testApp({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  stack = new ExecutionLayerStack(app, 'xl');
  addNagChecks(app);
  acknowledged = acknowledgeNagFindings(stack);
  try {
    app.synth();
  } catch (err) {
    synthError = err;
  }
  open = findings(app);

  // The same stack with nothing acknowledged: what the acknowledgments answer.
  const bare = testApp({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  new ExecutionLayerStack(bare, 'xl');
  bare.synth();
  raw = findings(bare);
});

describe('cdk-nag AwsSolutions', () => {
  it('leaves no unacknowledged error or warning', () => {
    expect(open.map((f) => `${f.severity} ${f.rule} at ${f.path}`)).toEqual([]);
  });

  it('lets the app synthesize with the checks registered', () => {
    expect(synthError).toBeUndefined();
  });

  it('acknowledges each finding with a reason, never a whole rule for the whole stack', () => {
    expect(acknowledged.length).toBeGreaterThan(0);
    for (const a of acknowledged) {
      expect(a.reason.length, a.id).toBeGreaterThan(40);
      expect(a.path, a.id).not.toBe('xl');
      // Rules that report several findings per resource are acknowledged one finding at a time.
      if (/^AwsSolutions-IAM[45]/.test(a.id)) expect(a.id).toMatch(/\[.+\]$/);
    }
  });

  it('every acknowledgment answers a finding of the unacknowledged stack', () => {
    const stale = acknowledged.filter(
      (a) => !raw.some((f) => f.rule === a.id && (f.path === a.path || f.path.startsWith(`${a.path}/`))),
    );
    expect(stale.map((a) => `${a.id} at ${a.path}`)).toEqual([]);
  });
});
