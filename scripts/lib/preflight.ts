// Before anything is built: a region, credentials that AWS accepts, and the CDK bootstrap stack of
// the environment (account and region) the stack goes to.
import { CloudFormationClient, DescribeStacksCommand, type Stack } from '@aws-sdk/client-cloudformation';
import { DeployError } from './run.ts';

/** The region the SDK resolves (AWS_REGION, the profile's region), else AWS_DEFAULT_REGION as the AWS CLI reads it. */
export async function resolveRegion(cfn: CloudFormationClient, env: NodeJS.ProcessEnv): Promise<string> {
  try {
    const region = await cfn.config.region();
    if (region) return region;
  } catch {
    // no region configured: fall through
  }
  if (env.AWS_DEFAULT_REGION) return env.AWS_DEFAULT_REGION;
  throw new DeployError(
    'no AWS region is set',
    'export AWS_REGION=<region> (e.g. eu-west-1), or set one in your profile: aws configure set region <region>',
  );
}

/** Resolves the credentials locally, so that "none at all" reads differently from "refused by AWS". */
export async function requireCredentials(cfn: CloudFormationClient, env: NodeJS.ProcessEnv): Promise<void> {
  try {
    const creds = await cfn.config.credentials();
    if (!creds?.accessKeyId) throw new Error('empty credentials');
  } catch (err) {
    const profile = env.AWS_PROFILE ? ` (AWS_PROFILE=${env.AWS_PROFILE})` : '';
    throw new DeployError(
      `no AWS credentials found${profile}: ${(err as Error).message}`,
      'run `aws configure` (access keys) or `aws sso login --profile <name>` and export AWS_PROFILE=<name>, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; check with `aws sts get-caller-identity`',
    );
  }
}

// What AWS answers for credentials it does not accept.
const REFUSED_CREDENTIALS = new Set(['ExpiredToken', 'ExpiredTokenException', 'InvalidClientTokenId', 'UnrecognizedClientException', 'SignatureDoesNotMatch', 'InvalidSignatureException', 'TokenRefreshRequired']);

/** A CloudFormation call's error, translated when it is about the credentials. */
export function credentialError(err: unknown): Error {
  const name = (err as { name?: string }).name ?? '';
  if (REFUSED_CREDENTIALS.has(name)) {
    return new DeployError(`AWS refused the credentials (${name}: ${(err as Error).message})`, 'renew them (`aws sso login`, or new access keys) and check with `aws sts get-caller-identity`');
  }
  if (name === 'AccessDenied' || name === 'AccessDeniedException') {
    return new DeployError(`the credentials may not read CloudFormation stacks (${(err as Error).message})`, 'deploy with an identity that may use CloudFormation, IAM, S3, ECR and SSM for the CDK (e.g. an administrator of the account)');
  }
  return err as Error;
}

/** A stack's description, or undefined when no stack has that name in the region. */
export async function describeStack(cfn: CloudFormationClient, stackName: string): Promise<Stack | undefined> {
  try {
    const res = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    return res.Stacks?.[0];
  } catch (err) {
    // CloudFormation says a missing stack with a ValidationError: "Stack with id X does not exist".
    if ((err as { name?: string }).name === 'ValidationError' && /does not exist/.test((err as Error).message)) return undefined;
    throw credentialError(err);
  }
}

/** Bootstrap version the CDK CLI v2 needs at least (its deploy role and asset publishing). */
export const MIN_BOOTSTRAP_VERSION = 6;

export type BootstrapDecision = { action: 'bootstrap'; why: string } | { action: 'skip'; version: number | undefined };

/**
 * Whether `cdk bootstrap` must run first: when the environment has no toolkit stack, or an older one.
 * A toolkit stack in a failed or busy state is an error the user must clear (cdk would fail on it).
 */
export function bootstrapDecision(toolkit: Stack | undefined, toolkitStackName: string): BootstrapDecision {
  if (!toolkit) return { action: 'bootstrap', why: `this environment has no ${toolkitStackName} stack` };
  const status = toolkit.StackStatus ?? '';
  if (status === 'ROLLBACK_COMPLETE' || status.endsWith('_FAILED')) {
    throw new DeployError(
      `the ${toolkitStackName} stack is ${status}: the environment's bootstrap failed earlier`,
      `look at its events in the CloudFormation console, delete it (aws cloudformation delete-stack --stack-name ${toolkitStackName}), then run npm run deploy again`,
    );
  }
  if (status.endsWith('_IN_PROGRESS')) {
    throw new DeployError(`the ${toolkitStackName} stack is ${status}`, 'wait until its operation ends, then run npm run deploy again');
  }
  const raw = toolkit.Outputs?.find((o) => o.OutputKey === 'BootstrapVersion')?.OutputValue;
  const version = raw === undefined ? undefined : Number(raw);
  if (version !== undefined && version < MIN_BOOTSTRAP_VERSION) {
    return { action: 'bootstrap', why: `its ${toolkitStackName} stack is version ${version}, older than ${MIN_BOOTSTRAP_VERSION}` };
  }
  return { action: 'skip', version };
}

/** The stack's outputs as a record (ApiUrl, table names, ...). */
export function stackOutputs(stack: Stack): Record<string, string> {
  return Object.fromEntries((stack.Outputs ?? []).filter((o) => o.OutputKey && o.OutputValue !== undefined).map((o) => [o.OutputKey!, o.OutputValue!]));
}
