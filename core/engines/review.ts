// The review engine: a reviewer task's answer (findings against its `review.criteria`) checked
// against its `review.qualityGates` into a pass/fail verdict. `qualityGates` is `object[]` in the
// contract; the gate kinds below are the ones the layer evaluates, any other object is reported as
// unevaluated (plans written for other tools stay valid).
import * as z from 'zod';

export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];
const rank = (s: Severity) => SEVERITIES.length - SEVERITIES.indexOf(s); // critical 5 … info 1

export const FindingSchema = z.object({
  criterion: z.string().min(1),
  severity: z.enum(SEVERITIES),
  file: z.string().min(1).optional(),
  line: z.number().int().min(1).optional(),
  message: z.string().min(1),
});
export type Finding = z.output<typeof FindingSchema>;

export const ReviewAnswerSchema = z.object({
  findings: z.array(FindingSchema),
  summary: z.string(),
});
export type ReviewAnswer = z.output<typeof ReviewAnswerSchema>;

// ---- gates --------------------------------------------------------------------------------------

/** At most `maxFindings` findings at `severity` or worse (default: any), for one criterion or all. */
export const MaxFindingsGateSchema = z
  .object({
    maxFindings: z.number().int().min(0),
    severity: z.enum(SEVERITIES).optional(),
    criterion: z.string().min(1).optional(),
  })
  .strict();

/**
 * A number from the task's own output or its input (a pipeline's data: an earlier tester's
 * `coverage.lines`), by dot path, within [min, max]. A Metric object (`{ pct }`) counts as its pct.
 */
export const MetricGateSchema = z
  .object({
    metric: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'must be a dot path such as coverage.lines'),
    min: z.number().optional(),
    max: z.number().optional(),
  })
  .strict()
  .refine((g) => g.min !== undefined || g.max !== undefined, { message: 'a metric gate needs min or max', path: ['min'] });

export type GateKind = 'maxFindings' | 'metric';

/** The gate kind an object means to be, by its defining key; undefined for objects of other tools. */
export function gateKind(gate: Record<string, unknown>): GateKind | 'ambiguous' | undefined {
  const f = 'maxFindings' in gate;
  const m = 'metric' in gate;
  return f && m ? 'ambiguous' : f ? 'maxFindings' : m ? 'metric' : undefined;
}

/** Plan problems of a task's `review` (paths relative to the task). */
export function reviewIssues(review: { criteria?: string[]; qualityGates?: Record<string, unknown>[] }): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  (review.qualityGates ?? []).forEach((gate, i) => {
    const at = ['review', 'qualityGates', i];
    const kind = gateKind(gate);
    if (kind === undefined) return;
    if (kind === 'ambiguous') {
      issues.push({ path: at, message: 'a gate is one kind: maxFindings or metric, not both' });
      return;
    }
    const parsed = (kind === 'maxFindings' ? MaxFindingsGateSchema : MetricGateSchema).safeParse(gate);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
        const message =
          issue.code === 'unrecognized_keys'
            ? `unknown key(s) ${keys.join(', ')} in a ${kind} gate (it has ${kind === 'maxFindings' ? 'maxFindings, severity, criterion' : 'metric, min, max'})`
            : issue.message;
        issues.push({ path: [...at, ...(issue.path as (string | number)[])], message });
      }
      return;
    }
    const criterion = kind === 'maxFindings' ? (parsed.data as z.output<typeof MaxFindingsGateSchema>).criterion : undefined;
    if (criterion !== undefined && review.criteria && !review.criteria.includes(criterion)) {
      issues.push({ path: [...at, 'criterion'], message: `"${criterion}" is not one of review.criteria (${review.criteria.join(', ')})` });
    }
  });
  return issues;
}

export interface GateResult {
  gate: Record<string, unknown>;
  status: 'passed' | 'failed' | 'unevaluated';
  /** The number compared (findings counted, the metric's value); null when there is none. */
  actual?: number | null;
  /** e.g. "2 findings at high or worse > 0", "coverage.lines 62.5 < 80". */
  message: string;
  /** The default gate, applied when the task evaluates none of its own. */
  default?: true;
}

