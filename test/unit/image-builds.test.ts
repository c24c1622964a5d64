// Which of the agent image's builds `npm run image` removes once `latest` is the new one.
import { describe, expect, it } from 'vitest';
import { olderBuilds } from '../../scripts/image.ts';

describe('the agent image\'s older builds', () => {
  it('are every other xl-agent version tag: not the current one, not latest, not another repository', () => {
    const refs = ['xl-agent:0.1.0-aaa', 'xl-agent:0.1.0-bbb', 'xl-agent:latest', 'xl-node-base:22-bookworm', 'my-xl-agent:0.1.0-aaa', '<none>:<none>', ''];
    expect(olderBuilds(refs, 'xl-agent:0.1.0-bbb')).toEqual(['xl-agent:0.1.0-aaa']);
  });

  it('are named in full in containerd', () => {
    const refs = ['docker.io/library/xl-agent:0.1.0-aaa', 'docker.io/library/xl-agent:0.1.0-bbb', 'docker.io/library/xl-agent:latest'];
    expect(olderBuilds(refs, 'xl-agent:0.1.0-bbb', 'docker.io/library/')).toEqual(['docker.io/library/xl-agent:0.1.0-aaa']);
  });
});
