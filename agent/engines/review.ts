// The review engine's agent part: a reviewer's answer (the driver's output) validated and judged
// against the task's quality gates (core/engines/review.ts).
import { describeReviewFailure, evaluateReview, parseReviewAnswer } from '../../core/engines/review.ts';
import type { Task } from '../../core/plan.ts';
import type { DriverResult } from '../drivers/types.ts';

/**
 * The review step of a reviewer's completed run with `review`: the output gets `review`, and a
 * `fail` verdict (or an answer without valid findings JSON) fails the task as validation, with the
 * failed gates and the worst findings in the message.
 */
export function applyReview(review: NonNullable<Task['review']>, input: Record<string, unknown>, result: DriverResult): DriverResult {
  if (result.status !== 'completed') return result;
  const cost = result.cost ? { cost: result.cost } : {};
  const parsed = parseReviewAnswer(result.output);
  if ('error' in parsed) return { status: 'failed', error: { type: 'validation', message: parsed.error }, ...cost };
  const outcome = evaluateReview(parsed.answer, review, [result.output, input]);
  if (outcome.verdict === 'fail') return { status: 'failed', error: { type: 'validation', message: describeReviewFailure(outcome) }, ...cost };
  const { findings: _f, summary: _s, ...rest } = result.output;
  return { ...result, output: { ...rest, review: outcome } };
}
