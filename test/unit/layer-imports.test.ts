// What the local layer's process loads at its start, whatever runtime it is given: a package reached
// only through a dynamic import() is loaded when that code runs, not with the layer.
import { resolve } from 'node:path';
import { build, type Metafile } from 'esbuild';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

/** The packages the entry's static imports reach (followed through the project's own files). */
function staticPackages(metafile: Metafile, entry: string): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const imp of metafile.inputs[file]?.imports ?? []) {
      if (imp.kind !== 'import-statement') continue;
      if (imp.external) packages.add(imp.path);
      else visit(imp.path);
    }
  };
  visit(entry);
  return packages;
}

describe('the local layer module', () => {
  it('loads the Kubernetes client only when XL_RUNTIME=kubernetes asks for it (about 100 MB and a second at every start otherwise)', async () => {
    const { metafile } = await build({
      entryPoints: [resolve(ROOT, 'local/layer.ts')],
      absWorkingDir: ROOT,
      bundle: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      metafile: true,
      write: false,
      logLevel: 'error',
    });
    const loaded = staticPackages(metafile, 'local/layer.ts');
    expect(loaded.has('@aws-sdk/client-dynamodb')).toBe(true); // the walk does reach the layer's packages
    expect(loaded.has('@kubernetes/client-node')).toBe(false);
    // Still there for XL_RUNTIME=kubernetes, behind an import().
    const layerImports = metafile.inputs['local/layer.ts']!.imports;
    expect(layerImports).toContainEqual(expect.objectContaining({ path: 'core/kubernetes-runtime.ts', kind: 'dynamic-import' }));
  });
});
