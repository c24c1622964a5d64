// Synthesizes the CDK app into a folder and prints the template's path. The local layer runs this
// in a child process: aws-cdk-lib is large, and the process that spawns workers should stay small.
import { App } from 'aws-cdk-lib';
import { join } from 'node:path';
import { ExecutionLayerStack } from '../infra/stack.ts';

const outdir = process.argv[2];
if (!outdir) throw new Error('usage: synth.ts <outdir>');
const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
const stack = new ExecutionLayerStack(app, 'xl');
app.synth();
process.stdout.write(join(outdir, stack.templateFile) + '\n');
