// Canonical JSON (core/canonical-json.ts): the text cache keys are hashed from, key order aside equal
// to JSON.stringify's, and the same text safe-stable-stringify gave before it (keys already stored
// still match).
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../core/canonical-json.ts';
import { cacheKey } from '../../core/result-cache.ts';

describe('canonicalJson', () => {
  it('sorts every object\'s keys, in code unit order, at every depth', () => {
    expect(canonicalJson({ b: { z: 1, a: [{ y: 2, x: 1 }] }, a: 0, A: 1, 10: 'n', 9: 'm', é: true })).toBe(
      '{"10":"n","9":"m","A":1,"a":0,"b":{"a":[{"x":1,"y":2}],"z":1},"é":true}',
    );
  });

  it('writes what JSON.stringify writes for everything else', () => {
    const values = ['Fix "it"\n\u2028 😀 \ud800', 2.5, -0, 1e21, NaN, Infinity, null, true, [], {}, new Date(0), [undefined, () => 1, Symbol('s')], { gone: undefined, kept: 1 }];
    for (const value of values) expect(canonicalJson(value)).toBe(JSON.stringify(value));
    expect(canonicalJson(undefined)).toBeUndefined();
  });

  it('writes a bigint as its digits and a cycle as "[Circular]", as safe-stable-stringify did', () => {
    const cycle: Record<string, unknown> = { a: 1 };
    cycle.self = cycle;
    const shared = { x: 1 };
    expect(canonicalJson({ big: 12345678901234567890n })).toBe('{"big":12345678901234567890}');
    expect(canonicalJson(cycle)).toBe('{"a":1,"self":"[Circular]"}');
    expect(canonicalJson([shared, shared])).toBe('[{"x":1},{"x":1}]');
  });
});

describe('cacheKey', () => {
  it('is the key safe-stable-stringify gave for the same task (computed with it before the switch)', () => {
    const definition = { id: 't1', agentType: 'coder', instructions: 'Add a test', priority: 'high', cache: { ttlSeconds: 60 }, workspace: { repository: 'https://example.com/r.git', ref: 'main' } };
    expect(cacheKey({ definition, input: { z: [1, { b: 2, a: 1 }], a: 'é' }, commit: 'abc' })).toBe('36dce7bc82f3d86222e34279a7687712efdeb0179d3094dcfbb483ba9f291740');
  });
});
