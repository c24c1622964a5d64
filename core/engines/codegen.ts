// The code generation engine (design document, "Specialized Engines"): per-language and
// per-framework guidance for a coder's prompt, the plan checks of a task's `codegen`, and which
// verification check fits a language. Pure: the agent runs the checks (agent/engines/codegen.ts).

export const LANGUAGES = ['javascript', 'typescript', 'python', 'go', 'rust', 'java', 'csharp'] as const;
export type Language = (typeof LANGUAGES)[number];

export const FRAMEWORKS = ['react', 'nextjs', 'vue', 'nuxt', 'angular', 'express', 'fastapi', 'spring', 'django'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

/** The languages a framework is written in (Angular is TypeScript-first; Spring here is Java). */
export const FRAMEWORK_LANGUAGES: Record<Framework, readonly Language[]> = {
  react: ['javascript', 'typescript'],
  nextjs: ['javascript', 'typescript'],
  vue: ['javascript', 'typescript'],
  nuxt: ['javascript', 'typescript'],
  angular: ['typescript'],
  express: ['javascript', 'typescript'],
  fastapi: ['python'],
  spring: ['java'],
  django: ['python'],
};

export interface CodegenSpec {
  language: Language;
  framework?: Framework;
}

const LANGUAGE_NAMES: Record<Language, string> = {
  javascript: 'JavaScript',
  typescript: 'TypeScript',
  python: 'Python',
  go: 'Go',
  rust: 'Rust',
  java: 'Java',
  csharp: 'C#',
};

const FRAMEWORK_NAMES: Record<Framework, string> = {
  react: 'React',
  nextjs: 'Next.js',
  vue: 'Vue',
  nuxt: 'Nuxt',
  angular: 'Angular',
  express: 'Express',
  fastapi: 'FastAPI',
  spring: 'Spring Boot',
  django: 'Django',
};

/** Conventions, layout, idioms and how to verify, per language. */
export const LANGUAGE_GUIDANCE: Record<Language, string> = {
  javascript: [
    '- Modern ECMAScript modules (`import`/`export`); follow the "type" of package.json (.mjs/.cjs where it differs).',
    '- `const` by default, `let` when reassigned, never `var`; async/await over raw promise chains; strict equality.',
    '- Sources in src/ (or where the project keeps them), one module per concern, named exports.',
    '- Handle errors explicitly: throw Error subclasses with clear messages; never swallow a rejection.',
    '- Verify: `node --check <file>` for every file you wrote; run the project\'s lint and tests when it has them.',
  ].join('\n'),
  typescript: [
    '- Strict TypeScript: no `any` (use `unknown` and narrow), explicit types on exported functions, `readonly` where data is not mutated.',
    '- ES modules, named exports; types with `import type`; follow the project\'s tsconfig.json (module, paths, target).',
    '- Model data with interfaces/type aliases and discriminated unions; validate untrusted input at the boundary.',
    '- Sources in src/ (or where the project keeps them); tests beside or under test/ as the project does.',
    '- Verify: `npx tsc --noEmit -p .` (or `tsc --noEmit` on your files when there is no tsconfig.json) must pass.',
  ].join('\n'),
  python: [
    '- Python 3 with PEP 8 naming (snake_case functions, PascalCase classes), type hints on public functions (PEP 484), docstrings on modules and public APIs.',
    '- A package layout: src/<package>/ or <package>/ with __init__.py; dependencies in pyproject.toml (or the requirements file the project uses).',
    '- Prefer the standard library, dataclasses or pydantic models for data, pathlib for paths, context managers for resources; raise specific exceptions.',
    '- Verify: `python3 -m py_compile <files>` must pass; run `python3 -m pytest` when the project has tests.',
  ].join('\n'),
  go: [
    '- Idiomatic Go: gofmt formatting, short package names, exported identifiers with doc comments, errors returned (wrapped with `fmt.Errorf("...: %w", err)`), no panics for expected failures.',
    '- Layout: go.mod at the root, cmd/<app>/main.go for binaries, internal/ for private packages, _test.go files beside the code.',
    '- Accept interfaces, return structs; pass context.Context first to anything that blocks or does I/O.',
    '- Verify: `gofmt -l .` prints nothing and `go vet ./...` passes; `go build ./...` compiles.',
  ].join('\n'),
  rust: [
    '- Idiomatic Rust (2021 edition): `Result<T, E>` with `?` for errors (a thiserror-style enum for libraries), no `unwrap()` outside tests, borrow rather than clone.',
    '- Layout: Cargo.toml at the root, src/lib.rs and/or src/main.rs, modules in src/<module>.rs, unit tests in `#[cfg(test)] mod tests`, integration tests in tests/.',
    '- rustfmt formatting; clippy-clean code; doc comments (`///`) on public items.',
    '- Verify: `cargo check` must pass (then `cargo clippy` and `cargo test` when available).',
  ].join('\n'),
  java: [
    '- Java 17+: packages in reverse-domain form, one public class per file, PascalCase classes, camelCase members; records for plain data; Optional instead of null returns.',
    '- Maven layout: pom.xml, src/main/java/<package path>/, src/test/java/ (Gradle projects keep the same source sets).',
    '- Checked exceptions only where the caller can recover; try-with-resources for anything closeable; constructor injection.',
    '- Verify: `mvn -q compile` (or `./gradlew compileJava`) must pass; `javac` on the files without a build file.',
  ].join('\n'),
  csharp: [
    '- C# 12 / .NET 8: PascalCase types and members, camelCase locals, `_camelCase` private fields; file-scoped namespaces; nullable reference types enabled.',
    '- Layout: a .csproj per project (a .sln for several), one type per file, folders matching namespaces, tests in a separate *.Tests project.',
    '- async/await with `Task` all the way (no `.Result`), `using` declarations for disposables, records for immutable data, dependency injection through constructors.',
    '- Verify: `dotnet build` must pass with no errors.',
  ].join('\n'),
};

/** Per framework: what a well-built app of that kind looks like. */
export const FRAMEWORK_GUIDANCE: Record<Framework, string> = {
  react: [
    '- Function components and hooks only; components in PascalCase files (`Button.tsx`/`Button.jsx`), one component per file, props typed (TypeScript) or documented.',
    '- Keep state minimal and lifted only as far as needed; derive values instead of syncing them with effects; effects clean up after themselves.',
    '- Lists have stable keys; accessible markup (labels, roles, alt text); no direct DOM manipulation.',
  ].join('\n'),
  nextjs: [
    '- The App Router: routes under app/ with page.tsx, layout.tsx, loading.tsx and error.tsx; Server Components by default, `"use client"` only where state or browser APIs are needed.',
    '- Data fetching in Server Components or route handlers (app/api/<route>/route.ts); server-only secrets never reach client components.',
    '- Use next/link, next/image and metadata exports; verify with `next build` when the project can build.',
  ].join('\n'),
  vue: [
    '- Vue 3 single-file components with `<script setup>` (lang="ts" for TypeScript) and the Composition API; PascalCase component files in src/components/.',
    '- Props with defineProps (typed), events with defineEmits; state shared through composables (src/composables/useX) or Pinia stores.',
    '- Templates stay declarative: computed values for derived data, v-for with :key, no v-if on the same element as v-for.',
  ].join('\n'),
  nuxt: [
    '- Nuxt 3 conventions: pages/ for file-based routes, components/ and composables/ auto-imported, server/api/ for server routes, layouts/ and middleware/ as named.',
    '- Fetch with useFetch/useAsyncData (SSR-safe); runtime configuration through useRuntimeConfig, secrets only in its private part.',
    '- `<script setup lang="ts">` components; verify with `nuxi typecheck` when available.',
  ].join('\n'),
  angular: [
    '- Standalone components, one per folder (`x.component.ts/.html/.scss/.spec.ts`), services with `@Injectable({ providedIn: \'root\' })` and `inject()`.',
    '- Signals for local state, RxJS for streams (unsubscribe with takeUntilDestroyed or the async pipe), typed reactive forms.',
    '- Routes in app.routes.ts with lazy loading; verify with `ng build` or `tsc --noEmit -p tsconfig.app.json`.',
  ].join('\n'),
  express: [
    '- Routers per resource (src/routes/<resource>.ts), handlers thin, logic in services; `express.json()` for bodies and input validated before use.',
    '- Errors reach one error-handling middleware (`(err, req, res, next)`) that maps them to status codes; async handlers pass rejections to next.',
    '- Configuration from the environment; the app exported separately from `listen()` so tests can mount it.',
  ].join('\n'),
  fastapi: [
    '- Routers per resource (app/routers/<resource>.py) included in app/main.py; request and response bodies as pydantic models; `async def` for I/O-bound endpoints.',
    '- Dependencies with `Depends` (database sessions, auth); HTTPException with the right status codes; settings through pydantic-settings.',
    '- Test with fastapi.testclient.TestClient (or httpx.AsyncClient) and pytest.',
  ].join('\n'),
  spring: [
    '- Spring Boot: @RestController → @Service → repository (Spring Data) layers, constructor injection, DTOs (records) separate from entities.',
    '- Bean Validation (@Valid, @NotNull…) on inputs; errors mapped in a @RestControllerAdvice; configuration in application.yml with @ConfigurationProperties.',
    '- Tests with @SpringBootTest / @WebMvcTest and JUnit 5.',
  ].join('\n'),
  django: [
    '- Django apps per domain (models.py, views.py, urls.py, admin.py, tests.py or tests/), migrations generated with makemigrations for every model change.',
    '- Class-based or function views kept thin, forms/serializers (Django REST Framework) validate input, QuerySets filtered in the database (select_related/prefetch_related).',
    '- Settings from the environment, never secrets in code; verify with `python3 manage.py check` when the project runs.',
  ].join('\n'),
};

/** The final line the coder is asked to end with (the driver parses it into the output). */
export const CODEGEN_ANSWER = '{"summary": "<one or two sentences on what you built or changed>", "files": ["<paths you wrote, relative to the working directory>"]}';

export function codegenPrompt(spec: CodegenSpec): string {
  const parts = [
    `## Code generation: ${LANGUAGE_NAMES[spec.language]}${spec.framework ? ` with ${FRAMEWORK_NAMES[spec.framework]}` : ''}`,
    `Write ${LANGUAGE_NAMES[spec.language]} (${spec.language}) code in the working directory that does what the task asks, as an experienced engineer of this stack would.`,
    `### ${LANGUAGE_NAMES[spec.language]} conventions\n${LANGUAGE_GUIDANCE[spec.language]}`,
  ];
  if (spec.framework) parts.push(`### ${FRAMEWORK_NAMES[spec.framework]} (${spec.framework}) conventions\n${FRAMEWORK_GUIDANCE[spec.framework]}`);
  parts.push(
    [
      '### When you are done',
      'Run the verification above when the tool is available and fix what it reports. The layer runs the check itself afterwards and fails the task when it does not pass.',
      `End your answer with one line that is only this JSON object: ${CODEGEN_ANSWER}`,
    ].join('\n'),
  );
  return parts.join('\n\n');
}

/** Plan problems of a task's `codegen` (paths relative to the task). */
export function codegenIssues(codegen: CodegenSpec, task: { instructions?: string }): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  if (task.instructions === undefined) {
    issues.push({ path: ['codegen'], message: 'code generation is for language-model tasks: it needs instructions, not a command' });
  }
  if (codegen.framework && !FRAMEWORK_LANGUAGES[codegen.framework].includes(codegen.language)) {
    issues.push({
      path: ['codegen', 'framework'],
      message: `${codegen.framework} is a ${FRAMEWORK_LANGUAGES[codegen.framework].join(' or ')} framework, not ${codegen.language}`,
    });
  }
  return issues;
}

