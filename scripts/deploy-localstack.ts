// `npm run deploy:localstack [-- -c key=value ...]`: the stack on LocalStack (README, "LocalStack"),
// through cdklocal. LOCALSTACK_ENDPOINT names LocalStack (default http://localhost:4566).
import { join } from 'node:path';
import { UsageError, parseCdkArgs } from './lib/cdk-args.ts';
import { deployToLocalStack } from './lib/localstack-deploy.ts';
import { localstackEndpoint, probeLocalStack } from './lib/localstack.ts';
import { DeployError, reportFailure, spawnRun } from './lib/run.ts';

const root = join(import.meta.dirname, '..');
try {
  const args = parseCdkArgs(process.argv.slice(2), process.env);
  const endpoint = localstackEndpoint();
  const probe = await probeLocalStack(endpoint);
  if (!probe.up) throw new DeployError(`LocalStack is not reachable at ${endpoint} (${probe.reason})`, 'docker compose -f docker-compose.localstack.yml up -d, or set LOCALSTACK_ENDPOINT');
  if (probe.missing.length) throw new DeployError(`LocalStack at ${endpoint} lacks services the stack needs: ${probe.missing.join(', ')}`, 'start it with docker-compose.localstack.yml (its SERVICES list), or add them to yours');
  await deployToLocalStack({
    run: spawnRun,
    env: process.env,
    args,
    endpoint,
    cdklocal: join(root, 'node_modules/.bin/cdklocal'),
    workDir: join(root, '.local/localstack'),
    print: (line) => console.log(line),
  });
} catch (err) {
  if (err instanceof UsageError) {
    console.error(`usage: npm run deploy:localstack [-- -c key=value ...]: ${err.message}`);
    process.exitCode = 2;
  } else reportFailure(err);
}
