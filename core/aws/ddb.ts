// What every DynamoDB store here shares: items carry their keys beside the record, and every state
// change is a conditional write whose failed condition is an answer, not an error.
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';

/** The record of an item, without its table keys. */
export function strip<T>(item: Record<string, unknown>): T {
  const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g2, ...rest } = item;
  return rest as T;
}

export function isConditionFailure(err: unknown): boolean {
  return err instanceof ConditionalCheckFailedException || (err as Error)?.name === 'ConditionalCheckFailedException';
}

/** Runs a conditional write: its result, or undefined when its condition did not hold. */
export async function conditionalResult<T>(write: () => Promise<T>): Promise<T | undefined> {
  try {
    return await write();
  } catch (err) {
    if (isConditionFailure(err)) return undefined;
    throw err;
  }
}

/** Runs a conditional write; false when its condition did not hold. */
export async function conditional(write: () => Promise<unknown>): Promise<boolean> {
  return (await conditionalResult(async () => (await write(), true))) ?? false;
}
