// The AWS JSON 1.0 endpoint of the local Step Functions service: POST / with
// X-Amz-Target: AWSStepFunctions.<Operation>. Errors are `{ "__type": "...#Name", "message" }`
// with status 400, which the SDK turns into its own exception classes (instanceof TaskTimedOut).
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { SFNServiceException } from '@aws-sdk/client-sfn';

const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** The service behind the endpoint (LocalStepFunctions, service.ts): what each operation calls, its body as the SDK sent it. */
type Method = (body: never) => Promise<unknown>;
export interface SfnService {
  startExecution: Method;
  describeExecution: Method;
  stopExecution: Method;
  sendTaskSuccess: Method;
  sendTaskFailure: Method;
  sendTaskHeartbeat: Method;
  getExecutionHistory: Method;
  listExecutions: Method;
  listStateMachines: () => Promise<unknown>;
  describeStateMachine: Method;
}

type Operation = (svc: SfnService, body: never) => Promise<unknown>;

const OPERATIONS: Record<string, Operation> = {
  StartExecution: (svc, body) => svc.startExecution(body),
  DescribeExecution: (svc, body) => svc.describeExecution(body),
  StopExecution: (svc, body) => svc.stopExecution(body),
  SendTaskSuccess: (svc, body) => svc.sendTaskSuccess(body),
  SendTaskFailure: (svc, body) => svc.sendTaskFailure(body),
  SendTaskHeartbeat: (svc, body) => svc.sendTaskHeartbeat(body),
  GetExecutionHistory: (svc, body) => svc.getExecutionHistory(body),
  ListExecutions: (svc, body) => svc.listExecutions(body),
  ListStateMachines: (svc) => svc.listStateMachines(),
  DescribeStateMachine: (svc, body) => svc.describeStateMachine(body),
};

export function createSfnHttpServer(svc: SfnService): Server {
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      void handle(svc, req, res, size > MAX_BODY_BYTES ? null : Buffer.concat(chunks).toString('utf8'));
    });
  });
}

async function handle(svc: SfnService, req: IncomingMessage, res: ServerResponse, text: string | null): Promise<void> {
  const target = String(req.headers['x-amz-target'] ?? '');
  const op = target.startsWith('AWSStepFunctions.') ? OPERATIONS[target.slice('AWSStepFunctions.'.length)] : undefined;
  if (req.method !== 'POST' || !op) {
    return send(res, 400, { __type: 'UnknownOperationException', message: `Unknown operation ${target}` });
  }
  if (text === null) return send(res, 413, { __type: 'com.amazonaws.sfn#ValidationException', message: 'request too large' });
  let body: unknown;
  try {
    body = text.length > 0 ? JSON.parse(text) : {};
  } catch {
    return send(res, 400, { __type: 'SerializationException', message: 'request body is not JSON' });
  }
  try {
    const result = await op(svc, (body ?? {}) as never);
    send(res, 200, result);
  } catch (err) {
    if (err instanceof SFNServiceException) {
      send(res, 400, { __type: `com.amazonaws.sfn#${err.name}`, message: err.message });
    } else {
      const message = err instanceof Error ? err.message : String(err);
      send(res, 500, { __type: 'InternalFailure', message });
    }
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  // The SDK reads timestamps as epoch seconds.
  const text = JSON.stringify(body, function (this: Record<string, unknown>, key, value: unknown) {
    const raw = this[key];
    return raw instanceof Date ? raw.getTime() / 1000 : value;
  });
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.0',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
  });
  res.end(text);
}
