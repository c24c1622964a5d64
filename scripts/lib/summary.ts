// What `npm run deploy` prints at the end: where the API is and the exact `xl` line to use it.
// xl (cli/client.ts) takes its endpoint from --endpoint, else XL_ENDPOINT, else the local layer's
// endpoint.json, else the stack's ApiUrl output (XL_STACK_NAME); it signs requests to an
// execute-api URL with the default AWS credentials (cli/aws.ts), in the URL's region.

export interface SummaryInput {
  readonly stackName: string;
  readonly region: string;
  readonly outputs: Readonly<Record<string, string>>;
  /** AWS_PROFILE, when the deploy used one: xl must sign with the same identity. */
  readonly profile?: string;
  /** The `alarmEmail` context, when given: its subscription waits for a confirmation. */
  readonly alarmEmail?: string;
}

/** Quotes a shell word when it needs it. */
function sh(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function deploySummary(input: SummaryInput): string[] {
  const { outputs, region, stackName } = input;
  const api = outputs.ApiUrl;
  if (!api) throw new Error(`stack ${stackName} has no ApiUrl output: is it this project's stack?`);
  // XL_ENDPOINT wins over a local layer's endpoint.json, so the line works wherever it is typed.
  const env = [`XL_ENDPOINT=${sh(api)}`, ...(input.profile ? [`AWS_PROFILE=${sh(input.profile)}`] : [])].join(' ');
  const lines = [
    `Deployed stack ${stackName} to ${region}.`,
    `  API:        ${api}`,
  ];
  if (outputs.DashboardName) {
    lines.push(`  Dashboard:  https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards/dashboard/${encodeURIComponent(outputs.DashboardName)}`);
  }
  if (outputs.PayloadBucketName) lines.push(`  Bucket:     ${outputs.PayloadBucketName}`);
  lines.push('', 'Run a plan on it (xl signs with your AWS credentials; the API is IAM-authorized):', `  ${env} npm run xl -- run examples/parallel.json --watch`);
  lines.push(`  ${env} npm run xl -- health`);
  if (input.alarmEmail) lines.push('', `Alarms go to ${input.alarmEmail} once its owner confirms the subscription email from AWS Notifications.`);
  lines.push('', `Remove it all with: npm run destroy${stackName === 'xl' ? '' : ` -- -c stackName=${sh(stackName)}`}`);
  return lines;
}
