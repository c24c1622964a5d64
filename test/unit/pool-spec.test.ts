// The per-agent-type settings read from the environment: pool bounds (XL_POOL) and how many tasks
// one agent runs at once (XL_MAX_CONCURRENT_TASKS).
import { describe, expect, it } from 'vitest';
import { parseConcurrencySpec, parsePoolSpec } from '../../core/pool.ts';

describe('XL_POOL', () => {
  it('reads min..max per type; nothing for an empty spec', () => {
    expect(parsePoolSpec('tester=2..8, coder=0..4')).toEqual({ tester: { min: 2, max: 8 }, coder: { min: 0, max: 4 } });
    expect(parsePoolSpec(undefined)).toEqual({});
    expect(parsePoolSpec('  ')).toEqual({});
  });

  it('names what is wrong: the entry, an unknown type, min above max', () => {
    expect(() => parsePoolSpec('tester=2')).toThrow('XL_POOL: "tester=2" is not <agentType>=<min>..<max>');
    expect(() => parsePoolSpec('wizard=1..2')).toThrow('XL_POOL: unknown agent type "wizard"');
    expect(() => parsePoolSpec('coder=5..2')).toThrow('XL_POOL: coder min 5 is above max 2');
  });
});

describe('XL_MAX_CONCURRENT_TASKS', () => {
  it('reads a task count per type', () => {
    expect(parseConcurrencySpec('tester=2,monitor=4')).toEqual({ tester: 2, monitor: 4 });
    expect(parseConcurrencySpec('')).toEqual({});
  });

  it('refuses counts outside 1..64 and unknown types, naming them', () => {
    expect(() => parseConcurrencySpec('tester=0')).toThrow('XL_MAX_CONCURRENT_TASKS: "tester=0" is not <agentType>=<n> (1..64)');
    expect(() => parseConcurrencySpec('tester=65')).toThrow(/"tester=65"/);
    expect(() => parseConcurrencySpec('tester=two')).toThrow(/"tester=two"/);
    expect(() => parseConcurrencySpec('wizard=1')).toThrow('XL_MAX_CONCURRENT_TASKS: unknown agent type "wizard"');
  });
});
