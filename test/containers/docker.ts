// Helpers of the container tests: run a command in a container of the agent image and read its output.
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';

export const docker = () => new Docker();
export const agentImage = () => process.env.XL_AGENT_IMAGE ?? 'xl-agent:latest';

/** Runs `sh -c script` in a new container (removed after) and returns its exit code and output. */
export async function runInImage(script: string, opts: { user?: string; env?: string[]; host?: Docker.HostConfig } = {}): Promise<{ code: number; out: string }> {
  const d = docker();
  const container = await d.createContainer({
    Image: agentImage(),
    Cmd: ['sh', '-c', script],
    User: opts.user ?? 'node',
    Env: opts.env ?? [],
    HostConfig: { NetworkMode: 'none', ...opts.host },
  });
  try {
    // Attached before the start: the whole output, however soon the process exits.
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    let out = '';
    const sink = new PassThrough().on('data', (d: Buffer) => (out += d.toString('utf8')));
    d.modem.demuxStream(stream, sink, sink);
    const ended = new Promise<void>((ok) => stream.once('end', () => ok()));
    const waited = container.wait({ condition: 'next-exit' });
    await container.start();
    const { StatusCode } = (await waited) as { StatusCode: number };
    await ended;
    return { code: StatusCode, out };
  } finally {
    await container.remove({ force: true, v: true }).catch(() => undefined);
  }
}

/** The Engine API's multiplexed log format: 8-byte frame headers, then the frame. */
export function demux(buf: Buffer): string {
  let out = '';
  for (let i = 0; i + 8 <= buf.length; ) {
    const size = buf.readUInt32BE(i + 4);
    out += buf.subarray(i + 8, i + 8 + size).toString('utf8');
    i += 8 + size;
  }
  return out;
}

/** Containers on the engine carrying a label (`key=value`), running or not. */
export async function containersLabelled(label: string): Promise<Docker.ContainerInfo[]> {
  return docker().listContainers({ all: true, filters: { label: [label] } });
}