export interface CriterionResult {
  criterion: string;
  findings: number;
  /** No finding at high severity or worse against it. */
  passed: boolean;
}

export interface ReviewResult {
  verdict: 'pass' | 'fail';
  summary: string;
  findings: Finding[];
  criteria: CriterionResult[];
  gates: GateResult[];
}

/** Without a gate of its own a review fails on any high or critical finding. */
export const DEFAULT_GATE = { maxFindings: 0, severity: 'high' } as const;

function lookup(path: string, ...sources: unknown[]): number | null {
  for (const source of sources) {
    let v: unknown = source;
    for (const key of path.split('.')) v = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[key] : undefined;
    if (v !== null && typeof v === 'object' && typeof (v as { pct?: unknown }).pct === 'number') v = (v as { pct: number }).pct;
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return null;
}

function evaluateGate(gate: Record<string, unknown>, findings: readonly Finding[], sources: unknown[]): GateResult {
  const kind = gateKind(gate);
  if (kind === 'maxFindings') {
    const parsed = MaxFindingsGateSchema.safeParse(gate);
    if (parsed.success) {
      const g = parsed.data;
      const floor = g.severity ?? 'info';
      const n = findings.filter((f) => rank(f.severity) >= rank(floor) && (g.criterion === undefined || f.criterion === g.criterion)).length;
      const what = `${n} finding${n === 1 ? '' : 's'}${g.severity ? ` at ${g.severity}${g.severity === 'critical' ? '' : ' or worse'}` : ''}${g.criterion ? ` for ${g.criterion}` : ''}`;
      const passed = n <= g.maxFindings;
      return { gate, status: passed ? 'passed' : 'failed', actual: n, message: `${what} ${passed ? '<=' : '>'} ${g.maxFindings}` };
    }
  } else if (kind === 'metric') {
    const parsed = MetricGateSchema.safeParse(gate);
    if (parsed.success) {
      const g = parsed.data;
      const v = lookup(g.metric, ...sources);
      if (v === null) return { gate, status: 'failed', actual: null, message: `${g.metric}: no such number in the task's output or input` };
      if (g.min !== undefined && v < g.min) return { gate, status: 'failed', actual: v, message: `${g.metric} ${v} < ${g.min}` };
      if (g.max !== undefined && v > g.max) return { gate, status: 'failed', actual: v, message: `${g.metric} ${v} > ${g.max}` };
      return { gate, status: 'passed', actual: v, message: `${g.metric} ${v} within ${g.min ?? '-∞'}..${g.max ?? '∞'}` };
    }
  }
  // Malformed gates of our kinds never reach a run (reviewIssues); the rest belong to other tools.
  return { gate, status: 'unevaluated', message: 'not a gate kind the layer evaluates (maxFindings, metric)' };
}

/**
 * The verdict of a review: fail when an evaluated gate fails. `sources` are where metric gates
 * look, in order (the task's output, then its input).
 */
export function evaluateReview(
  answer: ReviewAnswer,
  review: { criteria?: string[]; qualityGates?: Record<string, unknown>[] } | undefined,
  sources: unknown[] = [],
): ReviewResult {
  const criteria = (review?.criteria ?? []).map((criterion) => {
    const mine = answer.findings.filter((f) => f.criterion === criterion);
    return { criterion, findings: mine.length, passed: !mine.some((f) => rank(f.severity) >= rank('high')) };
  });
  const gates = (review?.qualityGates ?? []).map((g) => evaluateGate(g, answer.findings, sources));
  if (!gates.some((g) => g.status !== 'unevaluated')) gates.push({ ...evaluateGate({ ...DEFAULT_GATE }, answer.findings, sources), default: true });
  return {
    verdict: gates.some((g) => g.status === 'failed') ? 'fail' : 'pass',
    summary: answer.summary,
    findings: answer.findings,
    criteria,
    gates,
  };
}

/** The review's answer: the output's `findings` and `summary` (the driver parses a final JSON line), else a JSON object at the end of the text. */
export function parseReviewAnswer(output: Record<string, unknown>): { answer: ReviewAnswer } | { error: string } {
  let candidate: unknown = 'findings' in output ? { findings: output.findings, summary: output.summary } : undefined;
  if (candidate === undefined && typeof output.result === 'string') candidate = lastJsonObject(output.result);
  if (candidate === undefined) return { error: 'the review has no findings JSON (expected a final {"findings": [...], "summary": "..."} object)' };
  const parsed = ReviewAnswerSchema.safeParse(candidate);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { error: `the review's findings JSON is invalid: ${issue.path.length ? issue.path.join('.') + ': ' : ''}${issue.message}` };
  }
  return { answer: parsed.data };
}

