// The local layer's on/off settings: on unless `0` (or `false`); any other value is refused by name,
// so that a typo does not quietly leave a switch as it was.
export function localSwitch(env: NodeJS.ProcessEnv, name: string, whatOnMeans: string): boolean {
  const value = env[name];
  if (value === undefined || value === '' || value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  throw new Error(`${name} must be 1 (${whatOnMeans}; the default) or 0 (off), got "${value}"`);
}

/** XL_SYNTH_CACHE: the template is kept between starts (local/synth-cache.ts). */
export const synthCacheEnabled = (env: NodeJS.ProcessEnv) => localSwitch(env, 'XL_SYNTH_CACHE', 'the template is kept until the code that builds it changes');

/** XL_AGENT_BUNDLE: worker processes run the agent bundled (local/agent-bundle.ts). */
export const agentBundleEnabled = (env: NodeJS.ProcessEnv) => localSwitch(env, 'XL_AGENT_BUNDLE', 'workers run the agent bundled');

/** XL_LOCAL_INPROCESS: the layer's own clients call its emulators in process (local/services/in-process.ts). */
export const inProcessEnabled = (env: NodeJS.ProcessEnv) => localSwitch(env, 'XL_LOCAL_INPROCESS', 'the layer calls its emulators in process');
