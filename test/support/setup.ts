// Run before every test file (vitest.config.ts setupFiles).
import { afterAll } from 'vitest';
import { removeTestApps } from './cdk-app.ts';

afterAll(removeTestApps);
