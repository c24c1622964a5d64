// The stand-in CLI's transcripts are synthesized from the pinned SDK's message types
// (test/fixtures/claude-transcripts/synthesize.ts): the files in the repository must be exactly
// what that module writes, so that no hand edit slips past the type checker.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { render, TRANSCRIPT_DIR, transcripts } from '../fixtures/claude-transcripts/synthesize.ts';

describe('stand-in transcripts', () => {
  const all = transcripts();

  it('every .jsonl file is one that synthesize.ts writes, and says it is synthesized', () => {
    const files = readdirSync(TRANSCRIPT_DIR).filter((f) => f.endsWith('.jsonl')).map((f) => f.replace(/\.jsonl$/, ''));
    expect(files.sort()).toEqual(Object.keys(all).sort());
    for (const name of files) expect(readFileSync(join(TRANSCRIPT_DIR, `${name}.jsonl`), 'utf8').split('\n')[0]).toContain('"_comment":"synthesized from the message types of @anthropic-ai/claude-agent-sdk');
  });

  it.each(Object.keys(all))('%s.jsonl is up to date (regenerate: node --import tsx test/fixtures/claude-transcripts/synthesize.ts)', (name) => {
    expect(readFileSync(join(TRANSCRIPT_DIR, `${name}.jsonl`), 'utf8')).toBe(render(all[name]!));
  });
});
