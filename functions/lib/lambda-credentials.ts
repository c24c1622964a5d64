// Stands in for @aws-sdk/credential-provider-node in Lambda bundles (an esbuild alias in
// infra/constructs/functions.ts). Lambda always hands a function its role's credentials in
// environment variables, so the rest of the default chain (SSO, INI files, STS web identity, IMDS,
// and the nested STS/SSO clients they carry, about 90 KB minified) is dead weight there.
import { fromEnv } from '@aws-sdk/credential-provider-env';

export const defaultProvider = () => fromEnv();
export const credentialsWillNeedRefresh = () => false;
export const credentialsTreatedAsExpired = () => false;
