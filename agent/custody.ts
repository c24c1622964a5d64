// Custody of a dispatch message: keeping it out of other agents' hands while its task runs, for
// as long as the contract allows a task to run (24 hours), without letting its receive count
// climb toward the queue's maxReceiveCount (the DLQ is for messages no agent can handle, never
// for a healthy long task or a duplicate delivery).
//
// SQS caps a received message's visibility at 12 hours *from its receipt*: ChangeMessageVisibility
// can extend it again and again, but a request reaching past that point is rejected (SQS API
// Reference, ChangeMessageVisibility). A task still running then would see its message delivered
// again, and again every visibility timeout, each delivery counting toward the DLQ. So the holder
// of a message near the cap *relays* it: it sends a fresh copy (same body, receive count 0) and
// deletes its own. The task's liveness was never the message's: it is the DynamoDB lease, which
// the holder keeps renewing. The copy, like a duplicate delivery, goes to whichever agent polls:
// one that finds the task held by a live lease relays that copy in turn (delayed as long as a
// visibility timeout would have kept it away) and deletes the one it received. A held task's
// message is thus received at most once per copy; once the holder dies and its lease runs out, the
// next copy is claimed and the task runs again, within a visibility timeout (two heartbeat
// intervals) plus the lease.
import { DeleteMessageCommand, type MessageAttributeValue, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';

/** SQS's limit: a message's visibility may not reach past 12 hours from its receipt. */
export const SQS_VISIBILITY_CAP_SECONDS = 43_200;
/**
 * When the holder relays (seconds after its receive): 15 minutes before SQS's cap, which leaves
 * several heartbeat intervals of room for a relay that fails once or twice.
 */
export const DEFAULT_VISIBILITY_CAP_SECONDS = SQS_VISIBILITY_CAP_SECONDS - 900;
/** SQS's limit on a message's DelaySeconds. */
export const MAX_DELAY_SECONDS = 900;
/** Carries the first dispatch's send time across relays (for the task's queue-time figures). */
export const DISPATCHED_AT_ATTRIBUTE = 'xl-dispatched-at';

/** A message a run holds (received, in flight). */
export interface HeldMessage {
  queueUrl: string;
  receipt: string;
  body: string;
  /** When the receive that got it was sent (epoch ms): the cap counts from the receipt, a little later. */
  receivedAt: number;
  /** When the dispatch was first sent (epoch ms), when known. */
  dispatchedAt?: number;
}

export interface CustodyLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export class MessageCustody {
  constructor(
    private readonly sqs: SQSClient,
    /** Seconds after its receipt by which the holder relays a message (XL_VISIBILITY_CAP_SECONDS). */
    readonly capSeconds: number = DEFAULT_VISIBILITY_CAP_SECONDS,
    private readonly log?: CustodyLogger,
  ) {
    if (!(capSeconds > 0 && capSeconds <= SQS_VISIBILITY_CAP_SECONDS)) {
      throw new Error(`the visibility cap must be within 1..${SQS_VISIBILITY_CAP_SECONDS} seconds, got ${capSeconds}`);
    }
  }

  /** Whether extending the message's visibility by `seconds` now would reach past the cap. */
  passesCap(held: HeldMessage, now: number, seconds: number): boolean {
    return now + seconds * 1000 > held.receivedAt + this.capSeconds * 1000;
  }

  /**
   * A fresh copy of the message (same body), visible after `delaySeconds`, then the held one
   * deleted. True when the copy was sent: the held message is then no longer this agent's to
   * extend (a delete that fails leaves a second copy, which the next agent finds held or finished).
   * False when the copy could not be sent: the held message is left as it is.
   */
  async relay(held: HeldMessage, delaySeconds: number): Promise<boolean> {
    if (!(await this.sendCopy(held, delaySeconds))) return false;
    try {
      await this.sqs.send(new DeleteMessageCommand({ QueueUrl: held.queueUrl, ReceiptHandle: held.receipt }));
    } catch (err) {
      this.log?.debug('could not delete a relayed message; its copy stands in for it', { error: (err as Error).message });
    }
    return true;
  }

  /** Only the copy (a hand-back after the held message was relayed: the task is claimable again). */
  async sendCopy(held: Omit<HeldMessage, 'receipt'>, delaySeconds: number): Promise<boolean> {
    const attributes: Record<string, MessageAttributeValue> = held.dispatchedAt
      ? { [DISPATCHED_AT_ATTRIBUTE]: { DataType: 'Number', StringValue: String(held.dispatchedAt) } }
      : {};
    try {
      await this.sqs.send(
        new SendMessageCommand({
          QueueUrl: held.queueUrl,
          MessageBody: held.body,
          DelaySeconds: Math.max(0, Math.min(MAX_DELAY_SECONDS, Math.round(delaySeconds))),
          ...(held.dispatchedAt ? { MessageAttributes: attributes } : {}),
        }),
      );
      return true;
    } catch (err) {
      this.log?.warn('could not relay a dispatch message', { error: (err as Error).message });
      return false;
    }
  }
}

/** The first dispatch's send time: the relay attribute, else the message's own SentTimestamp. */
export function dispatchedAtOf(m: { Attributes?: Record<string, string>; MessageAttributes?: Record<string, MessageAttributeValue> }): number | undefined {
  return Number(m.MessageAttributes?.[DISPATCHED_AT_ATTRIBUTE]?.StringValue) || Number(m.Attributes?.SentTimestamp) || undefined;
}
