// A workflow run's state machine execution is named after its execution: `<id>` for run 0,
// `<id>-r<n>` after a resume or a redrive.
import { describe, expect, it } from 'vitest';
import { workflowRunName, workflowRunOfName } from '#core/records.ts';

describe('workflow run names', () => {
  it('name each run of an execution, and read back as that run', () => {
    for (const run of [0, 1, 12]) expect(workflowRunOfName('ex-abc', workflowRunName('ex-abc', run))).toBe(run);
  });

  it('read an id that itself ends in -r<digits> as run 0, knowing the id', () => {
    expect(workflowRunOfName('ex-ab-r2', 'ex-ab-r2')).toBe(0);
    expect(workflowRunOfName('ex-ab-r2', 'ex-ab-r2-r3')).toBe(3);
  });

  it('are no run of another execution', () => {
    for (const name of ['ex-abd', 'ex-abc-r', 'ex-abc-r0', 'ex-abc-r1x', 'ex-abc-x1']) expect(workflowRunOfName('ex-abc', name)).toBeUndefined();
  });
});
