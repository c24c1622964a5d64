// `npm run deploy [-- -c alarmEmail=... -c stackName=... --profile ... <cdk deploy options>]`: checks
// credentials and region, synthesizes once, checks that docker can build the arm64 agent image,
// bootstraps the environment when it has no CDKToolkit stack, deploys, and prints the API URL and
// the `xl` line to use it (README, "Deploy to AWS").
import { join } from 'node:path';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { UsageError, parseCdkArgs } from './lib/cdk-args.ts';
import { deployStack } from './lib/flows.ts';
import { reportFailure, spawnRun } from './lib/run.ts';

const root = join(import.meta.dirname, '..');
try {
  const args = parseCdkArgs(process.argv.slice(2), process.env);
  // AWS_DEFAULT_REGION is read by the AWS CLI and cdk, not by the SDK: name it to the client too.
  const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  await deployStack({
    cfn: new CloudFormationClient(region ? { region } : {}),
    run: spawnRun,
    env: process.env,
    args,
    cdk: join(root, 'node_modules/.bin/cdk'),
    print: (line) => console.log(line),
  });
} catch (err) {
  if (err instanceof UsageError) {
    console.error(`usage: npm run deploy [-- -c key=value ... --profile name <cdk deploy options>]: ${err.message}`);
    process.exitCode = 2;
  } else reportFailure(err);
}
