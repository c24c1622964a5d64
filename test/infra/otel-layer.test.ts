// The opt-in OpenTelemetry layer (`-c otelLayerArn=...`): every function of the layer runs under it,
// through Lambda's exec wrapper, or none does; active tracing is on either way. A malformed ARN
// fails the synth, naming the key.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { testApp } from '../support/cdk-app.ts';
import { OTEL_EXEC_WRAPPER } from '../../infra/constructs/functions.ts';
import { ExecutionLayerStack, type ExecutionLayerStackProps } from '../../infra/stack.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
// A layer version ARN of the right shape (the account and name are made up: nothing is looked up).
const LAYER = 'arn:aws:lambda:eu-west-1:123456789012:layer:AWSOpenTelemetryDistroJs:8';

// Template JSON is read loosely; the assertions check its shape.
type Loose = any;

function synth(props: ExecutionLayerStackProps = {}, context: Record<string, unknown> = {}): Loose {
  const { context: cdkContext } = JSON.parse(readFileSync(`${ROOT}cdk.json`, 'utf8'));
  // No bundling: the functions' code is not what these tests read.
  const app = testApp({ context: { ...cdkContext, ...context, 'aws:cdk:bundling-stacks': [] } });
  return Template.fromStack(new ExecutionLayerStack(app, 'xl', props)).toJSON();
}

/** The layer's own functions (by their `xl:entry` metadata), by logical id. */
const layerFunctions = (template: Loose): [string, Loose][] =>
  Object.entries(template.Resources as Record<string, Loose>).filter(([, r]) => r.Type === 'AWS::Lambda::Function' && r.Metadata?.['xl:entry']);

let plain: Loose;
let withLayer: Loose;
beforeAll(() => {
  plain = synth();
  // As `cdk deploy -c otelLayerArn=...` gives it.
  withLayer = synth({}, { otelLayerArn: LAYER });
});

describe('with otelLayerArn', () => {
  it('every function runs under the layer, through the exec wrapper, with active tracing', () => {
    const fns = layerFunctions(withLayer);
    expect(fns.length).toBe(8);
    for (const [id, fn] of fns) {
      expect(fn.Properties.Layers, id).toEqual([LAYER]);
      expect(fn.Properties.Environment.Variables.AWS_LAMBDA_EXEC_WRAPPER, id).toBe(OTEL_EXEC_WRAPPER);
      expect(fn.Properties.TracingConfig, id).toEqual({ Mode: 'Active' });
    }
  });

  it('is read from the stack prop as well as the context', () => {
    const fns = layerFunctions(synth({ otelLayerArn: LAYER }));
    expect(fns.map(([, fn]) => fn.Properties.Layers)).toEqual(fns.map(() => [LAYER]));
  });
});

describe('without it', () => {
  it('no function has a layer or an exec wrapper, and tracing is still active', () => {
    const fns = layerFunctions(plain);
    expect(fns.length).toBe(8);
    for (const [id, fn] of fns) {
      expect(fn.Properties.Layers, id).toBeUndefined();
      expect(fn.Properties.Environment.Variables.AWS_LAMBDA_EXEC_WRAPPER, id).toBeUndefined();
      expect(fn.Properties.TracingConfig, id).toEqual({ Mode: 'Active' });
    }
  });
});

describe('a malformed otelLayerArn', () => {
  it.each([
    ['a layer without its version', 'arn:aws:lambda:eu-west-1:123456789012:layer:AWSOpenTelemetryDistroJs'],
    ['a function ARN', 'arn:aws:lambda:eu-west-1:123456789012:function:xl-steps'],
    ['a layer name', 'AWSOpenTelemetryDistroJs'],
    ['a short account', 'arn:aws:lambda:eu-west-1:1234:layer:otel:1'],
  ])('fails the synth naming the key: %s', (_, arn) => {
    expect(() => synth({}, { otelLayerArn: arn })).toThrow(`otelLayerArn must be a Lambda layer version ARN (arn:<partition>:lambda:<region>:<account>:layer:<name>:<version>), got "${arn}"`);
  });

  it('fails the synth for a value that is not text', () => {
    expect(() => synth({}, { otelLayerArn: true })).toThrow('otelLayerArn must be a Lambda layer version ARN');
  });
});
