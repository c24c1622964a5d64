// `npm run test:localstack`: deploys the stack to LocalStack and runs test/localstack/ against it
// with host worker processes (LocalStack's free edition has no ECS). When LocalStack does not answer
// (LOCALSTACK_ENDPOINT, default http://localhost:4566) it prints one line saying so and exits 0, so
// that machines without Docker pass. `-- --no-deploy` reuses the last deployment's outputs.
import { join } from 'node:path';
import { parseCdkArgs } from './lib/cdk-args.ts';
import { deployToLocalStack } from './lib/localstack-deploy.ts';
import { localstackEndpoint, probeLocalStack, skipLine } from './lib/localstack.ts';
import { DeployError, reportFailure, spawnRun } from './lib/run.ts';

const root = join(import.meta.dirname, '..');
const endpoint = localstackEndpoint();
const probe = await probeLocalStack(endpoint);
if (!probe.up) {
  console.log(skipLine(endpoint, probe.reason));
} else {
  try {
    if (probe.missing.length) throw new DeployError(`LocalStack at ${endpoint} lacks services the stack needs: ${probe.missing.join(', ')}`, 'start it with docker-compose.localstack.yml (its SERVICES list)');
    const args = parseCdkArgs(process.argv.slice(2), process.env, ['--no-deploy']);
    const workDir = join(root, '.local/localstack');
    const outputsFile = join(workDir, 'outputs.json');
    if (!args.flags.has('--no-deploy')) {
      await deployToLocalStack({ run: spawnRun, env: process.env, args, endpoint, cdklocal: join(root, 'node_modules/.bin/cdklocal'), workDir, print: (l) => console.log(l) });
    }
    const res = await spawnRun(join(root, 'node_modules/.bin/vitest'), ['run', 'test/localstack'], {
      cwd: root,
      env: { ...process.env, XL_LOCALSTACK_OUTPUTS: outputsFile, LOCALSTACK_ENDPOINT: endpoint },
    });
    process.exitCode = res.code;
  } catch (err) {
    reportFailure(err);
  }
}
