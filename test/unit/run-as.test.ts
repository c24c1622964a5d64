import { describe, expect, it } from 'vitest';
import { resolveRunAs } from '../../agent/run-as.ts';

describe('who runs the agent\'s process', () => {
  it('switches to nobody by default when the worker is root', () => {
    expect(resolveRunAs(undefined, true)).toEqual({ uid: 65534, gid: 65534, name: 'nobody' });
  });

  it('takes a uid:gid pair or a user name', () => {
    expect(resolveRunAs('1000:1000', true)).toEqual({ uid: 1000, gid: 1000, name: '1000:1000' });
    expect(resolveRunAs('nobody', true)).toMatchObject({ uid: 65534 });
  });

  it('does not switch when told not to, or when it cannot', () => {
    expect(resolveRunAs('none', true)).toBeUndefined();
    expect(resolveRunAs(undefined, false)).toBeUndefined();
  });

  it('refuses what it cannot do instead of running as the worker', () => {
    expect(() => resolveRunAs('nobody', false)).toThrow(/needs the worker to run as root/);
    expect(() => resolveRunAs('no-such-user-xl', true)).toThrow(/cannot run commands as "no-such-user-xl"/);
    expect(() => resolveRunAs('root', true)).toThrow(/it is root/);
  });
});
