// Synthesizes the CDK app into a folder and prints the template's path. The local layer runs this
// in a child process: aws-cdk-lib is large, and the process that spawns workers should stay small.
import { App } from 'aws-cdk-lib';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ExecutionLayerStack } from '../infra/stack.ts';

const outdir = process.argv[2];
if (!outdir) throw new Error('usage: synth.ts <outdir>');
// The same feature flags as `cdk synth` (cdk.json), so the local template is the deployed one.
const cdkJson = JSON.parse(readFileSync(resolve(import.meta.dirname, '../cdk.json'), 'utf8')) as { context?: object };
// Bundling is skipped: the local layer imports the handler modules themselves.
const app = new App({ outdir, context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [] } });
const stack = new ExecutionLayerStack(app, 'xl');
app.synth();
process.stdout.write(join(outdir, stack.templateFile) + '\n');
