// CDK apps for tests. An App without an outdir synthesizes into a new directory under the system's
// temporary directory and leaves it there with its staged assets (up to a few MB each): hundreds of
// them per run of the suite. These synthesize under one directory of the process, removed after each
// test file (test/support/setup.ts: vitest's workers end without an 'exit' event) or as it exits.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, type AppProps } from 'aws-cdk-lib';

let root: string | undefined;

/** A CDK App whose output directory is removed when the process exits. */
export function testApp(props: Omit<AppProps, 'outdir'> = {}): App {
  if (!root) {
    const dir = (root = mkdtempSync(join(tmpdir(), 'xl-cdk-test-')));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return new App({ ...props, outdir: mkdtempSync(join(root, 'out-')) });
}

/** Removes what testApp's apps wrote so far. */
export function removeTestApps(): void {
  if (root) rmSync(root, { recursive: true, force: true });
  root = undefined;
}
