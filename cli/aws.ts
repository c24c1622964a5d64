// The deployed stack, for xl: its API URL (the stack's ApiUrl output) and SigV4 signing with the
// default AWS credential chain, since the API Gateway front door uses IAM authorization.
import { Sha256 } from '@aws-crypto/sha256-js';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { SignatureV4 } from '@smithy/signature-v4';

/** The API URL of the deployed stack (XL_STACK_NAME, default `xl`) in the default region. */
export async function deployedEndpoint(): Promise<string> {
  const stackName = process.env.XL_STACK_NAME ?? 'xl';
  try {
    const res = await new CloudFormationClient({}).send(new DescribeStacksCommand({ StackName: stackName }));
    const url = res.Stacks?.[0]?.Outputs?.find((o) => o.OutputKey === 'ApiUrl')?.OutputValue;
    if (url) return url;
    throw new Error(`stack ${stackName} has no ApiUrl output`);
  } catch (err) {
    throw new Error(
      `no endpoint: no local layer is running (npm start) and the deployed stack ${stackName} could not be read (${(err as Error).message}); pass --endpoint or set XL_ENDPOINT`,
      { cause: err },
    );
  }
}

/** Headers of a request signed for execute-api in the URL's region. */
export async function signedHeaders(
  method: string,
  url: string,
  body: string | undefined,
  headers: Record<string, string>,
): Promise<Record<string, string>> {
  const target = new URL(url);
  const region = /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/.exec(target.hostname)?.[1] ?? process.env.AWS_REGION ?? 'us-east-1';
  const signer = new SignatureV4({ service: 'execute-api', region, credentials: defaultProvider(), sha256: Sha256 });
  const signed = await signer.sign({
    method,
    protocol: target.protocol,
    hostname: target.hostname,
    path: target.pathname,
    query: Object.fromEntries(target.searchParams),
    // The Host header as sent: with the port when it is not the scheme's default (never, for API Gateway).
    headers: { ...headers, host: target.host },
    body,
  });
  return signed.headers as Record<string, string>;
}