// ---- verification -------------------------------------------------------------------------------

/** Source file extensions per language: the files a check looks at. */
export const LANGUAGE_EXTENSIONS: Record<Language, readonly string[]> = {
  javascript: ['.js', '.mjs', '.cjs'],
  typescript: ['.ts', '.tsx', '.mts', '.cts'],
  python: ['.py'],
  go: ['.go'],
  rust: ['.rs'],
  java: ['.java'],
  csharp: ['.cs'],
};

export interface CheckResult {
  /** The tool as run, e.g. `tsc --noEmit -p .`. */
  tool: string;
  /** Absent when skipped. */
  passed?: boolean;
  /** Why the check did not run, e.g. `tool not installed`. */
  skipped?: string;
  /** The tail of what the tool printed (failures only). */
  output?: string;
}

export interface CodegenResult {
  language: Language;
  framework?: Framework;
  /** New or changed files in the workspace (relative paths), whatever the model said. */
  files: string[];
  /** The model's own summary, when its final JSON line had one. */
  summary?: string;
  checks: CheckResult[];
}

/** "code generation checks failed: tsc --noEmit -p . (src/a.ts(1,7): error TS2322 ...)". */
export function describeCheckFailures(checks: readonly CheckResult[]): string {
  const failed = checks.filter((c) => c.passed === false);
  return `code generation checks failed: ${failed.map((c) => `${c.tool}${c.output ? `: ${c.output.trim().split('\n').slice(-5).join(' | ')}` : ''}`).join('; ')}`;
}
