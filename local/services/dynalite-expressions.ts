// dynalite re-parses every expression with a PEG parser on every request (about 1.7 ms for a claim's
// update and condition): the largest single cost of a task in the local layer's process. The layer
// sends the same few expressions over and over with other values, so each parsed expression is kept
// as a template, and a later request with the same expression, names and value types gets a copy
// with its own values put in. Values are the only thing that differs: the parser puts the request's
// value objects into the tree as they are, which is how their places are found.
//
// Not cached (parsed every time, as before): expressions the parser refused, BETWEEN (its bounds are
// checked against each other), any parse whose values could not all be found in the tree, and any
// template whose first hits, parsed as well, give another tree than the template does.
import { createRequire } from 'node:module';

type AttributeValue = Record<string, unknown>;
interface ParseContext {
  attrNames?: Record<string, string>;
  attrVals?: Record<string, AttributeValue>;
  unusedAttrNames?: Record<string, boolean>;
  unusedAttrVals?: Record<string, boolean>;
  isKeyCondition?: boolean;
}
type Parse = (expression: string, options?: { context?: ParseContext }) => unknown;
interface ParserModule {
  parse: Parse & { xlCached?: true };
}

interface Template {
  tree: unknown;
  /** Hits still to be checked against a real parse (a template that differs is dropped). */
  checks: number;
  /** Where each value goes: the path of keys from the root, and the value's name. */
  slots: { path: (string | number)[]; name: string }[];
  usedNames: string[];
  usedVals: string[];
}

const MAX_ENTRIES = 2000;
/** How many hits of a new template are checked against a real parse before it is trusted. */
const VERIFY_HITS = 2;

/** Puts the cache in front of dynalite's condition, update and projection parsers (once per process). */
export function cacheDynaliteExpressions(): void {
  const require = createRequire(import.meta.url);
  for (const name of ['conditionParser', 'updateParser', 'projectionParser']) {
    const mod = require(`dynalite/db/${name}.js`) as ParserModule;
    if (mod.parse.xlCached) continue;
    mod.parse = Object.assign(cachedParse(mod.parse), { xlCached: true as const });
  }
}

export function cachedParse(parse: Parse): Parse {
  const templates = new Map<string, Template | null>();
  return (expression, options) => {
    const ctx = options?.context;
    if (!ctx || /\bbetween\b/i.test(expression)) return parse(expression, options);
    const vals = ctx.attrVals ?? {};
    const key = [expression, JSON.stringify(ctx.attrNames ?? {}), signature(vals), ctx.isKeyCondition ? 'k' : ''].join('\u0000');
    const template = templates.get(key);
    if (template && template.checks > 0) {
      // The first hits are parsed too, and must give the same tree the template does.
      template.checks--;
      const tree = parse(expression, options);
      if (JSON.stringify(tree) !== JSON.stringify(instantiate(template, vals))) templates.set(key, null);
      return tree;
    }
    if (template) {
      for (const n of template.usedNames) delete ctx.unusedAttrNames?.[n];
      for (const v of template.usedVals) delete ctx.unusedAttrVals?.[v];
      return instantiate(template, vals);
    }
    if (template === null) return parse(expression, options);

    // What this expression uses, whatever the request's other expressions used before it (they
    // share the unused-name bookkeeping): parsed against every name and value marked unused.
    const probe: ParseContext = {
      ...ctx,
      unusedAttrNames: Object.fromEntries(Object.keys(ctx.attrNames ?? {}).map((n) => [n, true])),
      unusedAttrVals: Object.fromEntries(Object.keys(vals).map((v) => [v, true])),
    };
    const tree = parse(expression, { ...options, context: probe }); // throws on a syntax error: nothing to keep
    if (typeof tree !== 'object' || tree === null) return tree; // a refusal, as a message
    const usedNames = Object.keys(ctx.attrNames ?? {}).filter((n) => !probe.unusedAttrNames?.[n]);
    const usedVals = Object.keys(vals).filter((v) => !probe.unusedAttrVals?.[v]);
    for (const n of usedNames) delete ctx.unusedAttrNames?.[n];
    for (const v of usedVals) delete ctx.unusedAttrVals?.[v];
    const slots = findValues(tree, vals);
    const complete = usedVals.every((v) => slots.some((s) => s.name === v));
    if (templates.size >= MAX_ENTRIES) templates.clear();
    templates.set(key, complete ? { tree: structuredClone(tree), checks: VERIFY_HITS, slots, usedNames, usedVals } : null);
    return tree;
  };
}

/** The values' names and types (`:a=S,:b=N`): the parser checks operand types, so they are part of the key. */
function signature(vals: Record<string, AttributeValue>): string {
  return Object.keys(vals)
    .sort()
    .map((k) => `${k}=${Object.keys(vals[k] ?? {}).join('+')}`)
    .join(',');
}

/** The places in the tree that hold one of the request's value objects (by identity). */
function findValues(tree: unknown, vals: Record<string, AttributeValue>): Template['slots'] {
  const byObject = new Map<unknown, string>(Object.entries(vals).map(([name, v]) => [v, name]));
  const slots: Template['slots'] = [];
  const walk = (node: unknown, path: (string | number)[]) => {
    if (node === null || typeof node !== 'object') return;
    const name = byObject.get(node);
    if (name !== undefined) {
      slots.push({ path, name });
      return;
    }
    if (Array.isArray(node)) node.forEach((child, i) => walk(child, [...path, i]));
    else for (const [k, child] of Object.entries(node)) walk(child, [...path, k]);
  };
  walk(tree, []);
  return slots;
}

/** A fresh copy of the template with this request's values in their places. */
function instantiate(template: Template, vals: Record<string, AttributeValue>): unknown {
  const tree = structuredClone(template.tree) as Record<string | number, unknown>;
  for (const { path, name } of template.slots) {
    let parent = tree;
    for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
    parent[path.at(-1)!] = vals[name];
  }
  return tree;
}
