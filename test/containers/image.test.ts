// The agent image that `npm run image` builds from agent/Dockerfile (the one `cdk deploy` builds):
// the worker starts in it with the task definition's hardening, the engines' tools and the pinned
// Claude Code CLI are there, and nothing that should not ship is.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IMAGE_REPOSITORY, buildImage, importToContainerd } from '../../scripts/image.ts';
import { ROOT } from '../e2e/harness.ts';
import { ctr, noContainerd } from './ctr.ts';
import { agentImage, demux, docker, runInImage } from './docker.ts';

const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; dev?: boolean }> };

describe('the agent image', () => {
  it('is reported with its size', async () => {
    const info = await docker().getImage(agentImage()).inspect();
    process.stderr.write(`containers: ${agentImage()} (${process.env.XL_TEST_IMAGE_TAG}) is ${(info.Size / 1e6).toFixed(0)} MB\n`);
    expect(info.Config.Cmd).toEqual(['node', 'dist/agent/main.mjs']);
    expect(info.Config.WorkingDir).toBe('/app');
  });

  it('starts the worker as its CMD under the task definition\'s hardening, running agents as node with every tool found', async () => {
    const d = docker();
    const container = await d.createContainer({
      Image: agentImage(),
      User: '0',
      // No AWS here: the worker gets as far as its start checks, then fails to reach the tables.
      Env: ['XL_AGENT_TYPE=coder', 'XL_TABLE_EXECUTIONS=e', 'XL_TABLE_AGENTS=a', 'XL_TABLE_BREAKERS=b', 'XL_BUCKET=b', 'XL_QUEUE_URL_PREFIX=http://127.0.0.1:9/x-', 'XL_MODEL_ACCESS=none', 'AWS_REGION=us-east-1', 'AWS_ACCESS_KEY_ID=x', 'AWS_SECRET_ACCESS_KEY=x', 'AWS_ENDPOINT_URL=http://127.0.0.1:9'],
      HostConfig: {
        NetworkMode: 'none',
        ReadonlyRootfs: true,
        CapDrop: ['ALL'],
        CapAdd: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'KILL', 'SETGID', 'SETUID'],
        SecurityOpt: ['no-new-privileges'],
        Init: true,
        Mounts: [
          { Type: 'volume', Source: '', Target: '/workspace' },
          { Type: 'volume', Source: '', Target: '/tmp' },
        ],
      },
    });
    try {
      await container.start();
      let out = '';
      const end = Date.now() + 30_000;
      while (!/commands run as/.test(out) && Date.now() < end) {
        out = demux((await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer);
        if (!/commands run as/.test(out)) await new Promise((r) => setTimeout(r, 200));
      }
      const started = out.split('\n').find((l) => l.includes('commands run as'));
      expect(started, out).toBeDefined();
      expect(JSON.parse(started!)).toMatchObject({ user: 'node' });
      // The start checks log their findings together: once "no model access" is there (model access
      // is off here), no other finding (a missing tool) is.
      while (!/no model access/.test(out) && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 200));
        out = demux((await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer);
      }
      expect(out).toContain('no model access');
      expect(out.split('\n').filter((l) => l.includes('capability check') && !l.includes('no model access')), out).toEqual([]);
    } finally {
      await container.remove({ force: true, v: true });
    }
  });

  it('has git, Python with pytest and coverage, Go, tar and the pinned Claude Code CLI', async () => {
    const sdk = lock.packages['node_modules/@anthropic-ai/claude-agent-sdk']!.version;
    const { code, out } = await runInImage(
      [
        'git --version',
        'python3 -c "import pytest, coverage; print(\'python ok\')"',
        'go version',
        'tar --version | head -1',
        'node --version',
        'bin=$(ls -d /app/node_modules/@anthropic-ai/claude-agent-sdk-linux-*/claude | head -1); echo "bin=$bin"; HOME=/tmp "$bin" --version',
        'cat /app/node_modules/@anthropic-ai/claude-agent-sdk/package.json | grep \'"version"\'',
      ].join(' && '),
    );
    expect(code, out).toBe(0);
    expect(out).toMatch(/git version \d/);
    expect(out).toContain('python ok');
    expect(out).toMatch(/go version go1\.\d+/);
    expect(out).toMatch(/tar \(GNU tar\)/);
    expect(out).toMatch(/^v22\./m);
    expect(out).toContain(`"version": "${sdk}"`);
    expect(out).toMatch(/bin=\/app\/node_modules\/@anthropic-ai\/claude-agent-sdk-linux-(x64|arm64)\/claude/);
    expect(out).toMatch(/\d+\.\d+\.\d+ \(Claude Code\)/);
  });

  it('holds no dev dependency, no test file and no test folder', async () => {
    const listPackages = `node -e 'const fs=require("fs");for(const e of fs.readdirSync("node_modules"))for(const n of e.startsWith("@")?fs.readdirSync("node_modules/"+e).map(x=>e+"/"+x):[e])console.log(n)'`;
    const { code, out } = await runInImage(`cd /app && ${listPackages}; echo ---; find /app -path /app/node_modules -prune -o \\( -name "*.test.*" -o -name test -o -name "*.spec.*" \\) -print; echo ---; ls /app /app/dist/agent`);
    expect(code, out).toBe(0);
    const [modules, tests, app] = out.split('---\n') as [string, string, string];
    const installed = new Set(modules.split('\n').filter(Boolean));
    const devOnly = Object.entries(lock.packages)
      .filter(([path, p]) => p.dev && path.startsWith('node_modules/') && path.lastIndexOf('node_modules/') === 0)
      .map(([path]) => path.slice('node_modules/'.length));
    expect(devOnly.length).toBeGreaterThan(10);
    expect(devOnly.filter((name) => installed.has(name))).toEqual([]);
    // (typescript is there: a peer dependency of a production package.)
    for (const name of ['vitest', 'aws-cdk-lib', 'aws-cdk', 'esbuild', 'tsx', 'eslint', '@playwright/test', 'node']) expect(installed.has(name), name).toBe(false);
    expect(installed.has('@anthropic-ai/claude-agent-sdk')).toBe(true);
    expect(tests.trim()).toBe('');
    expect(app.split('\n').filter(Boolean).sort()).toEqual(['/app:', '/app/dist/agent:', 'dist', 'main.mjs', 'main.mjs.map', 'node_modules', 'package.json'].sort());
  });

  it('holds no secret: no credential in its environment, no npm or AWS credential file', async () => {
    const info = await docker().getImage(agentImage()).inspect();
    const names = (info.Config.Env ?? []).map((e) => e.split('=')[0]!);
    expect(names.filter((n) => /KEY|TOKEN|SECRET|PASSWORD|AUTH|CREDENTIAL/i.test(n))).toEqual([]);
    const { code, out } = await runInImage(
      'for f in /root/.npmrc /home/node/.npmrc /app/.npmrc /root/.aws /home/node/.aws /root/.docker /root/.git-credentials; do [ -e $f ] && echo "found $f"; done; ' +
        'grep -il -E "_auth|_authToken|password" /usr/local/etc/npmrc /etc/npmrc 2>/dev/null; echo done',
      { user: '0' },
    );
    expect(code, out).toBe(0);
    expect(out.trim()).toBe('done');
  });

  it('is built again without older builds beside it: an older tag goes, from docker and from containerd', async () => {
    const current = process.env.XL_TEST_IMAGE_TAG!;
    const older = `${IMAGE_REPOSITORY}:0.0.0-older`;
    await docker().getImage(current).tag({ repo: IMAGE_REPOSITORY, tag: '0.0.0-older' });
    const tags = async () => (await docker().listImages({ filters: { reference: [IMAGE_REPOSITORY] } })).flatMap((i) => i.RepoTags ?? []);
    expect(await tags()).toContain(older);
    expect(buildImage().tag).toBe(current); // already built: tagged latest, the older one removed
    expect(await tags()).not.toContain(older);
    expect(await tags()).toEqual(expect.arrayContaining([current, `${IMAGE_REPOSITORY}:latest`]));
    if (noContainerd()) return;
    const full = (ref: string) => `docker.io/library/${ref}`;
    await ctr('images', 'tag', '--force', full(current), full(older));
    importToContainerd(current, process.env.XL_CONTAINERD_ADDRESS);
    const names = (await ctr('images', 'ls', '--quiet')).split('\n').filter(Boolean);
    expect(names).not.toContain(full(older));
    expect(names).toEqual(expect.arrayContaining([full(current), full(`${IMAGE_REPOSITORY}:latest`)]));
  });
});
