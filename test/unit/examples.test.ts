// The plans in examples/ are what users copy first: each must be a valid plan.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePlan } from '../../core/plan.ts';

const DIR = join(import.meta.dirname, '../../examples');

describe('examples', () => {
  it.each(readdirSync(DIR).filter((f) => f.endsWith('.json')))('%s is a valid plan', (file) => {
    expect(() => parsePlan(JSON.parse(readFileSync(join(DIR, file), 'utf8')))).not.toThrow();
  });
});
