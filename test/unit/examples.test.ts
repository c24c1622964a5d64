// The plans in examples/ are what users copy first: each must be a valid plan, and each YAML one
// names the plan schema for editors.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parsePlan } from '../../core/plan.ts';

const DIR = join(import.meta.dirname, '../../examples');
const read = (file: string) => readFileSync(join(DIR, file), 'utf8');
const yamlFiles = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f));

describe('examples', () => {
  it.each(readdirSync(DIR).filter((f) => f.endsWith('.json')))('%s is a valid plan', (file) => {
    expect(() => parsePlan(JSON.parse(read(file)))).not.toThrow();
  });

  it('include a YAML plan', () => expect(yamlFiles.length).toBeGreaterThan(0));

  it.each(yamlFiles)('%s is a valid plan', (file) => {
    expect(() => parsePlan(parseYaml(read(file)))).not.toThrow();
  });

  it.each(yamlFiles)('%s names the plan schema for the YAML language server, by a path that exists', (file) => {
    const modeline = /^# yaml-language-server: \$schema=(\S+)$/m.exec(read(file));
    expect(modeline, `${file} has no "# yaml-language-server: $schema=..." line`).not.toBeNull();
    expect(resolve(dirname(join(DIR, file)), modeline![1]!)).toBe(resolve(DIR, '../schemas/plan.schema.json'));
    expect(existsSync(resolve(DIR, '../schemas/plan.schema.json'))).toBe(true);
  });
});
