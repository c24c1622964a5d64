// The local layer's on/off settings refuse what is neither on nor off, by name.
import { describe, expect, it } from 'vitest';
import { agentBundleEnabled, synthCacheEnabled } from '../../local/switches.ts';

describe.each([
  ['XL_SYNTH_CACHE', synthCacheEnabled],
  ['XL_AGENT_BUNDLE', agentBundleEnabled],
] as const)('%s', (name, enabled) => {
  it('is on unless 0 or false, and names itself when it is neither', () => {
    expect([undefined, '', '1', 'true'].map((v) => enabled({ [name]: v }))).toEqual([true, true, true, true]);
    expect(['0', 'false'].map((v) => enabled({ [name]: v }))).toEqual([false, false]);
    expect(() => enabled({ [name]: 'off' })).toThrow(new RegExp(`${name} must be 1 .* or 0 \\(off\\), got "off"`));
  });
});
