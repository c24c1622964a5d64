// `npm run schemas`: writes schemas/openapi.json and schemas/plan.schema.json from the zod schemas.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { schemaFiles } from '../core/openapi.ts';

const root = join(import.meta.dirname, '..');
for (const [file, text] of Object.entries(schemaFiles())) {
  mkdirSync(dirname(join(root, file)), { recursive: true });
  writeFileSync(join(root, file), text);
  console.log(`wrote ${file}`);
}