/** The last ```json fenced block, else the text from the last line that starts with `{`. */
function lastJsonObject(text: string): unknown {
  const fences = [...text.matchAll(/```(?:json)?\s*\n([\s\S]*?)```/g)];
  const tries = fences.length ? [fences[fences.length - 1]![1]!] : [];
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    if (lines[i]!.trimStart().startsWith('{')) {
      tries.push(lines.slice(i).join('\n'));
      break;
    }
  }
  for (const t of tries) {
    try {
      const v: unknown = JSON.parse(t.trim());
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v;
    } catch {
      // the next candidate
    }
  }
  return undefined;
}

export const REVIEW_ANSWER = '{"findings": [{"criterion": "<one of the criteria>", "severity": "critical|high|medium|low|info", "file": "<path>", "line": <n>, "message": "<what is wrong and how to fix it>"}], "summary": "<overall assessment>"}';

const describeGate = (g: Record<string, unknown>): string => {
  const kind = gateKind(g);
  if (kind === 'maxFindings') {
    const sev = typeof g.severity === 'string' ? ` at ${g.severity} severity or worse` : '';
    const crit = typeof g.criterion === 'string' ? ` for "${g.criterion}"` : '';
    return `at most ${String(g.maxFindings)} finding(s)${sev}${crit}`;
  }
  if (kind === 'metric') return `${String(g.metric)} ${g.min !== undefined ? `>= ${String(g.min)}` : ''}${g.min !== undefined && g.max !== undefined ? ' and ' : ''}${g.max !== undefined ? `<= ${String(g.max)}` : ''}`;
  return JSON.stringify(g);
};

export function reviewPrompt(review: { criteria?: string[]; qualityGates?: Record<string, unknown>[] } | undefined): string {
  const criteria = review?.criteria?.length ? review.criteria : ['correctness', 'security', 'maintainability'];
  const gates = review?.qualityGates ?? [];
  return [
    '## Review',
    'Review the code in the working directory for what the task asks. Report findings only: change nothing.',
    `### Criteria\n${criteria.map((c) => `- ${c}`).join('\n')}\nFile every finding under one of these criteria.`,
    '### Severities\n- critical: exploitable, data loss or the system down\n- high: wrong results or a security weakness in normal use\n- medium: a defect in edge cases, or a serious maintainability problem\n- low: minor issue\n- info: a remark or suggestion',
    `### Quality gates\n${gates.length ? gates.map((g) => `- ${describeGate(g)}`).join('\n') : `- none given: the review fails on any high or critical finding`}\nThe layer decides the verdict from your findings; report what you find, with the real severity.`,
    `### Answer\nEnd your answer with one line that is only this JSON object (findings may be empty; file and line when they apply):\n${REVIEW_ANSWER}`,
  ].join('\n\n');
}

/** "review failed: 2 findings at high or worse > 0 (src/a.ts:3 high security: ...)". */
export function describeReviewFailure(r: ReviewResult): string {
  const failed = r.gates.filter((g) => g.status === 'failed').map((g) => g.message);
  const worst = [...r.findings].sort((a, b) => rank(b.severity) - rank(a.severity)).slice(0, 5);
  const shown = worst.map((f) => `${f.file ? `${f.file}${f.line ? `:${f.line}` : ''} ` : ''}${f.severity} ${f.criterion}: ${f.message}`.slice(0, 300));
  return `review failed: ${failed.join('; ')}${shown.length ? ` (${shown.join('; ')})` : ''}`;
}
